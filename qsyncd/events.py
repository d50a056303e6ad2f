"""Structured events for qsyncd: one structlog configuration, four output formats, secrets always redacted.

Every part of qsyncd logs through ``get_logger()``; events are snake_case verbs with fields
(``log.info("upload_finished", key=..., bytes=...)``). ``configure_logging()`` picks where they go:

* ``journal`` -- native journald fields via systemd-python: ``MESSAGE`` (a readable one-liner), ``PRIORITY``,
  ``SYSLOG_IDENTIFIER=qsyncd``, ``QSYNCD_EVENT`` and one ``QSYNCD_<FIELD>`` per field, so operators can run
  ``journalctl QSYNCD_EVENT=upload_failed``;
* ``json`` -- one JSON object per line: ``{"ts", "level", "event", ...fields}``;
* ``console`` -- structlog's ConsoleRenderer (colours only on a TTY);
* ``auto`` -- journal when ``$JOURNAL_STREAM`` names our stdout, else console on a TTY, else json.

Redaction runs in every format after exceptions are rendered: registered secrets, the signature of
``QS akid:signature`` authorization strings and ``signature=`` query values become ``***``.
Configuration lives in one swappable pipeline, so re-configuring also affects loggers bound earlier.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal, TextIO

import structlog

Format = Literal["auto", "journal", "json", "console"]
EventDict = MutableMapping[str, Any]

REDACTED = "***"
SYSLOG_IDENTIFIER = "qsyncd"
FIELD_PREFIX = "QSYNCD_"

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}
# structlog method names that are not level names
_METHOD_LEVEL = {"warn": "warning", "exception": "error", "fatal": "critical", "msg": "info"}

# "QS akid:signature" (Authorization header value) -> keep the access key id, hide the signature.
_AUTH_RE = re.compile(r"(\bQS\s+[^\s:'\"]+:)[^\s'\",;&]+")
# signature=... in a query string (pre-signed URLs), any case.
_QUERY_SIG_RE = re.compile(r"((?:^|[?&;\s\"'])signature=)[^&\s\"'#]+", re.IGNORECASE)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secret_pattern: re.Pattern[str] | None = None
_secrets_now: tuple[str, ...] = ()  # a snapshot for the lock-free "is any secret in this text?" test


def register_secret(value: str) -> None:
    """Make every later occurrence of ``value`` (in any field, message or traceback) render as ``***``."""
    global _secret_pattern, _secrets_now
    if not value:
        return
    with _secrets_lock:
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leftovers
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))
        _secrets_now = tuple(ordered)


def redact_text(text: str) -> str:
    """Return ``text`` with registered secrets, QS signatures and ``signature=`` values replaced."""
    pattern = _secret_pattern
    if pattern is not None and any(secret in text for secret in _secrets_now):
        text = pattern.sub(REDACTED, text)
    if "QS" in text:  # cheap tests first: most values are keys and paths that hold neither
        text = _AUTH_RE.sub(r"\1" + REDACTED, text)
    if "=" in text:
        text = _QUERY_SIG_RE.sub(r"\1" + REDACTED, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, bytes):
        text = value.decode("utf-8", "surrogateescape")
        redacted = redact_text(text)
        return value if redacted == text else redacted.encode("utf-8", "surrogateescape")
    if isinstance(value, PurePath):
        text = str(value)
        redacted = redact_text(text)
        return value if redacted == text else redacted
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redact_value(v) for v in value]
    # Anything else (exceptions, objects with a __str__) is rendered now so its text can be checked.
    return redact_text(str(value))


def _redact(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: redact every value, including the event name and rendered exceptions."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(value)
    return event_dict


def _add_level(_logger: Any, method: str, event_dict: EventDict) -> EventDict:
    event_dict["level"] = _METHOD_LEVEL.get(method, method)
    return event_dict


def _text(value: Any) -> str:
    """A printable str for any value: undecodable bytes/surrogates become backslash escapes."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def _plain(value: Any) -> Any:
    """JSON/console-friendly value: keep numbers, bools, None, lists and dicts; text for the rest."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return _text(value)


def _json_line(_logger: Any, _method: str, event_dict: EventDict) -> str:
    """``_redact``, the JSON field order (``ts``, ``level``, ``event`` first) and the rendering, in one pass."""
    ordered: dict[str, Any] = {}
    for k in ("ts", "level", "event"):
        if k in event_dict:
            ordered[k] = _plain_redacted(event_dict.pop(k))
    for k, v in event_dict.items():
        ordered[k] = _plain_redacted(v)
    return json.dumps(ordered, ensure_ascii=False)


def _plain_redacted(value: Any) -> Any:
    """``_plain(_redact_value(value))``, with the common cases (text, numbers) first."""
    kind = type(value)
    if kind is str:
        return _text(redact_text(value))
    if value is None or kind is int or kind is float or kind is bool:
        return value
    return _plain(_redact_value(value))


def _plain_fields(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    return {k: _plain(v) for k, v in event_dict.items()}


_NEEDS_QUOTES = re.compile(r"[\s\"=]")
_NOT_FIELD_CHAR = re.compile(r"[^A-Z0-9_]")


def _one_liner_value(value: Any) -> str:
    text = _text(value) if not isinstance(value, (list, tuple, dict)) else json.dumps(_plain(value))
    if text and not _NEEDS_QUOTES.search(text):
        return text
    return json.dumps(text, ensure_ascii=False)


@functools.lru_cache(maxsize=1024)
def journal_field_name(key: str) -> str:
    """``QSYNCD_`` + the key upper-cased, every char outside ``[A-Z0-9_]`` replaced by ``_`` (max 64 chars)."""
    return (FIELD_PREFIX + _NOT_FIELD_CHAR.sub("_", key.upper()))[:64]


def _journal_bytes(value: Any) -> bytes:
    """Field value bytes: str()'d, with non-UTF-8 file names passed through byte-exact."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, PurePath):
        return os.fsencode(value)
    text = value if isinstance(value, str) else str(value)
    return text.encode("utf-8", "surrogateescape")


