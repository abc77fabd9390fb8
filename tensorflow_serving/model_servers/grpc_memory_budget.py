"""GrpcMemoryBudget: the server's memory budget on the gRPC port.

A server interceptor that charges each large request message to the
MemoryBudget (util/memory_budget.py) that REST bodies are charged to as
well, before the message is parsed, and gives the bytes back when the RPC
is over (its answer sent). When the budget stays full for WAIT_SECONDS the
RPC is answered RESOURCE_EXHAUSTED and its message is never parsed.

What it bounds, and what it cannot (grpcio hands a servicer a message only
once gRPC has received all of it):
  * bounded: parsing the message into its proto and what is decoded from
    it (tensors as numpy arrays, then TensorFlow's copies), charged as
    DECODE_FACTOR x the message size (measured: the parsed proto and the
    arrays each take about the message's size again);
  * not bounded by the budget: the received message itself (gRPC's buffer
    and the bytes object grpcio makes of it, about 2x its size). Each
    message is at most grpc.max_receive_message_length (2 GiB as upstream;
    lower it with --grpc_channel_arguments), and gRPC receives a message
    only for an RPC a worker thread has taken up, so at most
    --grpc_max_threads messages are being received at once; an RPC waiting
    for a worker holds no more than its HTTP/2 flow-control window;
  * not bounded: answers, and methods whose requests stream (none of the
    services here has one); a compressed message (grpc-encoding) is
    inflated by gRPC before it counts, within its per-message limit.
"""

from typing import Any, Callable, Optional

import grpc

from tensorflow_serving.model_servers import grpc_drain
from tensorflow_serving.model_servers import grpc_status_util
from tensorflow_serving.util import memory_budget as memory_budget_lib
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status

# Bytes charged per byte of message: the parsed proto, the arrays decoded
# from it, and TensorFlow's copy of the inputs.
DECODE_FACTOR = 3
# How long a large request waits for room in the budget.
WAIT_SECONDS = 0.5


class _Admitted:
  """A parsed message and the bytes it holds in the budget."""

  __slots__ = ("message", "reservation")

  def __init__(self, message: Any,
               reservation: memory_budget_lib.Reservation) -> None:
    self.message = message
    self.reservation = reservation


class _Refused:
  """A message not parsed: the budget stayed full."""

  __slots__ = ("error",)

  def __init__(self, error: status.ServingError) -> None:
    self.error = error


class GrpcMemoryBudget(grpc.ServerInterceptor):
  """Charges large unary request messages to a MemoryBudget."""

  def __init__(self, budget: memory_budget_lib.MemoryBudget) -> None:
    self._budget = budget
    # method -> (the handler as found, its budgeted twin). Polling thread.
    self._handlers: dict[str, tuple[grpc.RpcMethodHandler,
                                    grpc.RpcMethodHandler]] = {}

  def intercept_service(
      self, continuation: Callable[[grpc.HandlerCallDetails],
                                   Optional[grpc.RpcMethodHandler]],
      handler_call_details: grpc.HandlerCallDetails
  ) -> Optional[grpc.RpcMethodHandler]:
    handler = continuation(handler_call_details)
    if handler is None or handler.request_streaming:
      return handler
    method = handler_call_details.method
    cached = self._handlers.get(method)
    if cached is None or cached[0] is not handler:
      cached = (handler, self._budgeted(handler))
      self._handlers[method] = cached
    return cached[1]

  def _budgeted(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    budget = self._budget
    parse = handler.request_deserializer or (lambda data: data)
    min_charge = budget.min_charge_bytes

    def deserializer(data: bytes) -> Any:
      charge = len(data) * DECODE_FACTOR
      if charge < min_charge:
        return parse(data)
      try:
        reservation = budget.acquire(charge, WAIT_SECONDS, metrics.GRPC)
      except status.ServingError as e:
        return _Refused(e)
      try:
        return _Admitted(parse(data), reservation)
      except BaseException:
        reservation.release()
        raise

    kind, behavior = grpc_drain.behavior_of(handler)

    def budgeted(request: Any, context: grpc.ServicerContext) -> Any:
      request_type = type(request)
      if request_type is _Admitted:
        release = request.reservation.release
        if not context.add_callback(release):
          release()
        request = request.message
      elif request_type is _Refused:
        context.abort(grpc_status_util.to_grpc_code(request.error.code),
                      request.error.message)
      return behavior(request, context)

    return kind(budgeted, request_deserializer=deserializer,
                response_serializer=handler.response_serializer)
