"""ServingError -> gRPC status: one of the two places errors leave the server.

The code keeps its number (TensorFlow's canonical codes are gRPC's), and the
message is cut to 1024 bytes plus "...TRUNCATED", as upstream's
grpc_status_util does, so one huge error cannot flood clients and logs.
serve() is how every gRPC servicer method calls the data plane: with the
RPC's deadline in the RequestContext, and its ServingError ending the RPC.
"""

from typing import Callable, NoReturn, Optional, TypeVar

import grpc

from tensorflow_serving.model_servers import data_plane as data_plane_lib
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status

# A deadline further away than this (about 30 years) is no deadline.
_NO_DEADLINE_SECONDS = 1e9

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

ERROR_MESSAGE_LIMIT = 1024
TRUNCATED_SUFFIX = "...TRUNCATED"

_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}


def to_grpc_code(code: status.Code) -> grpc.StatusCode:
  """The gRPC status code with the same number."""
  return _GRPC_CODES.get(int(code), grpc.StatusCode.UNKNOWN)


def error_message(message: str) -> str:
  """The message as sent: at most 1024 bytes of it, then "...TRUNCATED"."""
  encoded = message.encode("utf-8", "replace")
  if len(encoded) <= ERROR_MESSAGE_LIMIT:
    return message
  # Cut on bytes as upstream does, without leaving half a character.
  head = encoded[:ERROR_MESSAGE_LIMIT].decode("utf-8", "ignore")
  return head + TRUNCATED_SUFFIX


def abort(context: grpc.ServicerContext, error: status.ServingError) -> NoReturn:
  """Ends the RPC with the error's code and (truncated) message."""
  context.abort(to_grpc_code(error.code), error_message(error.message))


def request_context(grpc_context: grpc.ServicerContext,
                    api: Optional[str]) -> data_plane_lib.RequestContext:
  """The RequestContext of an RPC: its deadline is the gRPC deadline."""
  remaining = grpc_context.time_remaining()
  # grpcio reports an RPC without a deadline as ~2**63 ns away.
  if remaining is not None and remaining > _NO_DEADLINE_SECONDS:
    remaining = None
  return data_plane_lib.RequestContext.with_timeout(metrics.GRPC, api,
                                                    remaining)


def serve(grpc_context: grpc.ServicerContext, api: Optional[str],
          call: Callable[[RequestT, data_plane_lib.RequestContext], ResponseT],
          request: RequestT) -> ResponseT:
  """call(request, context) on the data plane; its error ends the RPC."""
  try:
    return call(request, request_context(grpc_context, api))
  except status.ServingError as e:
    abort(grpc_context, e)
