"""Logging to stdout with %-style templates; configured once by the app factory."""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s"


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marker subclass so repeated factory calls do not stack handlers."""


def setup_logging(level: str = "INFO") -> None:
    """Send the ``backend`` loggers to stdout at ``level`` (idempotent)."""
    logger = logging.getLogger("backend")
    if not any(isinstance(h, _StdoutHandler) for h in logger.handlers):
        handler = _StdoutHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(_FORMAT))
        logger.addHandler(handler)
    logger.setLevel(getattr(logging, level, logging.INFO))
