"""HttpRestServer: the REST API and the Prometheus page on one HTTP port.

As upstream's model_servers/http_server. The HTTP side is an asyncio
protocol on a uvloop event loop of its own thread, with httptools (the C
HTTP/1.1 parser llhttp) reading requests: among the Python HTTP stacks
measured side by side it spends the least CPU per request
(docs/performance.md, "REST, small requests"). It only moves bytes: each
/v1 request goes to HttpRestApiHandler (and through it to the DataPlane)
with a RequestContext whose deadline is --rest_api_timeout_in_ms away, in
one of two places:

  * on the event loop itself, when calls of its kind (same method, URL path
    and body size class) were measured to take less than
    HttpRestServerOptions.inline_max_micros (1 ms by default). Handing a
    call to a thread and back costs more CPU than such a call; a short call
    holds the loop no longer than a pool thread would hold the interpreter
    lock. Past the deadline it is answered 504 by the data plane's check
    after the call;
  * otherwise on a pool of --rest_api_num_threads worker threads, because
    the model call blocks (and TensorFlow releases the GIL while it runs),
    so that a slow model never holds up the others; the loop answers 504
    when the deadline passes. Every call of a kind not yet measured goes
    here, and each call's run time is recorded (CallTimes), so a kind that
    becomes fast moves to the loop and one that becomes slow moves to the
    pool.

This module is also the one place where a ServingError's code becomes an
HTTP status (to_http_status).

Per request, as upstream:
  * Only /v1/... paths reach the API; the Prometheus path (when
    MonitoringConfig enables it) serves the metrics page; anything else is a
    plain 404. Not in upstream: given a V2HttpRestApiHandler, /v2 and
    /v2/... go to it (the V2 protocol; its health and readiness calls are
    answered on the event loop, without waiting for a worker).
  * Bodies with "Content-Encoding: gzip" (or deflate) are decompressed, up
    to 100 MB.
  * A call that takes longer than --rest_api_timeout_in_ms is answered with
    DEADLINE_EXCEEDED (504); a model run on the pool finishes in the
    background.
  * OPTIONS is the CORS preflight: 200 when an Origin header names an
    http(s) origin, otherwise 400. With --rest_api_enable_cors_support every
    /v1 response carries the Access-Control-Allow-* headers.
  * Every /v1 call is counted in :tensorflow:serving:request_count and, when
    it succeeded, timed in :tensorflow:serving:request_latency
    (entrypoint="REST", API = the URL verb), by the data plane.

HTTP/1.1 as clients use it: keep-alive (and HTTP/1.0's), pipelined requests
answered in order, chunked request bodies, "Expect: 100-continue"; a request
the parser refuses gets 400 and the connection is closed. The request line
and headers may take up to 1 MiB.

Lifecycle: start(port) binds and serves (from any thread); stop() stops
accepting, lets requests in flight finish for up to 10 s (answered as
usual), closes the connections and stops the loop. Not restartable.
"""

import asyncio
import collections
import concurrent.futures
import dataclasses
import email.utils
import http
import multiprocessing
import re
import socket
import threading
import time
from typing import Awaitable, Callable, Hashable, Optional, TypeVar, Union

from absl import logging
import httptools
try:
  import uvloop  # pylint: disable=g-import-not-at-top
