"""Running a node under uvicorn with the settings the benchmarks were measured with."""

from __future__ import annotations

import logging

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
    return uvicorn.Config(create_app(settings), **options)  # type: ignore[arg-type]


def run_server(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.Server(uvicorn_config(settings)).run()
