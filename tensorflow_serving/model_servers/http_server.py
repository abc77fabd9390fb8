"""HttpRestServer: the REST API and the Prometheus page on one HTTP port.

As upstream's model_servers/http_server. The HTTP side is aiohttp's
low-level server (chosen by CPU time per request; see docs/performance.md)
running an asyncio loop on its own thread; it only moves bytes. Each /v1
request is handed to HttpRestApiHandler (and through it to the DataPlane)
on a pool of --rest_api_num_threads worker threads, because the model call
blocks (and TensorFlow releases the GIL while it runs), with a
RequestContext whose deadline is --rest_api_timeout_in_ms away. This module
is also the one place where a ServingError's code becomes an HTTP status
(to_http_status).

Per request, as upstream:
  * Only /v1/... paths reach the API; the Prometheus path (when
    MonitoringConfig enables it) serves the metrics page; anything else is a
    plain 404. Not in upstream: given a V2HttpRestApiHandler, /v2 and
    /v2/... go to it (the V2 protocol; its health and readiness calls are
    answered on the event loop, without waiting for a worker).
  * Bodies with "Content-Encoding: gzip" (or deflate) are decompressed, up
    to 100 MB.
  * A call that takes longer than --rest_api_timeout_in_ms is answered with
    DEADLINE_EXCEEDED (504); the model run itself finishes in the background.
  * OPTIONS is the CORS preflight: 200 when an Origin header names an
    http(s) origin, otherwise 400. With --rest_api_enable_cors_support every
    /v1 response carries the Access-Control-Allow-* headers.
  * Every /v1 call is counted in :tensorflow:serving:request_count and, when
    it succeeded, timed in :tensorflow:serving:request_latency
    (entrypoint="REST", API = the URL verb), by the data plane.

Lifecycle: start(port) binds and serves (from any thread); stop() closes the
port and stops the loop. Not restartable.
"""

import asyncio
import concurrent.futures
import dataclasses
import multiprocessing
import re
import socket
import threading
from typing import Optional

from absl import logging
from aiohttp import web

from tensorflow_serving.config import monitoring_config_pb2
from tensorflow_serving.model_servers import data_plane as data_plane_lib
from tensorflow_serving.model_servers import http_rest_api_handler
from tensorflow_serving.model_servers import http_rest_api_util
from tensorflow_serving.model_servers import prometheus_exporter
from tensorflow_serving.model_servers import v2_http_rest_api_handler as v2_handler_lib
from tensorflow_serving.util import json_tensor
from tensorflow_serving.util import metrics
from tensorflow_serving.util import proto_util
from tensorflow_serving.util import status

_ORIGIN_REGEX = re.compile(r"https?://.*", re.IGNORECASE)
# On stop, requests in flight get this long to finish (as the gRPC side).
_DRAIN_SECONDS = 10.0
_SHUTDOWN_TIMEOUT_SECONDS = _DRAIN_SECONDS + 5.0

_HTTP_STATUS = {
    status.Code.OK: 200,
    status.Code.CANCELLED: 499,
    status.Code.UNKNOWN: 500,
    status.Code.INVALID_ARGUMENT: 400,
    status.Code.DEADLINE_EXCEEDED: 504,
    status.Code.NOT_FOUND: 404,
    status.Code.ALREADY_EXISTS: 409,
    status.Code.PERMISSION_DENIED: 403,
    status.Code.RESOURCE_EXHAUSTED: 429,
    status.Code.FAILED_PRECONDITION: 400,
    status.Code.ABORTED: 409,
    status.Code.OUT_OF_RANGE: 400,
    status.Code.UNIMPLEMENTED: 501,
    status.Code.INTERNAL: 500,
    status.Code.UNAVAILABLE: 503,
    status.Code.DATA_LOSS: 500,
    status.Code.UNAUTHENTICATED: 401,
}
_REASONS = {499: "Client Closed Request"}


def default_num_threads() -> int:
  """--rest_api_num_threads' default: 4 per CPU, as upstream."""
  return 4 * multiprocessing.cpu_count()


def to_http_status(code: status.Code) -> int:
  """The HTTP status upstream answers a canonical error code with."""
  return _HTTP_STATUS.get(code, 500)


