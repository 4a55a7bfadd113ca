"""Running a node under uvicorn with the settings the benchmarks were measured with."""

from __future__ import annotations

import logging
import re

import uvicorn

from kefu.app import create_app
from kefu.config import Settings


def uvicorn_config(settings: Settings, **overrides: object) -> uvicorn.Config:
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "ws": "websockets-sansio",
        "ws_per_message_deflate": False,  # chat frames are small: compression costs CPU and ~50 KiB a socket
        "ws_max_size": 1024 * 1024,  # beyond this the socket is closed (1009); kefu's own limit is lower
        "lifespan": "on",
        "access_log": False,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": 10,
    }
    options.update(overrides)
    config = uvicorn.Config(create_app(settings), **options)  # type: ignore[arg-type]
    for name in ("uvicorn.error", "uvicorn.access"):  # after uvicorn configured its loggers
        logging.getLogger(name).addFilter(RedactTokens())
    return config


class RedactTokens(logging.Filter):
    """Tokens travel in WebSocket URLs (`/ws/agent?token=…`) and uvicorn logs each socket's URL: not the token."""

    PATTERN = re.compile(r"(token=)[^&\s\"']+")

    def redact(self, value: object) -> object:
        return self.PATTERN.sub(r"\1[redacted]", value) if isinstance(value, str) else value

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self.redact(v) for k, v in record.args.items()}
        return True


# Loggers that would write request data (SQL parameters: password hashes, app and webhook secrets, messages)
# at debug or info level: kept at WARNING whatever KEFU_LOG_LEVEL says, so no level puts secrets in the logs.
QUIET_LOGGERS = ("sqlalchemy", "aiosqlite", "asyncpg", "websockets", "httpx", "httpcore", "multipart")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def run_server(settings: Settings) -> None:
    configure_logging(settings.log_level)
    uvicorn.Server(uvicorn_config(settings)).run()
