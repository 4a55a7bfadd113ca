"""Figures the security checks report (operations covered, frames tried, cells checked), and the fuzzers' random seed.

A test calls `report("schemathesis: 48 operations, 1,920 examples, 0 failures")`; tests/conftest.py prints the lines in
the terminal summary of every run, `pytest -q` included, so CI output shows them.

Both fuzzers run twice: once derandomized (the same cases on every run, so a failure reproduces anywhere) and once from
FUZZ_SEED, new on every run, so CI keeps trying cases the fixed run never makes. The seed is reported like the figures,
pass or fail; `KEFU_FUZZ_SEED=<seed> pytest tests/security` replays that run's cases.
"""

from __future__ import annotations

import os
import secrets

LINES: list[str] = []


def report(line: str) -> None:
    LINES.append(line)


def _fuzz_seed() -> int:
    given = os.environ.get("KEFU_FUZZ_SEED", "").strip()
    if not given:
        return secrets.randbits(32)
    if not given.isdigit():
        raise ValueError(f"KEFU_FUZZ_SEED has value '{given}'. Not a valid seed: a non-negative integer.")
    return int(given)


FUZZ_SEED = _fuzz_seed()


def report_fuzz_seed() -> None:
    """Report (once per session) the seed of the randomised runs, before they start, so it shows even if they fail."""
    line = f"randomised fuzz seed: {FUZZ_SEED} (replay: KEFU_FUZZ_SEED={FUZZ_SEED} pytest tests/security)"
    if line not in LINES:
        LINES.insert(0, line)
