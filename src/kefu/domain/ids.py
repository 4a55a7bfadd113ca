"""Identifiers: opaque random ids with a readable prefix, and conversation session ids."""

from __future__ import annotations

import datetime as dt
import re
import secrets

SESSION_ID = re.compile(r"^\d{8}-\d{6,}$")


def new_id(prefix: str) -> str:
    """An unguessable id such as `ag_3f9c1a7b20d54e8c`."""
    return f"{prefix}_{secrets.token_hex(8)}"


def session_id(day: dt.date, number: int) -> str:
    """`YYYYMMDD-NNNNNN`: the UTC day of creation and that day's sequence number, at least 6 digits."""
    assert number >= 1
    return f"{day:%Y%m%d}-{number:06d}"


def day_key(day: dt.date) -> str:
    return f"{day:%Y%m%d}"
