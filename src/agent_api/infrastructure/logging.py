"""structlog configuration: JSON lines (or console) on stdout, with the request id and the
principal bound per request through contextvars. Standard-library loggers (uvicorn, alembic)
go through the same renderer."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Idempotent; safe to call once per process start (and again in tests)."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    structlog.configure(
        # filter_by_level first: an event below LOG_LEVEL (the per-request access line at
        # LOG_LEVEL=warning) is dropped before the processors build it, not after.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    root.handlers[:] = [_stdout_handler(shared, fmt)]
    root.setLevel(level.upper())
    _tune_library_loggers(root.level)


def _stdout_handler(shared: list[structlog.types.Processor], fmt: str) -> logging.Handler:
    """The one handler: structlog events and standard-library records rendered alike."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    return handler


def _tune_library_loggers(root_level: int) -> None:
    # aiosqlite's debug lines carry every statement's parameters (password hashes, key
    # hashes): never below INFO, whatever LOG_LEVEL says.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root_level))
    # We log every request ourselves (with the request id); uvicorn's access log would repeat it.
    logging.getLogger("uvicorn.access").disabled = True
    # Library chatter (each outgoing HTTP request, each migration plugin) only when debugging.
    for name in ("httpx", "httpcore", "alembic.runtime.plugins"):
        logging.getLogger(name).setLevel(max(root_level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
