"""Pure, synchronous rules of kefu: no I/O, no SQLAlchemy, no FastAPI."""