def journal_fields(event_dict: EventDict) -> list[bytes]:
    """Render an event as native journal ``KEY=VALUE`` items (``MESSAGE`` first)."""
    fields = dict(event_dict)
    fields.pop("ts", None)
    level = str(fields.pop("level", "info"))
    event = _text(fields.pop("event", ""))
    exception = fields.pop("exception", None)
    parts = [event] + [f"{k}={_one_liner_value(v)}" for k, v in fields.items()]
    if exception:
        last = _text(exception).strip().splitlines()[-1] if _text(exception).strip() else ""
        parts.append(f"exception={_one_liner_value(last)}")
    items = [
        b"MESSAGE=" + " ".join(parts).encode("utf-8", "backslashreplace"),
        b"PRIORITY=%d" % _PRIORITY.get(level, 6),
        b"SYSLOG_IDENTIFIER=" + SYSLOG_IDENTIFIER.encode(),
        b"QSYNCD_EVENT=" + _journal_bytes(event),
    ]
    if exception:
        items.append(b"QSYNCD_EXCEPTION=" + _journal_bytes(exception))
    for key, value in fields.items():
        items.append(journal_field_name(str(key)).encode() + b"=" + _journal_bytes(value))
    return items


@dataclass(frozen=True)
class _Pipeline:
    """What one configure_logging() call chose: the level, the processors and where the output goes."""

    min_level: int
    processors: tuple[Callable[[Any, str, EventDict], Any], ...]
    emit: Callable[[Any], None]


_current: _Pipeline | None = None
_configure_lock = threading.Lock()
_write_lock = threading.Lock()
_journal_fallback_reported = False


def _dispatch(_logger: Any, method: str, event_dict: EventDict) -> EventDict:
    """The only processor structlog itself knows: runs the current pipeline and writes the result."""
    pipeline = _current or _default_pipeline()
    level = _METHOD_LEVEL.get(method, method)
    if _LEVELS.get(level, logging.INFO) < pipeline.min_level:
        raise structlog.DropEvent
    result = _run(pipeline, method, event_dict)
    try:
        pipeline.emit(result)
    except (OSError, ValueError):  # closed or broken output: logging must never take the caller down
        pass
    raise structlog.DropEvent  # already written; structlog's logger has nothing left to do


def _stream_writer(stream: TextIO | None) -> Callable[[Any], None]:
    def emit(line: Any) -> None:
        target = stream if stream is not None else sys.stdout
        with _write_lock:
            target.write(f"{line}\n")
            target.flush()

    return emit


def _journal_writer() -> Callable[[Any], None] | None:
    try:
        from systemd import journal
    except ImportError:
        return None

    def emit(items: Any) -> None:
        journal.sendv(*items)

    return emit