@dataclasses.dataclass(frozen=True)
class HttpRestServerOptions:
  """How the REST port behaves (flag names in brackets).

  Attributes:
    num_threads: worker threads that run API calls [--rest_api_num_threads];
      default 4 per CPU, as upstream.
    timeout_in_ms: per-call limit; past it the call gets 504
      [--rest_api_timeout_in_ms]. 0 or less: no limit.
    enable_cors_support: add CORS headers to /v1 responses
      [--rest_api_enable_cors_support].
    monitoring_config: serves the Prometheus page when
      prometheus_config.enable is set [--monitoring_config_file].
    host: the address to bind (all interfaces by default).
  """

  num_threads: int = dataclasses.field(default_factory=default_num_threads)
  timeout_in_ms: int = 30000
  enable_cors_support: bool = False
  monitoring_config: Optional[monitoring_config_pb2.MonitoringConfig] = None
  host: str = "0.0.0.0"


def read_monitoring_config(path: str) -> monitoring_config_pb2.MonitoringConfig:
  """Reads a --monitoring_config_file (text-format MonitoringConfig).

  Raises:
    ServingError: the file system's error if it cannot be read, or
      INVALID_ARGUMENT "Invalid protobuf file: '<path>'. ..." (upstream's
      ParseProtoTextFile) if it does not parse.
  """
  return proto_util.parse_proto_text_file(
      path, monitoring_config_pb2.MonitoringConfig())



