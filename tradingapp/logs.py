"""Structured logging: JSON lines to ``<data_dir>/engine.log`` plus a readable console.

Only session lifecycle, logons (never keys), rejects of malformed input, requests the session
refuses itself, errors, start-up and shutdown are logged. Orders and fills are not: the journal
is the audit trail (``tradingapp journal`` prints it), which keeps per-order logging off the hot
path.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog


def configure(data_dir: Path | None, *, console: bool = True, level: int = logging.INFO) -> None:
    """Send structlog events to a JSON file in ``data_dir`` and, optionally, to stderr."""
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    if data_dir is not None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(Path(data_dir) / "engine.log")
        file_handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processor=structlog.processors.JSONRenderer(), foreign_pre_chain=shared
            )
        )
        root.addHandler(file_handler)
    if console:
        console_handler = logging.StreamHandler(sys.stderr)
        console_handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processor=structlog.dev.ConsoleRenderer(colors=False), foreign_pre_chain=shared
            )
        )
        root.addHandler(console_handler)
