"""Tests for GrpcDrain, on a real gRPC server and channel.

The service is generic (bytes in, bytes out) so that the test needs no
protos: "/test.Echo/Hold" blocks until the test releases it, "/test.Echo/Echo"
answers at once, and the health service's Check is exempt from the drain.
"""

import concurrent.futures
import threading

from absl.testing import absltest
import grpc

from tensorflow_serving.model_servers import grpc_drain

_WAIT = 10.0


class _Echo(grpc.GenericRpcHandler):

  def __init__(self):
    self.release = threading.Event()
    self.entered = threading.Semaphore(0)
    self.calls = 0

  def service(self, handler_call_details):
    method = handler_call_details.method
    if method == "/test.Echo/Echo":
      return grpc.unary_unary_rpc_method_handler(self._echo)
    if method == "/test.Echo/Hold":
      return grpc.unary_unary_rpc_method_handler(self._hold)
    if method == "/test.Echo/Stream":
      return grpc.unary_stream_rpc_method_handler(self._stream)
    if method == "/grpc.health.v1.Health/Check":
      return grpc.unary_unary_rpc_method_handler(self._echo)
    return None

  def _echo(self, request, context):
    del context
    self.calls += 1
    return request

  def _hold(self, request, context):
    del context
    self.calls += 1
    self.entered.release()
    assert self.release.wait(_WAIT)
    return request

  def _stream(self, request, context):
    del context
    self.calls += 1
    yield request
    yield request


class GrpcDrainTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.drain = grpc_drain.GrpcDrain()
    self.echo = _Echo()
    self.server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=4),
        interceptors=[self.drain], handlers=[self.echo])
    port = self.server.add_insecure_port("localhost:0")
    self.server.start()
    self.addCleanup(self.server.stop, None)
    self.channel = grpc.insecure_channel(f"localhost:{port}")
    self.addCleanup(self.channel.close)

  def call(self, method, payload=b"x"):
    return self.channel.unary_unary(method)(payload, timeout=_WAIT)

  def test_serves_and_counts_nothing_when_idle(self):
    self.assertEqual(self.call("/test.Echo/Echo", b"hi"), b"hi")
    stream = self.channel.unary_stream("/test.Echo/Stream")(b"s", timeout=_WAIT)
    self.assertEqual(list(stream), [b"s", b"s"])
    self.assertTrue(self.drain.wait_for_in_flight(_WAIT))
    self.assertEqual(self.drain.in_flight, 0)

  def test_unknown_method_is_still_unimplemented(self):
    with self.assertRaises(grpc.RpcError) as ctx:
      self.call("/test.Echo/Nope")
    self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

  def test_draining_refuses_new_rpcs_and_waits_for_admitted_ones(self):
    held = self.channel.unary_unary("/test.Echo/Hold").future(
        b"held", timeout=_WAIT)
    self.assertTrue(self.echo.entered.acquire(timeout=_WAIT))
    self.assertEqual(self.drain.in_flight, 1)
    self.drain.start_draining()
    calls_before = self.echo.calls
    for method in ("/test.Echo/Echo", "/test.Echo/Hold"):
      with self.assertRaises(grpc.RpcError) as ctx:
        self.call(method)
      self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)
      self.assertEqual(ctx.exception.details(),
                       grpc_drain.SHUTTING_DOWN_MESSAGE)
    stream = self.channel.unary_stream("/test.Echo/Stream")(b"s", timeout=_WAIT)
    with self.assertRaises(grpc.RpcError) as ctx:
      list(stream)
    self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)
    self.assertEqual(self.echo.calls, calls_before)  # No work was done.
    # Health checks are still answered (with NOT_SERVING, by the service).
    self.assertEqual(self.call("/grpc.health.v1.Health/Check", b"h"), b"h")
    # The admitted RPC is waited for, and answered.
    self.assertFalse(self.drain.wait_for_in_flight(0.2))
    self.echo.release.set()
    self.assertTrue(self.drain.wait_for_in_flight(_WAIT))
    self.assertEqual(held.result(), b"held")
    self.assertEqual(self.drain.in_flight, 0)


if __name__ == "__main__":
  absltest.main()
