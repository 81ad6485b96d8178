"""Parsing environment variables: tuning values warn and fall back; malformed required ones raise."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


class ConfigError(ValueError):
    """A required setting is missing or malformed; the message names the key."""


def int_setting(env: Mapping[str, str], name: str, default: int, warnings: list[str], *, minimum: int = 1) -> int:
    """Parse a tuning integer; a bad value warns (naming the key) and falls back to the default."""
    raw = env.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if text == "":
        warnings.append(f"{name} is empty; using default {default}")
        return default
    try:
        value = int(text)
    except ValueError:
        warnings.append(f"{name}={raw!r} is not an integer; using default {default}")
        return default
    if value < minimum:
        warnings.append(f"{name}={raw!r} must be >= {minimum}; using default {default}")
        return default
    return value


def float_setting(
    env: Mapping[str, str], name: str, default: float, warnings: list[str], *, minimum: float, maximum: float
) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        warnings.append(f"{name}={raw!r} is not a number; using default {default}")
        return default
    if not minimum <= value <= maximum:
        warnings.append(f"{name}={raw!r} must be between {minimum} and {maximum}; using default {default}")
        return default
    return value


def bool_setting(env: Mapping[str, str], name: str, default: bool, warnings: list[str]) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    warnings.append(f"{name}={raw!r} is not a boolean; using default {default}")
    return default


def choice_setting(
    env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...], warnings: list[str], *, upper: bool
) -> str:
    raw = env.get(name)
    if raw is None:
        return default
    text = raw.strip().upper() if upper else raw.strip().lower()
    if text in choices:
        return text
    warnings.append(f"{name}={raw!r} is not one of {', '.join(choices)}; using default {default}")
    return default


def text_setting(env: Mapping[str, str], name: str, default: str, warnings: list[str]) -> str:
    raw = env.get(name)
    if raw is None:
        return default
    if not raw.strip():
        warnings.append(f"{name} is empty; using default {default}")
        return default
    return raw.strip()


def url_setting(env: Mapping[str, str], name: str) -> str | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, got {raw!r}")
    return raw
