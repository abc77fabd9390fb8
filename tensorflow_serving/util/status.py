"""The one error vocabulary of the server: canonical codes and ServingError.

Everything below model_servers/ reports failures by raising ServingError with
one of TensorFlow's canonical codes (the same numbers as tensorflow.error.Code
and grpc.StatusCode). Only the edges translate them: to a gRPC status in
model_servers/grpc_status_util.py and to an HTTP status in the REST server.
Keeping one vocabulary means gRPC and REST report the same failure the same
way, as upstream does.

An exception that is not a ServingError (a bug, a library's own exception)
becomes one in exactly one way, from_exception(): it keeps the code of an
exception that carries a canonical one (TensorFlow's OpError) and otherwise
gets CATCH_ALL_CODE, whatever the transport. docs/architecture.md says why
that code is UNKNOWN.
"""

import enum


class Code(enum.IntEnum):
  """TensorFlow's canonical error codes (tensorflow/core/protobuf/error_codes)."""

  OK = 0
  CANCELLED = 1
  UNKNOWN = 2
  INVALID_ARGUMENT = 3
  DEADLINE_EXCEEDED = 4
  NOT_FOUND = 5
  ALREADY_EXISTS = 6
  PERMISSION_DENIED = 7
  RESOURCE_EXHAUSTED = 8
  FAILED_PRECONDITION = 9
  ABORTED = 10
  OUT_OF_RANGE = 11
  UNIMPLEMENTED = 12
  INTERNAL = 13
  UNAVAILABLE = 14
  DATA_LOSS = 15
  UNAUTHENTICATED = 16


class ServingError(Exception):
  """A failure with a canonical code and a message meant for the client.

  Attributes:
    code: the canonical Code.
    message: the text a client sees (gRPC details, REST {"error": ...}).
  """

  def __init__(self, code: Code, message: str) -> None:
    super().__init__(message)
    self.code = Code(code)
    self.message = message

  def __str__(self) -> str:
    return self.message

  def __repr__(self) -> str:
    return f"ServingError({self.code.name}, {self.message!r})"

  def with_prefix(self, prefix: str) -> "ServingError":
    """Returns the same error with context in front of its message."""
    return ServingError(self.code, prefix + self.message)


# The code of an exception that carries none of its own: UNKNOWN, the
# canonical code for "an error from an API that gives no error information",
# which is also what gRPC answers for an exception escaping a handler and
# what TensorFlow reports for a Python exception inside its runtime.
CATCH_ALL_CODE = Code.UNKNOWN


def from_exception(error: BaseException) -> ServingError:
  """The ServingError that reports `error` to a client.

  A ServingError is returned as it is. An exception with a canonical
  `error_code` and a `message` (TensorFlow's tf.errors.OpError; duck-typed,
  since this layer cannot import TensorFlow) keeps both. Anything else gets
  CATCH_ALL_CODE and its text (or, when it has none, its type's name).
  Callers log the exception themselves when it is a bug worth a traceback.
  """
  if isinstance(error, ServingError):
    return error
  code = getattr(error, "error_code", None)
  message = getattr(error, "message", None)
  if (isinstance(code, int) and 0 < code < len(Code) and
      isinstance(message, str)):
    return ServingError(Code(code), message)
  return ServingError(CATCH_ALL_CODE, str(error) or type(error).__name__)


def cancelled(message: str) -> ServingError:
  return ServingError(Code.CANCELLED, message)


def unknown(message: str) -> ServingError:
  return ServingError(Code.UNKNOWN, message)


def invalid_argument(message: str) -> ServingError:
  return ServingError(Code.INVALID_ARGUMENT, message)


def deadline_exceeded(message: str) -> ServingError:
  return ServingError(Code.DEADLINE_EXCEEDED, message)


def not_found(message: str) -> ServingError:
  return ServingError(Code.NOT_FOUND, message)


def already_exists(message: str) -> ServingError:
  return ServingError(Code.ALREADY_EXISTS, message)


def resource_exhausted(message: str) -> ServingError:
  return ServingError(Code.RESOURCE_EXHAUSTED, message)


def failed_precondition(message: str) -> ServingError:
  return ServingError(Code.FAILED_PRECONDITION, message)


def aborted(message: str) -> ServingError:
  return ServingError(Code.ABORTED, message)


def out_of_range(message: str) -> ServingError:
  return ServingError(Code.OUT_OF_RANGE, message)


def unimplemented(message: str) -> ServingError:
  return ServingError(Code.UNIMPLEMENTED, message)


def internal(message: str) -> ServingError:
  return ServingError(Code.INTERNAL, message)


def unavailable(message: str) -> ServingError:
  return ServingError(Code.UNAVAILABLE, message)


def data_loss(message: str) -> ServingError:
  return ServingError(Code.DATA_LOSS, message)
