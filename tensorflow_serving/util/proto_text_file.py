"""The one reader of the server's text-format proto config files.

--model_config_file, --platform_config_file, --batching_parameters_file,
--monitoring_config_file, --ssl_config_file and
--tensorflow_session_config_file are all text-format protos. Upstream reads
them with one function (ParseProtoTextFile in model_servers/server.cc); so
does this server, so that a bad file reads the same whichever flag named it:

  * unreadable: the read's own code (NOT_FOUND for a missing file),
    "Failed to read <path>: <reason>";
  * not valid text format: INVALID_ARGUMENT "Invalid protobuf file: '<path>'.
    Error parsing text-format <message type>: <line>:<column>: <what>". The
    second sentence is also logged at ERROR, where upstream's protobuf
    parser prints it (scripts grep stderr for "Error parsing text-format
    tensorflow.serving.ModelServerConfig").
"""

from typing import Callable, Optional, TypeVar

from absl import logging
from google.protobuf import message as message_lib
from google.protobuf import text_format

from tensorflow_serving.util import status

MessageT = TypeVar("MessageT", bound=message_lib.Message)


def _read_local_file(path: str) -> bytes:
  try:
    with open(path, "rb") as f:
      return f.read()
  except FileNotFoundError as e:
    raise status.not_found(
        f"Failed to read {path}: {e.strerror or e}") from None
  except OSError as e:
    raise status.from_exception(e).with_prefix(
        f"Failed to read {path}: ") from None


def parse_text_proto(text: str | bytes, message: MessageT,
                     path: str = "") -> MessageT:
  """Parses text-format `text` into `message` (cleared first); returns it.

  Args:
    text: the text (bytes must be UTF-8).
    message: the message to fill.
    path: the file the text came from, for the error ("" for none).

  Raises:
    ServingError: INVALID_ARGUMENT as the module docstring says (without the
      "Invalid protobuf file" sentence when there is no path).
  """
  try:
    if isinstance(text, bytes):
      text = text.decode("utf-8")
    text_format.Parse(text, message)
  except (UnicodeDecodeError, text_format.ParseError) as e:
    detail = str(e)
    if isinstance(e, text_format.ParseError) and e.GetLine() is not None:
      # The parser's text starts with "line:column : "; say it as protobuf's
      # C++ parser (and thus upstream) does.
      detail = f"{e.GetLine()}:{e.GetColumn()}: {detail.split(' : ', 1)[-1]}"
    sentence = (f"Error parsing text-format {message.DESCRIPTOR.full_name}: "
                f"{detail}")
    logging.error("%s", sentence)
    prefix = f"Invalid protobuf file: '{path}'. " if path else ""
    raise status.invalid_argument(prefix + sentence) from None
  return message


def read_text_proto_file(
    path: str,
    message: MessageT,
    read_file: Optional[Callable[[str], bytes]] = None) -> MessageT:
  """Reads the text-format file `path` into `message`; returns it.

  Args:
    path: the file.
    message: the message to fill.
    read_file: reads a whole file, raising ServingError (e.g. a storage
      FileSystem's read_file, for paths on other file systems); default: the
      local file system.

  Raises:
    ServingError: as the module docstring says.
  """
  data = (read_file or _read_local_file)(path)
  return parse_text_proto(data, message, path)