class HttpRestServer:
  """Serves the REST API of a ServerCore. See the module docstring."""

  Options = HttpRestServerOptions

  def __init__(self, data_plane: data_plane_lib.DataPlane,
               options: HttpRestServerOptions = HttpRestServerOptions(),
               v2_handler: Optional[
                   v2_handler_lib.V2HttpRestApiHandler] = None) -> None:
    self._options = options
    self._handler = http_rest_api_handler.HttpRestApiHandler(data_plane)
    self._v2_handler = v2_handler
    self._pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, options.num_threads),
        thread_name_prefix="httprestserver")
    self._timeout: Optional[float] = (options.timeout_in_ms / 1000.0
                                      if options.timeout_in_ms > 0 else None)
    self._json_headers = dict(http_rest_api_util.JSON_HEADERS)
    if options.enable_cors_support:
      self._json_headers.update(http_rest_api_util.CORS_HEADERS)
    prometheus = (options.monitoring_config.prometheus_config
                  if options.monitoring_config is not None else None)
    self._metrics_path = None
    self._exporter = None
    if prometheus is not None and prometheus.enable:
      self._metrics_path = (prometheus.path or
                            prometheus_exporter.PROMETHEUS_PATH)
      self._exporter = prometheus_exporter.PrometheusExporter()
    self._loop: Optional[asyncio.AbstractEventLoop] = None
    self._thread: Optional[threading.Thread] = None
    self._runner: Optional[web.ServerRunner] = None
    self.port: Optional[int] = None

  # ------------------------------------------------------------ lifecycle

  def start(self, port: int) -> int:
    """Binds `port` (0: any free port) and serves; returns the bound port.

    Raises:
      OSError: the port could not be bound.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
      sock.bind((self._options.host, port))
      sock.listen(1024)
    except OSError:
      sock.close()
      raise
    self.port = sock.getsockname()[1]
    self._loop = asyncio.new_event_loop()
    started = concurrent.futures.Future()
    self._thread = threading.Thread(
        target=self._run_loop, args=(sock, started), name="httprestserver-io",
        daemon=True)
    self._thread.start()
    started.result()  # Re-raises a failure to start serving.
    logging.info("Exporting HTTP/REST API at:localhost:%d ...", self.port)
    return self.port

  def _run_loop(self, sock: socket.socket,
                started: concurrent.futures.Future) -> None:
    loop = self._loop
    asyncio.set_event_loop(loop)
    try:
      loop.run_until_complete(self._serve(sock))
    except BaseException as e:  # pylint: disable=broad-except
      started.set_exception(e)
      return
    started.set_result(None)
    loop.run_forever()
    loop.run_until_complete(self._runner.cleanup())
    loop.close()

  async def _serve(self, sock: socket.socket) -> None:
    # auto_decompress=False: bodies are decompressed here, with a size limit.
    server = web.Server(self._handle, auto_decompress=False, access_log=None)
    self._runner = web.ServerRunner(server, handle_signals=False,
                                    shutdown_timeout=_DRAIN_SECONDS)
    await self._runner.setup()
    await web.SockSite(self._runner, sock).start()

  def stop(self) -> None:
    """Closes the port; in-flight model runs finish on their own."""
    if self._loop is None:
      return
    loop, self._loop = self._loop, None
    loop.call_soon_threadsafe(loop.stop)
    self._thread.join(timeout=_SHUTDOWN_TIMEOUT_SECONDS)
    self._pool.shutdown(wait=False, cancel_futures=True)

  # ------------------------------------------------------------- requests

  async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
    path = request.raw_path.split("?", 1)[0]
    if self._metrics_path is not None and path == self._metrics_path:
      page = await asyncio.get_running_loop().run_in_executor(
          self._pool, self._exporter.generate_page)
      return web.Response(
          body=page,
          headers={"Content-Type": prometheus_exporter.CONTENT_TYPE})
    if self._v2_handler is not None and (
        path == v2_handler_lib.PATH_PREFIX or
        path.startswith(v2_handler_lib.PATH_PREFIX + "/")):
      return await self._handle_v2(request, path)
    if not http_rest_api_util.PATH_REGEX.fullmatch(path):
      return web.Response(status=404)
    if request.method == "OPTIONS":
      return self._preflight(request)
    body = await request.content.read()
    # The API label is the handler's to set, from the URL.
    context = data_plane_lib.RequestContext.with_timeout(
        metrics.REST, "", self._timeout)
    try:
      call = asyncio.get_running_loop().run_in_executor(
          self._pool, self._handler.process_request, request.method, path,
          body, context, request.headers.get("Content-Encoding", ""))
      result = await asyncio.wait_for(call, self._timeout)
    except asyncio.TimeoutError:
      # The call goes on in the background; the data plane counts it, as
      # DEADLINE_EXCEEDED, when it ends.
      result = http_rest_api_handler.RestResult.failure(
          context.deadline_exceeded())
    code = status.Code.OK if result.error is None else result.error.code
    if result.error is not None:
      logging.vlog(1, "Error Processing HTTP/REST request: %s %s Error: %s",
                   request.method, path, result.error.message)
    http_status = to_http_status(code)
    return web.Response(body=result.body.encode("utf-8"), status=http_status,
                        reason=_REASONS.get(http_status),
                        headers=self._json_headers)

  async def _handle_v2(self, request: web.BaseRequest,
                       path: str) -> web.Response:
    """A /v2 call: health answered here, the rest on the worker pool."""
    if request.method == "OPTIONS":
      return self._preflight(request)
    result = self._v2_handler.quick_response(request.method, path)
    if result is None:
      body = await request.content.read()
      context = data_plane_lib.RequestContext.with_timeout(
          metrics.REST, None, self._timeout)
      try:
        call = asyncio.get_running_loop().run_in_executor(
            self._pool, self._v2_handler.process_request, request.method,
            path, body, request.headers, context)
        result = await asyncio.wait_for(call, self._timeout)
      except asyncio.TimeoutError:
        result = v2_handler_lib.V2RestResult.failure(
            context.deadline_exceeded())
    if result.error is not None:
      logging.vlog(1, "Error Processing HTTP/REST request: %s %s Error: %s",
                   request.method, path, result.error.message)
      http_status = to_http_status(result.error.code)
    else:
      http_status = result.http_status or 200
    headers = dict(self._json_headers)
    headers["Content-Type"] = result.content_type
    if result.header_length is not None:
      headers[v2_handler_lib.HEADER_CONTENT_LENGTH] = str(
          result.header_length)
    return web.Response(body=result.body, status=http_status,
                        reason=_REASONS.get(http_status), headers=headers)

  def _preflight(self, request: web.BaseRequest) -> web.Response:
    origin = request.headers.get("Origin", "")
    if _ORIGIN_REGEX.fullmatch(origin):
      return web.Response(status=200, headers=self._json_headers)
    return web.Response(
        body=json_tensor.make_json_error(
            "Origin header is missing in CORS preflight").encode("utf-8"),
        status=400, headers=self._json_headers)
