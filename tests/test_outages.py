"""An outage is logged in a few lines: the first failure (with its traceback), a count per interval, the end."""

from __future__ import annotations

import logging
import re

import pytest

from kefu.outages import OutageLog


def test_an_outage_is_its_first_failure_then_a_count_per_interval_then_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    outage = OutageLog(logging.getLogger("kefu.test"), "the database", interval_s=10.0, now=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="kefu.test"):
        for _ in range(25_000):  # 25 s of a busy node's failures, 1,000 a second
            outage.failed(ConnectionRefusedError("connection refused"))
            now[0] += 0.001
        outage.succeeded()
        outage.succeeded()  # nothing more to say while it is up

    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert len(lines) == 4, lines
    assert lines[0] == (logging.ERROR, "the database is unreachable: connection refused")
    assert caplog.records[0].exc_info is not None, "the first failure keeps its traceback"
    for (level, line), down in zip(lines[1:3], (10, 20), strict=True):  # float steps: 9,999 or 10,000 a line
        assert level == logging.WARNING
        assert re.fullmatch(
            rf"the database still unreachable: (9999|10000) more failures in the last 10 s \(down {down} s\)", line
        )
    assert lines[3] == (logging.WARNING, "the database is reachable again after 25.0 s (25000 failures)")
    assert all(r.exc_info is None for r in caplog.records[1:])


def test_a_second_outage_is_reported_from_its_own_first_failure(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    outage = OutageLog(logging.getLogger("kefu.test"), "Redis", now=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="kefu.test"):
        outage.failed(OSError("one"))
        outage.succeeded()
        now[0] += 60
        outage.failed(OSError("two"), "publishing on presence")
    assert [r.getMessage() for r in caplog.records] == [
        "Redis is unreachable: one",
        "Redis is reachable again after 0.0 s (1 failures)",
        "Redis is unreachable (publishing on presence): two",
    ]
