"""GrpcDrain: a gRPC server interceptor that lets a stopping server lose nothing.

Stopping a grpcio server (grpc.Server.stop) closes its ports and lets the
RPCs that are running finish, but an RPC that has arrived and not yet been
handed to a handler (grpcio takes them one at a time) is cancelled: its
client sees CANCELLED, though no work was done for it (grpc/grpc#41785).
Under load that is a few requests at every shutdown. The drain keeps every
RPC either answered or refused before any work starts:

  1. start_draining(), at the first moment of shutdown: from then on every
     new RPC (but the health service's, which reports NOT_SERVING) is
     refused with UNAVAILABLE "The model server is shutting down", before
     its request is parsed when the drain had begun by the time it arrived,
     and before its handler runs otherwise;
  2. wait_for_in_flight(): returns once every RPC admitted before that has
     finished, its answer handed to gRPC;
  3. the caller then stops the gRPC server, or, in a process about to exit,
     leaves the port open refusing RPCs until the exit closes its
     connections: a client whose request was still waiting in gRPC then sees
     UNAVAILABLE (the connection went away), never CANCELLED (see
     Server.stop).

An RPC is counted from the moment its handler starts to the moment gRPC
reports the call finished (ServicerContext.add_callback), so the count
covers sending the answer; an RPC whose handler never runs (its client went
away first) is never counted.

Thread-safety: intercept_service runs on grpcio's polling thread, the
wrapped handlers on its worker threads, start_draining and
wait_for_in_flight on the thread that stops the server.
"""

import threading
import time
from typing import Any, Callable, Optional

import grpc

# Refused with this text while draining.
SHUTTING_DOWN_MESSAGE = "The model server is shutting down"
# Methods that keep being served while draining: health checks answer
# NOT_SERVING, which is how load balancers learn to go elsewhere.
_EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)


def refusing_handler(handler: grpc.RpcMethodHandler, code: grpc.StatusCode,
                     message: str) -> grpc.RpcMethodHandler:
  """A handler of the same kind as `handler` that only ends the RPC with
  code and message; the request is not parsed (its bytes are dropped)."""

  def refuse(request_or_iterator: Any, context: grpc.ServicerContext) -> Any:
    del request_or_iterator
    context.abort(code, message)

  kind, _ = behavior_of(handler)
  return kind(refuse)


class GrpcDrain(grpc.ServerInterceptor):
  """Counts the RPCs being served and refuses new ones once draining.

  See the module doc. Install it first among the server's interceptors, so
  that a refused RPC costs nothing else.
  """

  def __init__(self) -> None:
    self._mu = threading.Lock()
    self._idle = threading.Condition(self._mu)
    self._draining = False  # guarded by self._mu (read without it as a hint)
    self._in_flight = 0  # guarded by self._mu
    # method -> (the handler as found, its counted twin, its refusal).
    # Written and read on the polling thread only.
    self._handlers: dict[str, tuple[grpc.RpcMethodHandler,
                                    grpc.RpcMethodHandler,
                                    grpc.RpcMethodHandler]] = {}

  @property
  def draining(self) -> bool:
    return self._draining

  @property
  def in_flight(self) -> int:
    """RPCs whose handler started and whose call has not finished."""
    with self._mu:
      return self._in_flight

  def start_draining(self) -> None:
    """Refuses every new RPC (except health checks) from now on."""
    with self._mu:
      self._draining = True

  def wait_for_in_flight(self, timeout: Optional[float]) -> bool:
    """Waits until no admitted RPC is left; False if `timeout` passed first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with self._mu:
      while self._in_flight:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
          return False
        self._idle.wait(remaining)
    return True

  def intercept_service(
      self, continuation: Callable[[grpc.HandlerCallDetails],
                                   Optional[grpc.RpcMethodHandler]],
      handler_call_details: grpc.HandlerCallDetails
  ) -> Optional[grpc.RpcMethodHandler]:
    handler = continuation(handler_call_details)
    if handler is None:
      return None
    method = handler_call_details.method
    cached = self._handlers.get(method)
    if cached is None or cached[0] is not handler:
      if method.startswith(_EXEMPT_PREFIXES):
        cached = (handler, handler, handler)
      else:
        cached = (handler, self._counted(handler),
                  refusing_handler(handler, grpc.StatusCode.UNAVAILABLE,
                                   SHUTTING_DOWN_MESSAGE))
      self._handlers[method] = cached
    return cached[2] if self._draining else cached[1]

  def _done(self) -> None:
    with self._mu:
      self._in_flight -= 1
      if not self._in_flight:
        self._idle.notify_all()

  def _admit(self, context: grpc.ServicerContext) -> None:
    """Counts the RPC in, or refuses it if the drain has begun."""
    with self._mu:
      if self._draining:
        refused = True
      else:
        refused = False
        self._in_flight += 1
    if refused:
      context.abort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN_MESSAGE)
    if not context.add_callback(self._done):
      self._done()  # The call has already finished.

  def _counted(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """`handler`, with its behaviour admitted and counted."""
    admit = self._admit
    kind, behavior = behavior_of(handler)

    def counted(request_or_iterator: Any, context: grpc.ServicerContext) -> Any:
      admit(context)
      return behavior(request_or_iterator, context)

    return kind(counted, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)


def behavior_of(handler: grpc.RpcMethodHandler) -> tuple[Callable[..., Any],
                                                      Callable[..., Any]]:
  """The handler's constructor (grpc.*_rpc_method_handler) and behaviour."""
  if handler.unary_unary is not None:
    return grpc.unary_unary_rpc_method_handler, handler.unary_unary
  if handler.unary_stream is not None:
    return grpc.unary_stream_rpc_method_handler, handler.unary_stream
  if handler.stream_unary is not None:
    return grpc.stream_unary_rpc_method_handler, handler.stream_unary
  return grpc.stream_stream_rpc_method_handler, handler.stream_stream
