"""Reading text-format proto files, with upstream's errors (util/proto_util.h).

Every file flag of the server names a text-format proto: --model_config_file,
--batching_parameters_file, --platform_config_file, --ssl_config_file,
--monitoring_config_file. Upstream reads them all through one
ParseProtoTextFile, so a file that cannot be read fails with the file
system's error ("<path>; No such file or directory", NOT_FOUND) and one that
does not parse with INVALID_ARGUMENT "Invalid protobuf file: '<path>'".
Upstream's parser writes its line and column to the log only; here they
follow in the same status, so the client of a reload sees them too:

    Invalid protobuf file: '<path>'. Error parsing text-format
    tensorflow.serving.BatchingParameters: 2:12: <what>
"""

import errno
from typing import TypeVar

from google.protobuf import message as message_lib
from google.protobuf import text_format

from tensorflow_serving.util import status

MessageT = TypeVar("MessageT", bound=message_lib.Message)


def invalid_protobuf_file(path: str, detail: str = "") -> status.ServingError:
  """INVALID_ARGUMENT "Invalid protobuf file: '<path>'" (+ ". <detail>")."""
  message = f"Invalid protobuf file: '{path}'"
  return status.invalid_argument(f"{message}. {detail}" if detail else message)


def parse_error_detail(full_name: str, error: Exception) -> str:
  """ "Error parsing text-format <type>: <line>:<column>: <what>" for error."""
  detail = str(error)
  if isinstance(error, text_format.ParseError) and error.GetLine() is not None:
    # The parser's own message starts with "line:column : ".
    detail = detail.split(" : ", 1)[-1]
    detail = f"{error.GetLine()}:{error.GetColumn()}: {detail}"
  return f"Error parsing text-format {full_name}: {detail}"


def parse_text_proto(path: str, data: bytes | str,
                     message: MessageT) -> MessageT:
  """Parses `data` (the contents of `path`) into `message` and returns it.

  Raises:
    ServingError: INVALID_ARGUMENT "Invalid protobuf file: '<path>'. Error
      parsing text-format <type>: <line>:<column>: <what>".
  """
  full_name = message.DESCRIPTOR.full_name
  if isinstance(data, bytes):
    try:
      data = data.decode("utf-8")
    except UnicodeDecodeError as e:
      raise invalid_protobuf_file(path, parse_error_detail(full_name,
                                                           e)) from e
  try:
    text_format.Parse(data, message)
  except text_format.ParseError as e:
    raise invalid_protobuf_file(path, parse_error_detail(full_name,
                                                         e)) from e
  return message


def read_file(path: str) -> bytes:
  """The bytes of a local file, failing as TensorFlow's file system does.

  Raises:
    ServingError: NOT_FOUND "<path>; No such file or directory",
      PERMISSION_DENIED "<path>; Permission denied", or another code with
      "<path>; <reason>".
  """
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError as e:
    reason = e.strerror or str(e)
    if e.errno == errno.ENOENT:
      code = status.Code.NOT_FOUND
    elif e.errno in (errno.EACCES, errno.EPERM):
      code = status.Code.PERMISSION_DENIED
    elif e.errno == errno.EISDIR:
      code = status.Code.FAILED_PRECONDITION
    else:
      code = status.Code.UNKNOWN
    raise status.ServingError(code, f"{path}; {reason}") from e


def parse_proto_text_file(path: str, message: MessageT) -> MessageT:
  """Reads and parses a local text-format proto file (ParseProtoTextFile).

  Raises:
    ServingError: as read_file() and parse_text_proto().
  """
  return parse_text_proto(path, read_file(path), message)