def _common(*, redact: bool = True) -> list[Callable[[Any, str, EventDict], Any]]:
    """The processors every format starts with; ``redact=False`` for a renderer that redacts itself."""
    return [
        _add_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,  # traceback -> "exception" text, redacted next
        *([_redact] if redact else []),
    ]


def _journal_stream_matches(stream: TextIO) -> bool:
    """systemd's documented check: $JOURNAL_STREAM is "dev:ino" of the stream the journal reads."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    try:
        st = os.fstat(stream.fileno())
        return (int(dev), int(ino)) == (st.st_dev, st.st_ino)
    except (ValueError, OSError, AttributeError):
        return False


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, AttributeError):
        return False


def _choose(fmt: str, stream: TextIO) -> str:
    if fmt != "auto":
        return fmt
    if _journal_stream_matches(stream):
        return "journal"
    return "console" if _is_tty(stream) else "json"


def _build(fmt: str, level: str, stream: TextIO | None) -> tuple[_Pipeline, str]:
    global _journal_fallback_reported
    if level.lower() not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(_LEVELS)}")
    min_level = _LEVELS[level.lower()]
    chosen = _choose(fmt, stream if stream is not None else sys.stdout)
    fallback_note = False
    if chosen == "journal":
        writer = _journal_writer()
        if writer is not None:
            procs = [*_common(), lambda _l, _m, ed: journal_fields(ed)]
            return _Pipeline(min_level, tuple(procs), writer), "journal"
        chosen = "json"
        fallback_note = not _journal_fallback_reported
        _journal_fallback_reported = True
    if chosen == "json":
        procs = [*_common(redact=False), _json_line]
    elif chosen == "console":
        colors = _is_tty(stream if stream is not None else sys.stdout)
        procs = [
            *_common(),
            _plain_fields,
            structlog.dev.ConsoleRenderer(colors=colors, timestamp_key="ts", sort_keys=False),
        ]
    else:
        raise ValueError(f"unknown log format {fmt!r}: use auto, journal, json or console")
    pipeline = _Pipeline(min_level, tuple(procs), _stream_writer(stream))
    if fallback_note:
        pipeline.emit(
            _run(
                pipeline,
                "warning",
                {
                    "event": "journal_unavailable",
                    "reason": "systemd-python is not installed; logging JSON lines to stdout instead",
                },
            )
        )
    return pipeline, chosen


def _run(pipeline: _Pipeline, method: str, event_dict: EventDict) -> Any:
    """Apply the pipeline's processors; the result is what its ``emit`` takes."""
    result: Any = event_dict
    for processor in pipeline.processors:
        result = processor(None, method, result)
    return result


def _default_pipeline() -> _Pipeline:
    """Used when something logs before configure_logging(): auto format at info level."""
    global _current
    with _configure_lock:
        if _current is None:
            _current, _ = _build("auto", "info", None)
        return _current


class _StdlibBridge(logging.Handler):
    """Routes records of libraries using stdlib logging (SDK, urllib3, watchdog) through our pipeline."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = logging.getLevelName(record.levelno).lower()
            method = level if level in _LEVELS else "info"
            kwargs: dict[str, Any] = {"logger": record.name, "message": record.getMessage()}
            if record.exc_info:
                kwargs["exc_info"] = record.exc_info
            getattr(get_logger(), method)("library_logged", **kwargs)
        except Exception:
            self.handleError(record)


_bridge = _StdlibBridge()


def configure_logging(format: Format = "auto", level: str = "info", *, stream: TextIO | None = None) -> str:
    """(Re)configure all qsyncd logging; returns the format actually chosen (``auto`` resolved)."""
    global _current
    with _configure_lock:
        pipeline, chosen = _build(format, level, stream)
        _current = pipeline
    root = logging.getLogger()
    if _bridge not in root.handlers:
        root.addHandler(_bridge)
    root.setLevel(pipeline.min_level)
    _bridge.setLevel(pipeline.min_level)
    return chosen


structlog.configure(
    processors=[_dispatch],
    wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    logger_factory=structlog.ReturnLoggerFactory(),
    cache_logger_on_first_use=True,
)


def get_logger(**bind: Any) -> structlog.typing.FilteringBoundLogger:
    """A logger with ``bind`` as context; works before configure_logging() and follows re-configuration."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(**bind)
    return logger
