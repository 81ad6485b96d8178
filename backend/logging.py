"""Logging to stdout with %-style templates, as text (development) or one JSON object per line.

Every line logged while a request is handled carries its request id (``request_id=`` in text, a
``request_id`` field in JSON); in JSON mode Sanic's own loggers (server, errors, access log) use
the same format, so an aggregator sees one stream.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from sanic.logging.default import LOGGING_CONFIG_DEFAULTS
from sanic.logging.formatter import JSONFormatter

if TYPE_CHECKING:
    from backend.config import AppConfig

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s"


def _request_id() -> str | None:
    from backend.routes.edge import request_id_var  # late: routes import this module's users

    return request_id_var.get()


class RequestContextFilter(logging.Filter):
    """Put the current request id (or None) and the Sanic worker name on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id()
        record.worker = os.environ.get("SANIC_WORKER_NAME") or "main"
        return True


class TextFormatter(logging.Formatter):
    """The development format; ``request_id=...`` is appended to lines logged inside a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{text} request_id={request_id}" if request_id else text


class JsonLineFormatter(JSONFormatter):
    """Sanic's JSON formatter, with the process, worker and request id on every line."""

    FIELDS = ["name", "process", "processName", "worker", "request_id", "module", "lineno"]

    def to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        body: dict[str, Any] = super().to_dict(record)
        for key in ("request_id", "worker"):
            body.setdefault(key, getattr(record, key, None))
        return body


class _BackendHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marker subclass so repeated factory calls do not stack handlers."""


def sanic_log_config(settings: AppConfig) -> dict[str, Any] | None:
    """Sanic's logging config: its defaults in text mode, every formatter JSON in json mode."""
    if settings.log_format != "json":
        return None
    config = {**LOGGING_CONFIG_DEFAULTS}
    formatter = {"()": JsonLineFormatter}
    config["formatters"] = {"generic": formatter, "access": formatter}
    config["filters"] = {"request": {"()": RequestContextFilter}}
    config["handlers"] = {
        name: {**handler, "filters": ["request"]} for name, handler in LOGGING_CONFIG_DEFAULTS["handlers"].items()
    }
    return config


def setup_logging(settings: AppConfig) -> None:
    """Send the ``backend`` loggers to stdout at the configured level and format (idempotent)."""
    logger = logging.getLogger("backend")
    for handler in [h for h in logger.handlers if isinstance(h, _BackendHandler)]:
        logger.removeHandler(handler)
    handler = _BackendHandler(sys.stdout)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonLineFormatter() if settings.log_format == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(settings.log_level_number)
    logger.propagate = False
    if settings.log_format == "text":
        # Sanic's access log, when on, gets the request id too.
        logging.getLogger("sanic.access").addFilter(RequestContextFilter())