except ImportError:  # Not on Windows; asyncio's own loop serves there.
  uvloop = None

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
# The request line and headers of one request may take this many bytes.
_MAX_HEAD_BYTES = 1 << 20
# Pipelined requests queued on one connection before it stops reading.
_MAX_QUEUED = 16
# What a handler's call returns (RestResult, V2RestResult).
_Result = TypeVar("_Result")


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
    inline_max_micros: calls measured to run for less than this run on the
      event loop instead of the pool (see the module docstring); 0: every
      call on the pool.
  """

  num_threads: int = dataclasses.field(default_factory=default_num_threads)
  timeout_in_ms: int = 30000
  enable_cors_support: bool = False
  monitoring_config: Optional[monitoring_config_pb2.MonitoringConfig] = None
  host: str = "0.0.0.0"
  inline_max_micros: int = 1000


class CallTimes:
  """How long each kind of call runs: which may run on the event loop.

  A kind is whatever key the caller picks (here: method, URL path, body
  size class). The estimate of a kind follows its fastest recent runs: a
  run faster than the estimate replaces it, a slower one can at most double
  it. On a busy machine a short call is often preempted and then takes many
  times its own length; this keeps such calls short while a kind whose
  every call is slow crosses the limit within a few calls. A run over
  _SLOW_FACTOR times the limit replaces the estimate at once, so that one
  truly slow call sends its kind to the pool. A kind never measured is not
  short. Called from the loop and the pool threads: each update is one dict
  store (atomic under the interpreter lock), and a lost update only delays
  a decision by one call.
  """

  _SLOW_FACTOR = 20
  _MAX_KINDS = 4096  # Past this many kinds (URLs are the client's), start over.

  def __init__(self, limit_seconds: float) -> None:
    self._limit = limit_seconds
    self._estimates: dict[Hashable, float] = {}

  def is_short(self, kind: Hashable) -> bool:
    """Whether calls of this kind were measured to take under the limit."""
    return self._estimates.get(kind, self._limit) < self._limit

  def record(self, kind: Hashable, seconds: float) -> None:
    """Records one run (wall time) of a call of this kind."""
    previous = self._estimates.get(kind)
    if previous is None or seconds >= self._limit * self._SLOW_FACTOR:
      estimate = seconds
      if previous is None and len(self._estimates) >= self._MAX_KINDS:
        self._estimates = {}
    else:
      estimate = min(seconds, 2 * previous)
    self._estimates[kind] = estimate


def read_monitoring_config(path: str) -> monitoring_config_pb2.MonitoringConfig:
  """Reads a --monitoring_config_file (text-format MonitoringConfig).

  Raises:
    ServingError: the file system's error if it cannot be read, or
      INVALID_ARGUMENT "Invalid protobuf file: '<path>'. ..." (upstream's
      ParseProtoTextFile) if it does not parse.
  """
  return proto_util.parse_proto_text_file(
      path, monitoring_config_pb2.MonitoringConfig())



@dataclasses.dataclass(frozen=True, slots=True)
class HttpRequest:
  """One HTTP request as the server's handlers see it.

  Attributes:
    method: "GET", "POST", ...
    path: the URL path as sent (still percent-encoded), without the query.
    headers: header names lower-cased -> values (the last of repeats).
    body: the body, de-chunked (Content-Encoding is the handler's).
  """

  method: str
  path: str
  headers: dict[str, str]
  body: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class HttpResponse:
  """What the server writes back: status, header lines (b"Name: value\r\n"
  each, without Content-Length), body."""

  status: int
  headers: bytes
  body: bytes


def _header_lines(headers) -> bytes:
  return b"".join(f"{name}: {value}\r\n".encode("latin-1")
                  for name, value in headers)


def _status_line(code: int) -> bytes:
  try:
    reason = _REASONS.get(code) or http.HTTPStatus(code).phrase
  except ValueError:
    reason = "Unknown"
  return f"HTTP/1.1 {code} {reason}\r\n".encode("latin-1")


class _Date:
  """The Date header's value, formatted once per second."""

  def __init__(self) -> None:
    self._second = -1
    self._line = b""

  def line(self) -> bytes:
    now = int(time.time())
    if now != self._second:
      self._second = now
      self._line = ("Date: " + email.utils.formatdate(now, usegmt=True) +
                    "\r\n").encode("latin-1")
    return self._line


class _Connection(asyncio.Protocol):
  """One client connection: httptools parses, requests are answered in
  order (pipelined ones wait in a queue; reading pauses while it is long or
  the client does not read its answers). Runs on the loop thread only."""

  def __init__(self, server: "HttpRestServer") -> None:
    self._server = server
    self._parser = httptools.HttpRequestParser(self)
    self._transport: Optional[asyncio.Transport] = None
    self._url = b""
    self._headers: dict[str, str] = {}
    self._body: list[bytes] = []
    self._head_bytes = 0
    self._in_message = False
    self._queue: collections.deque = collections.deque()
    self._busy = False  # A request is being answered asynchronously.
    self._closing = False  # Close once nothing is in flight.
    self._paused = False

  # asyncio.Protocol

  def connection_made(self, transport: asyncio.Transport) -> None:
    self._transport = transport
    self._server._connections.add(self)  # pylint: disable=protected-access

  def connection_lost(self, exc: Optional[Exception]) -> None:
    self._transport = None
    self._queue.clear()
    self._server._connection_closed(self)  # pylint: disable=protected-access

  def data_received(self, data: bytes) -> None:
    try:
      self._parser.feed_data(data)
    except httptools.HttpParserUpgrade:
      self._refuse(400)  # No protocol upgrades here.
    except httptools.HttpParserError:
      self._refuse(400)

  def pause_writing(self) -> None:
    if self._transport is not None:
      self._transport.pause_reading()

  def resume_writing(self) -> None:
    if self._transport is not None and not self._paused:
      self._transport.resume_reading()

  # httptools callbacks

  def on_message_begin(self) -> None:
    self._url = b""
    self._headers = {}
    self._body = []
    self._head_bytes = 0
    self._in_message = True

  def on_url(self, url: bytes) -> None:
    self._url += url
    self._count_head(len(url))

  def on_header(self, name: bytes, value: bytes) -> None:
    self._count_head(len(name) + len(value))
    self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

  def on_headers_complete(self) -> None:
    if (self._headers.get("expect", "").lower() == "100-continue" and
        self._transport is not None):
      self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

  def on_body(self, body: bytes) -> None:
    self._body.append(body)

  def on_message_complete(self) -> None:
    self._in_message = False
    url = self._url
    if not url.startswith(b"/"):  # absolute-form, "http://host/path?q"
      url = httptools.parse_url(url).path or b"/"
    path = url.split(b"?", 1)[0].decode("utf-8", "surrogateescape")
    request = HttpRequest(self._parser.get_method().decode("ascii"), path,
                          self._headers, b"".join(self._body))
    item = (request, self._parser.should_keep_alive())
    if self._busy or self._queue:
      self._queue.append(item)
      if len(self._queue) >= _MAX_QUEUED and not self._paused:
        self._paused = True
        self._transport.pause_reading()
      return
    self._serve(item)

  # answering

  def _count_head(self, n: int) -> None:
    self._head_bytes += n
    if self._head_bytes > _MAX_HEAD_BYTES:
      raise httptools.HttpParserError("request head too large")

  def _serve(self, item: tuple[HttpRequest, bool]) -> None:
    while True:
      request, keep_alive = item
      try:
        response = self._server._respond(request)  # pylint: disable=protected-access
      except Exception:  # pylint: disable=broad-except
        logging.exception("REST %s %s failed", request.method, request.path)
        response = HttpResponse(500, b"", b"")
      if not isinstance(response, HttpResponse):
        self._busy = True
        asyncio.ensure_future(self._serve_later(request, keep_alive, response))
        return
      self._write(request, keep_alive, response)
      if not self._queue or self._transport is None:
        break
      item = self._queue.popleft()
    self._maybe_resume()

  async def _serve_later(self, request: HttpRequest, keep_alive: bool,
                         response: Awaitable[HttpResponse]) -> None:
    try:
      answer = await response
    except Exception:  # pylint: disable=broad-except
      logging.exception("REST %s %s failed", request.method, request.path)
      answer = HttpResponse(500, b"", b"")
    self._busy = False
    if self._transport is None:
      return
    self._write(request, keep_alive, answer)
    if self._queue and self._transport is not None:
      self._serve(self._queue.popleft())
    else:
      self._maybe_resume()

  def _maybe_resume(self) -> None:
    if self._paused and self._transport is not None and not self._queue:
      self._paused = False
      self._transport.resume_reading()

  def _write(self, request: HttpRequest, keep_alive: bool,
             response: HttpResponse) -> None:
    transport = self._transport
    if transport is None:
      return
    close = not keep_alive or (self._closing and not self._queue)
    head = b"".join((
        _status_line(response.status), response.headers,
        self._server._date.line(),  # pylint: disable=protected-access
        b"Content-Length: %d\r\n" % len(response.body),
        b"Connection: close\r\n\r\n" if close else b"\r\n"))
    if request.method == "HEAD":
      transport.write(head)
    else:
      transport.write(head + response.body)
    if close:
      transport.close()
      self._transport = None

  def _refuse(self, code: int) -> None:
    """Answers a request the parser refused, and closes."""
    transport = self._transport
    if transport is None:
      return
    self._transport = None
    self._queue.clear()
    transport.write(_status_line(code) + self._server._date.line() +  # pylint: disable=protected-access
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    transport.close()

  def close_when_idle(self) -> None:
    """Stopping: closes now if nothing is in flight, else after it."""
    self._closing = True
    if (self._transport is not None and not self._busy and not self._queue and
        not self._in_message):
      self._transport.close()
      self._transport = None

  def abort(self) -> None:
    if self._transport is not None:
      self._transport.abort()
      self._transport = None


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
    self._call_times = CallTimes(options.inline_max_micros / 1e6)
    headers = list(http_rest_api_util.JSON_HEADERS)
    if options.enable_cors_support:
      headers += http_rest_api_util.CORS_HEADERS
    self._json_headers = _header_lines(headers)
    self._cors_headers = _header_lines(
        http_rest_api_util.CORS_HEADERS if options.enable_cors_support else ())
    prometheus = (options.monitoring_config.prometheus_config
                  if options.monitoring_config is not None else None)
    self._metrics_path = None
    self._exporter = None
    if prometheus is not None and prometheus.enable:
      self._metrics_path = (prometheus.path or
                            prometheus_exporter.PROMETHEUS_PATH)
      self._exporter = prometheus_exporter.PrometheusExporter()
    self._metrics_headers = _header_lines(
        (("Content-Type", prometheus_exporter.CONTENT_TYPE),))
    self._date = _Date()
    self._connections: set[_Connection] = set()  # Loop thread only.
    self._drained: Optional[asyncio.Event] = None
    self._loop: Optional[asyncio.AbstractEventLoop] = None
    self._thread: Optional[threading.Thread] = None
    self._server: Optional[asyncio.AbstractServer] = None
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
    self._loop = (uvloop.new_event_loop() if uvloop is not None else
                  asyncio.new_event_loop())
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
      self._server = loop.run_until_complete(
          loop.create_server(lambda: _Connection(self), sock=sock,
                             backlog=1024))
    except BaseException as e:  # pylint: disable=broad-except
      started.set_exception(e)
      return
    started.set_result(None)
    loop.run_forever()
    loop.run_until_complete(self._drain())
    loop.close()

  async def _drain(self) -> None:
    """Stops accepting, lets requests in flight finish (up to
    _DRAIN_SECONDS), then closes every connection."""
    self._server.close()
    self._drained = asyncio.Event()
    for connection in list(self._connections):
      connection.close_when_idle()
    if self._connections:
      try:
        await asyncio.wait_for(self._drained.wait(), _DRAIN_SECONDS)
      except asyncio.TimeoutError:
        pass
    for connection in list(self._connections):
      connection.abort()
    await self._server.wait_closed()

  def _connection_closed(self, connection: _Connection) -> None:
    self._connections.discard(connection)
    if self._drained is not None and not self._connections:
      self._drained.set()

  def stop(self) -> None:
    """Stops serving; requests in flight are answered first (up to 10 s).
    Model runs left on the pool finish on their own."""
    if self._loop is None:
      return
    loop, self._loop = self._loop, None
    loop.call_soon_threadsafe(loop.stop)
    self._thread.join(timeout=_SHUTDOWN_TIMEOUT_SECONDS)
    self._pool.shutdown(wait=False, cancel_futures=True)

  # ------------------------------------------------------------- requests

  def _respond(
      self, request: HttpRequest
  ) -> Union[HttpResponse, Awaitable[HttpResponse]]:
    """The response, or an awaitable of it (calls run on the pool)."""
    path = request.path
    if self._metrics_path is not None and path == self._metrics_path:
      return self._metrics_page()
    if self._v2_handler is not None and (
        path == v2_handler_lib.PATH_PREFIX or
        path.startswith(v2_handler_lib.PATH_PREFIX + "/")):
      return self._respond_v2(request)
    if not http_rest_api_util.PATH_REGEX.fullmatch(path):
      return HttpResponse(404, b"", b"")
    if request.method == "OPTIONS":
      return self._preflight(request)
    # The API label is the handler's to set, from the URL.
    context = data_plane_lib.RequestContext.with_timeout(
        metrics.REST, "", self._timeout)
    args = (request.method, path, request.body, context,
            request.headers.get("content-encoding", ""))
    return self._run(request, self._handler.process_request, args, context,
                     http_rest_api_handler.RestResult.failure,
                     self._to_response)

  def _respond_v2(
      self, request: HttpRequest
  ) -> Union[HttpResponse, Awaitable[HttpResponse]]:
    """A /v2 call: health, readiness and server metadata are answered here
    at once (a probe never waits for a worker); the rest run as /v1 calls
    do."""
    if request.method == "OPTIONS":
      return self._preflight(request)
    result = self._v2_handler.quick_response(request.method, request.path)
    if result is not None:
      return self._to_v2_response(request, result)
    context = data_plane_lib.RequestContext.with_timeout(
        metrics.REST, None, self._timeout)
    args = (request.method, request.path, request.body, request.headers,
            context)
    return self._run(request, self._v2_handler.process_request, args, context,
                     v2_handler_lib.V2RestResult.failure, self._to_v2_response)

  def _run(self, request: HttpRequest, call: Callable[..., _Result],
           args: tuple, context: data_plane_lib.RequestContext,
           failure: Callable[[status.ServingError], _Result],
           to_response: Callable[[HttpRequest, _Result], HttpResponse]
          ) -> Union[HttpResponse, Awaitable[HttpResponse]]:
    """Runs `call(*args)` on the loop when calls of its kind were measured
    short, else on the pool (see the module docstring)."""
    kind = (request.method, request.path, len(request.body).bit_length())
    if self._call_times.is_short(kind):
      return to_response(request, self._timed_call(kind, call, args))
    return self._respond_from_pool(request, kind, call, args, context,
                                   failure, to_response)

  async def _respond_from_pool(
      self, request: HttpRequest, kind: Hashable,
      call: Callable[..., _Result], args: tuple,
      context: data_plane_lib.RequestContext,
      failure: Callable[[status.ServingError], _Result],
      to_response: Callable[[HttpRequest, _Result], HttpResponse]
  ) -> HttpResponse:
    try:
      future = asyncio.get_running_loop().run_in_executor(
          self._pool, self._timed_call, kind, call, args)
      result = await asyncio.wait_for(future, self._timeout)
    except asyncio.TimeoutError:
      # The call goes on in the background; the data plane counts it, as
      # DEADLINE_EXCEEDED, when it ends.
      result = failure(context.deadline_exceeded())
    return to_response(request, result)

  def _timed_call(self, kind: Hashable, call: Callable[..., _Result],
                  args: tuple) -> _Result:
    start = time.perf_counter()
    try:
      return call(*args)
    finally:
      self._call_times.record(kind, time.perf_counter() - start)

  def _to_response(self, request: HttpRequest,
                   result: http_rest_api_handler.RestResult) -> HttpResponse:
    if result.error is None:
      return HttpResponse(200, self._json_headers, result.body.encode("utf-8"))
    logging.vlog(1, "Error Processing HTTP/REST request: %s %s Error: %s",
                 request.method, request.path, result.error.message)
    return HttpResponse(to_http_status(result.error.code), self._json_headers,
                        result.body.encode("utf-8"))

  def _to_v2_response(self, request: HttpRequest,
                      result: v2_handler_lib.V2RestResult) -> HttpResponse:
    if result.error is not None:
      logging.vlog(1, "Error Processing HTTP/REST request: %s %s Error: %s",
                   request.method, request.path, result.error.message)
      http_status = to_http_status(result.error.code)
    else:
      http_status = result.http_status or 200
    headers = [("Content-Type", result.content_type)]
    if result.header_length is not None:
      headers.append((v2_handler_lib.HEADER_CONTENT_LENGTH,
                      str(result.header_length)))
    return HttpResponse(http_status,
                        _header_lines(headers) + self._cors_headers,
                        result.body)

  async def _metrics_page(self) -> HttpResponse:
    page = await asyncio.get_running_loop().run_in_executor(
        self._pool, self._exporter.generate_page)
    return HttpResponse(200, self._metrics_headers, page)

  def _preflight(self, request: HttpRequest) -> HttpResponse:
    origin = request.headers.get("origin", "")
    if _ORIGIN_REGEX.fullmatch(origin):
      return HttpResponse(200, self._json_headers, b"")
    return HttpResponse(
        400, self._json_headers,
        json_tensor.make_json_error(
            "Origin header is missing in CORS preflight").encode("utf-8"))
