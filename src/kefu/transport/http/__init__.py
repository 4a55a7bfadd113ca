"""The HTTP API under `/api/v1` (protocol §2)."""
