"""--log_format: the server's log records as text (upstream's) or JSON lines.

Not in upstream (tensorflow/serving#2069): log collectors (Fluent Bit,
Vector, Cloud Logging, Loki) parse one JSON object per line without a
per-format regex, and a traceback stays inside its record instead of
spilling over several lines.

With "json", every record that goes through Python's logging is one line:

  {"time": "2026-01-02T03:04:05.678901Z", "level": "INFO", "logger": "absl",
   "message": "Running gRPC ModelServer at 0.0.0.0:8500 ...",
   "file": "server.py:458", "thread": 140245}

plus "exception" (the formatted traceback) when the record carries one,
"stack" with stack_info, and any `extra=` fields given at the call. That is
the server's own records (absl logging), TensorFlow's Python logger, gRPC's
and asyncio's, and Python warnings (routed into logging). What never passes
through Python's logging stays as it is: TensorFlow's C++ runtime and
gRPC's C core write to stderr themselves (docs/serving_config.md), and the
few lines upstream prints to stdout (--version, "Failed to start server")
keep upstream's text.

The JSON encoding is python-json-logger's (a maintained formatter for the
standard logging module): it handles exceptions, stack info, `extra=`
fields and values JSON cannot hold; this module only names the fields.
"""

import datetime
import logging
from typing import Any

from absl import logging as absl_logging
from pythonjsonlogger import json as json_logger

TEXT = "text"
JSON = "json"
FORMATS = (TEXT, JSON)

# Loggers that TensorFlow gives handlers of their own (its Python logger adds
# a stderr handler when it is created before absl's handler is installed);
# in JSON mode their records go to the root handler instead, once.
_LOGGERS_WITH_OWN_HANDLERS = ("tensorflow",)


class JsonFormatter(json_logger.JsonFormatter):
  """One JSON object per record: time, level, logger, message, file, thread.

  time is RFC 3339 in UTC with microseconds; level is Python's level name
  (absl's verbose levels below DEBUG are "DEBUG"); file is "name.py:line"
  of the call.
  """

  def __init__(self) -> None:
    super().__init__(
        ("message",),
        rename_fields={"exc_info": "exception", "stack_info": "stack"})

  def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                 message_dict: dict[str, Any]) -> None:
    created = datetime.datetime.fromtimestamp(record.created,
                                              tz=datetime.timezone.utc)
    log_data["time"] = (created.isoformat(timespec="microseconds")
                        .replace("+00:00", "Z"))
    log_data["level"] = (record.levelname if record.levelno >= logging.DEBUG
                         else "DEBUG")
    log_data["logger"] = record.name
    rest: dict[str, Any] = {}
    super().add_fields(rest, record, message_dict)
    log_data["message"] = rest.pop("message", "")
    log_data["file"] = f"{record.filename}:{record.lineno}"
    log_data["thread"] = record.thread
    # The exception, stack and extra= fields; a library's private record
    # attributes (absl marks its FATAL records so) are not the reader's.
    log_data.update((k, v) for k, v in rest.items() if not k.startswith("_"))


def configure(log_format: str) -> None:
  """Makes every Python log record of this process use `log_format`.

  Call once, after absl has installed its handler (in main()). "text"
  keeps absl's format (as upstream's binary) and only makes TensorFlow's
  Python records go through it once.

  Raises:
    ValueError: an unknown format.
  """
  if log_format not in FORMATS:
    raise ValueError(f"--log_format must be one of {', '.join(FORMATS)}, not "
                     f"{log_format!r}")
  # Either way, TensorFlow's records go through the root (absl's) handler
  # only: with its own handler as well, each would be printed twice.
  for name in _LOGGERS_WITH_OWN_HANDLERS:
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
      logger.removeHandler(handler)
    logger.propagate = True
  if log_format == TEXT:
    return
  formatter = JsonFormatter()
  absl_logging.get_absl_handler().setFormatter(formatter)
  root = logging.getLogger()
  for handler in root.handlers:
    handler.setFormatter(formatter)
  logging.captureWarnings(True)
