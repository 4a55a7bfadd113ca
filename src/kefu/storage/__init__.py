"""Persistence: the only package that imports SQLAlchemy."""

from kefu.storage.engine import Database, Tx

__all__ = ["Database", "Tx"]
