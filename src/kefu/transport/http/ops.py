"""Who may read `/metrics`: it lists every tenant's app id with its queues and agents, so it is not public.

The scraper sends `Authorization: Bearer <KEFU_METRICS_TOKEN>`; with no token set, `/metrics` is off (404).
"""

from __future__ import annotations

import hmac

from fastapi import Request

from kefu import errors


def require_metrics_token(expected: str | None, request: Request) -> None:
    if not expected:
        raise errors.NotFound("Metrics are off: set KEFU_METRICS_TOKEN and scrape with it as a bearer token.")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise errors.Unauthorized("Send KEFU_METRICS_TOKEN as 'Authorization: Bearer …' to read /metrics.")
