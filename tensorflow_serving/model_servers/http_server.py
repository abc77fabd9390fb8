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
  * A body may take up to --rest_api_max_body_bytes (100 MB by default) as
    received and once inflated ("Content-Encoding: gzip" or deflate, undone
    a chunk at a time); a larger one is answered 413 {"error": ...} and its
    bytes are dropped as they arrive. Not in upstream: a large body is
    charged to the server's memory budget (--request_memory_budget_bytes,
    shared with gRPC) as it arrives, as it inflates and for decoding
    (http_rest_api_util.BodyBudget); while the budget is full it waits
    briefly (reading from its connection paused), then is answered 429
    RESOURCE_EXHAUSTED, never allocated.
  * A call that takes longer than --rest_api_timeout_in_ms is answered with
    DEADLINE_EXCEEDED (504); a model run on the pool finishes in the
    background.
  * OPTIONS is the CORS preflight: 200 when an Origin header names an
    http(s) origin, otherwise 400. With --rest_api_enable_cors_support every
    /v1 response carries the Access-Control-Allow-* headers.
  * Every /v1 call is counted in :tensorflow:serving:request_count and, when
    it succeeded, timed in :tensorflow:serving:request_latency
    (entrypoint="REST", API = the URL verb), by the data plane.

Not in upstream: given an SSL context (--rest_api_ssl_config_file, made by
ssl_util.build_ssl_context: TLS 1.2+, mutual TLS with client_verify), the
port speaks HTTPS only; a client that sends plain HTTP fails the handshake and is disconnected. Given
a RestrictedApi (--restricted_api), each request's API group comes from its
URL (api_group) and a guarded group's request without its header gets 403
{"error": ...} before its body is looked at; OPTIONS stays open.

HTTP/1.1 as clients use it: keep-alive (and HTTP/1.0's), pipelined requests
answered in order, chunked request bodies, "Expect: 100-continue"; a request
the parser refuses gets 400 and the connection is closed. The request line
and headers may take up to 1 MiB.

Lifecycle: start(port) binds and serves (from any thread). Stopping loses
nothing: start_draining() makes every new request (on a new or a kept-alive
connection, pipelined or not; V2 health probes aside) get 503 {"error":
"The model server is shutting down"} before any work, and every answer
close its connection, and drops new connections' SYNs (Linux; their
clients retry, and are refused once the port closes, rather than accepted
and reset); wait_for_in_flight() waits for the requests already admitted;
stop() does both, then answers the handshakes that were under way, closes
each connection once quiet, and stops the loop (or, keep_port=True, leaves
it answering 503 for the process's exit to close). Not restartable.
"""

import asyncio
import collections
import concurrent.futures
import ctypes
import dataclasses
import email.utils
import http
import multiprocessing
import re
import socket
import struct
import ssl
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
from tensorflow_serving.model_servers import restricted_api as restricted_api_lib
from tensorflow_serving.model_servers import v2_http_rest_api_handler as v2_handler_lib
from tensorflow_serving.util import json_tensor
from tensorflow_serving.util import memory_budget as memory_budget_lib
from tensorflow_serving.util import metrics
from tensorflow_serving.util import proto_util
from tensorflow_serving.util import status

_ORIGIN_REGEX = re.compile(r"https?://.*", re.IGNORECASE)
# On stop, requests in flight get this long to finish (as the gRPC side).
_DRAIN_SECONDS = 10.0
# At the end of a drain, a connection with nothing in flight for this long
# is closed; the last ones are closed (or left to the exit) after
# _LINGER_SECONDS. Closing a connection its client is about to send on
# resets that request, so the wait is generous: a client thread of a busy
# machine may take a while between connecting (or reading an answer) and
# sending.
_QUIET_SECONDS = 1.5
_LINGER_SECONDS = 5.0
_SETTLE_SECONDS = 0.25
_SHUTDOWN_TIMEOUT_SECONDS = _DRAIN_SECONDS + _LINGER_SECONDS + 5.0
# Draining: new requests are answered 503 with this (as gRPC's UNAVAILABLE).
SHUTTING_DOWN_MESSAGE = "The model server is shutting down"
# Linux's SO_ATTACH_FILTER, and a classic BPF program for a listening TCP
# socket that drops SYNs without ACK (new connections) and keeps the rest
# (handshakes under way, which then complete): (code, jt, jf, k) each.
_SO_ATTACH_FILTER = 26
_DROP_NEW_CONNECTIONS = (
    (0x30, 0, 0, 13),  # ldb [13]: the TCP header's flags
    (0x54, 0, 0, 0x12),  # and #(SYN|ACK)
    (0x15, 0, 1, 0x02),  # jeq #SYN: next (drop), else skip it
    (0x06, 0, 0, 0),  # ret #0: drop
    (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1: keep
)

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
# V2 liveness and readiness probes, answered even while draining.
_V2_HEALTH_PREFIX = v2_handler_lib.PATH_PREFIX + "/health/"
# What a handler's call returns (RestResult, V2RestResult).
_Result = TypeVar("_Result")


def default_num_threads() -> int:
  """--rest_api_num_threads' default: 4 per CPU, as upstream."""
  return 4 * multiprocessing.cpu_count()


def to_http_status(code: status.Code) -> int:
  """The HTTP status upstream answers a canonical error code with."""
  return _HTTP_STATUS.get(code, 500)


def http_status_of(error: status.ServingError) -> int:
  """The HTTP status of an error: its code's (to_http_status), but 413 for
  a body over --rest_api_max_body_bytes (RESOURCE_EXHAUSTED otherwise
  answers 429)."""
  if isinstance(error, http_rest_api_util.BodyTooLargeError):
    return 413
  return to_http_status(error.code)


def _accept_queue_length(sock) -> int:
  """Connections a listening socket has established and not yet handed to
  accept() (Linux's TCP_INFO tcpi_unacked of a listener); 0 if unknown."""
  try:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32)
  except (OSError, AttributeError):
    return 0
  return struct.unpack_from("I", info, 24)[0] if len(info) >= 28 else 0


def _drop_new_connections(sock) -> bool:
  """Makes a listening socket drop new connections' SYNs (Linux), so that
  their clients retry and, once the process has exited, are refused, while
  handshakes already under way complete and are answered. False where the
  kernel does not support it."""
  program = (ctypes.c_ubyte * (8 * len(_DROP_NEW_CONNECTIONS)))()
  for i, (code, jt, jf, k) in enumerate(_DROP_NEW_CONNECTIONS):
    struct.pack_into("HBBI", program, 8 * i, code, jt, jf, k)
  fprog = struct.pack("HL", len(_DROP_NEW_CONNECTIONS),
                      ctypes.addressof(program))
  try:
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
  except OSError:
    return False
  return True


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
    max_body_bytes: the largest body, as received and once inflated; over
      it: 413 [--rest_api_max_body_bytes].
    ssl_context: serve HTTPS only, with this server-side context
      (ssl_util.build_ssl_context of --rest_api_ssl_config_file); None:
      plain HTTP.
    restricted_api: the API groups that need a header [--restricted_api];
      None: every API is open.
  """

  num_threads: int = dataclasses.field(default_factory=default_num_threads)
  timeout_in_ms: int = 30000
  enable_cors_support: bool = False
  monitoring_config: Optional[monitoring_config_pb2.MonitoringConfig] = None
  host: str = "0.0.0.0"
  inline_max_micros: int = 1000
  max_body_bytes: int = http_rest_api_util.DEFAULT_MAX_BODY_BYTES
  ssl_context: Optional[ssl.SSLContext] = None
  restricted_api: Optional[restricted_api_lib.RestrictedApi] = None


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
    body_budget: the body's limit and its share of the memory budget, for a
      body large enough to charge or still to be inflated; else None. The
      server releases it once the answer is written.
  """

  method: str
  path: str
  headers: dict[str, str]
  body: bytes
  body_budget: Optional[http_rest_api_util.BodyBudget] = None


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


class _Incoming:
  """One request while it arrives: its body so far and what it holds in the
  memory budget."""

  __slots__ = ("body", "size", "budget", "owed", "charging", "refusal",
               "pending")

  def __init__(self) -> None:
    self.body: list[bytes] = []
    self.size = 0
    self.budget: Optional[http_rest_api_util.BodyBudget] = None
    self.owed = 0  # Bytes received while waiting for room, not charged yet.
    self.charging = False  # Waiting for room in the budget (off the loop).
    # The answer instead of the call (413, or 429 when the budget stayed
    # full); its body is then dropped as it arrives.
    self.refusal: Optional[HttpResponse] = None
    self.pending: Optional["_Pending"] = None  # Once complete.


class _Pending:
  """A complete request waiting for its turn on its connection (and, while
  `ready` is False, for its body's room in the memory budget)."""

  __slots__ = ("request", "keep_alive", "ready", "response")

  def __init__(self, request: HttpRequest, keep_alive: bool, ready: bool,
               response: Optional[HttpResponse]) -> None:
    self.request = request
    self.keep_alive = keep_alive
    self.ready = ready
    self.response = response


class _Connection(asyncio.Protocol):
  """One client connection: httptools parses, requests are answered in
  order (pipelined ones wait in a queue; reading pauses while it is long,
  while the client does not read its answers, or while a body waits for
  room in the memory budget). Bodies are limited to max_body_bytes as they
  arrive and charged to the memory budget a chunk at a time. Runs on the
  loop thread only."""

  def __init__(self, server: "HttpRestServer") -> None:
    self._server = server
    self._parser = httptools.HttpRequestParser(self)
    self._transport: Optional[asyncio.Transport] = None
    self._url = b""
    self._headers: dict[str, str] = {}
    self._message = _Incoming()
    self._head_bytes = 0
    self._in_message = False
    self._queue: collections.deque[_Pending] = collections.deque()
    self._busy = False  # A request is being answered asynchronously.
    # Answers carry "Connection: close" (the server is draining).
    self._closing = server._draining  # pylint: disable=protected-access
    self._charging = 0  # Bodies waiting for room in the budget.
    self._deferring = False  # Queue requests, answer after this data.
    self._write_paused = False
    self._read_paused = False
    self.last_active = time.monotonic()

  # asyncio.Protocol

  def connection_made(self, transport: asyncio.Transport) -> None:
    self._transport = transport
    self._server._connections.add(self)  # pylint: disable=protected-access

  def connection_lost(self, exc: Optional[Exception]) -> None:
    self._transport = None
    for pending in self._queue:
      if pending.ready:  # Else its wait for room releases it.
        _release(pending.request)
    self._queue.clear()
    message = self._message
    if message.budget is not None and not message.charging:
      message.budget.release()
    self._server._connection_closed(self)  # pylint: disable=protected-access

  def data_received(self, data: bytes) -> None:
    self.last_active = time.monotonic()
    # Draining: answer only once every request in this data is queued, so
    # that the last one pipelined, not the first, says "Connection: close".
    deferring = self._deferring = self._closing
    try:
      self._parser.feed_data(data)
    except httptools.HttpParserUpgrade:
      self._refuse(400)  # No protocol upgrades here.
    except httptools.HttpParserError:
      self._refuse(400)
    if deferring:
      self._deferring = False
      self._pump()

  def pause_writing(self) -> None:
    self._write_paused = True
    self._update_reading()

  def resume_writing(self) -> None:
    self._write_paused = False
    self._update_reading()

  # httptools callbacks

  def on_message_begin(self) -> None:
    self._url = b""
    self._headers = {}
    self._message = _Incoming()
    self._head_bytes = 0
    self._in_message = True

  def on_url(self, url: bytes) -> None:
    self._url += url
    self._count_head(len(url))

  def on_header(self, name: bytes, value: bytes) -> None:
    self._count_head(len(name) + len(value))
    self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

  def on_headers_complete(self) -> None:
    server = self._server
    length = self._headers.get("content-length", "")
    if length.isdigit() and int(length) > server.max_body_bytes:
      # Its body is dropped as it arrives; the 413 comes in its turn.
      self._message.refusal = server.too_large_response()
      return
    if (self._headers.get("expect", "").lower() == "100-continue" and
        self._transport is not None):
      self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

  def on_body(self, body: bytes) -> None:
    message = self._message
    if message.refusal is not None:
      return
    server = self._server
    n = len(body)
    message.size += n
    if message.size > server.max_body_bytes:
      self._refuse_body(message, server.too_large_response())
      return
    message.body.append(body)
    if server.memory_budget is None:
      return
    if message.charging:
      message.owed += n
      return
    if message.budget is None:
      if message.size < server.memory_budget.min_charge_bytes:
        return
      message.budget = server.new_body_budget()
      n = message.size
    if not message.budget.try_add(n):
      message.owed = n
      message.charging = True
      self._charging += 1
      self._update_reading()
      asyncio.ensure_future(self._wait_for_room(message))

  def on_message_complete(self) -> None:
    self._in_message = False
    message = self._message
    url = self._url
    if not url.startswith(b"/"):  # absolute-form, "http://host/path?q"
      url = httptools.parse_url(url).path or b"/"
    path = url.split(b"?", 1)[0].decode("utf-8", "surrogateescape")
    headers = self._headers
    budget = message.budget
    if (budget is None and message.refusal is None and
        (headers.get("content-encoding") or
         message.size * memory_budget_lib.DECODE_FACTOR >=
         self._server.min_charge_bytes)):
      # To be inflated or decoded into enough to charge: the handler
      # charges it.
      budget = self._server.new_body_budget()
    request = HttpRequest(
        self._parser.get_method().decode("ascii"), path, headers,
        b"".join(message.body) if message.refusal is None else b"", budget)
    message.body = []
    pending = _Pending(request, self._parser.should_keep_alive(),
                       not message.charging, message.refusal)
    message.pending = pending
    self._queue.append(pending)
    if not self._deferring:
      self._pump()

  # the memory budget

  async def _wait_for_room(self, message: _Incoming) -> None:
    """Charges what a body received while the budget was full, waiting (off
    the loop, first come first served with the gRPC side) up to the budget's
    wait; refuses the request with RESOURCE_EXHAUSTED if no room comes."""
    loop = asyncio.get_running_loop()
    budget = message.budget
    while True:
      owed = message.owed
      error = None
      try:
        await loop.run_in_executor(None, budget.add, owed)
      except status.ServingError as e:
        error = e
      if message.refusal is not None or self._transport is None:
        break
      if error is not None:
        message.refusal = self._server.error_response(error)
        message.body = []
        break
      message.owed -= owed
      if not message.owed:
        break
    message.charging = False
    if message.refusal is not None or self._transport is None:
      budget.release()
    self._charging -= 1
    pending = message.pending
    if pending is not None:
      if message.refusal is not None:
        _release(pending.request)
        pending.response = message.refusal
      pending.ready = True
      self._pump()
    self._update_reading()

  def _refuse_body(self, message: _Incoming, response: HttpResponse) -> None:
    """Answers `response` instead of the request; drops its body."""
    message.refusal = response
    message.body = []
    if message.budget is not None and not message.charging:
      message.budget.release()

  # answering

  def _count_head(self, n: int) -> None:
    self._head_bytes += n
    if self._head_bytes > _MAX_HEAD_BYTES:
      raise httptools.HttpParserError("request head too large")

  def _update_reading(self) -> None:
    transport = self._transport
    if transport is None:
      return
    pause = (self._write_paused or self._charging > 0 or
             len(self._queue) >= _MAX_QUEUED)
    if pause != self._read_paused:
      self._read_paused = pause
      if pause:
        transport.pause_reading()
      else:
        transport.resume_reading()

  def _pump(self) -> None:
    """Answers the requests at the head of the queue that are ready, in
    order, until one has to wait for the pool."""
    server = self._server
    queue = self._queue
    while (not self._busy and queue and queue[0].ready and
           self._transport is not None):
      pending = queue.popleft()
      response = pending.response
      request = pending.request
      if response is None:
        if server._draining:  # pylint: disable=protected-access
          response = server.refusal_while_draining(request)
        if response is None:
          try:
            response = server._respond(request)  # pylint: disable=protected-access
          except Exception:  # pylint: disable=broad-except
            logging.exception("REST %s %s failed", request.method,
                              request.path)
            response = HttpResponse(500, b"", b"")
      if not isinstance(response, HttpResponse):
        self._busy = True
        server._in_flight += 1  # pylint: disable=protected-access
        asyncio.ensure_future(self._serve_later(pending, response))
        break
      self._write(pending, response)
    self._update_reading()

  async def _serve_later(self, pending: _Pending,
                         response: Awaitable[HttpResponse]) -> None:
    request = pending.request
    try:
      answer = await response
    except Exception:  # pylint: disable=broad-except
      logging.exception("REST %s %s failed", request.method, request.path)
      answer = HttpResponse(500, b"", b"")
    self._busy = False
    self._server._in_flight -= 1  # pylint: disable=protected-access
    if self._transport is None:
      _release(request)
      return
    self._write(pending, answer)
    self._pump()

  def _write(self, pending: _Pending, response: HttpResponse) -> None:
    request = pending.request
    _release(request)
    transport = self._transport
    if transport is None:
      return
    self.last_active = time.monotonic()
    # A refused body's connection closes: its sender may be sending more.
    close = (not pending.keep_alive or response.status == 413 or
             (self._closing and not self._queue and not self._in_message))
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
    for pending in self._queue:
      if pending.ready:  # Else its wait for room releases it.
        _release(pending.request)
    self._queue.clear()
    transport.write(_status_line(code) + self._server._date.line() +  # pylint: disable=protected-access
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    transport.close()

  # draining

  def begin_closing(self) -> None:
    """Draining: every answer from now on says "Connection: close". An idle
    connection stays open (a request sent on it gets 503, not a reset)."""
    self._closing = True

  def is_quiet(self, now: float, quiet_seconds: float) -> bool:
    """Nothing in flight, arriving or queued for quiet_seconds."""
    return (self._transport is not None and not self._busy and
            not self._queue and not self._in_message and
            not self._charging and now - self.last_active >= quiet_seconds)

  def close(self) -> None:
    if self._transport is not None:
      self._transport.close()
      self._transport = None

  def abort(self) -> None:
    if self._transport is not None:
      self._transport.abort()
      self._transport = None


def _release(request: HttpRequest) -> None:
  """Gives back what the request held in the memory budget."""
  if request.body_budget is not None:
    request.body_budget.release()


def api_group(http_method: str, path: str,
              metrics_path: Optional[str] = None,
              v2: bool = True) -> Optional[restricted_api_lib.ApiGroup]:
  """The --restricted_api group of a request, routed as _respond routes it.

  None for what no group guards: the CORS preflight (OPTIONS) and URLs the
  server answers with a plain 404. A /v1 or /v2 URL that names no known call
  falls in the strictest group, as an unknown gRPC method does, so that no
  URL the handlers might still act on slips past its group.

  Args:
    http_method: "GET", "POST", ...
    path: the URL path, without the query string.
    metrics_path: the Prometheus page's path, if it is served.
    v2: whether /v2 URLs are served.
  """
  groups = restricted_api_lib.ApiGroup
  if metrics_path is not None and path == metrics_path:
    return groups.METRICS
  if http_method == "OPTIONS":
    return None
  if v2 and v2_handler_lib.is_v2_path(path):
    return v2_handler_lib.api_group(http_method, path)
  if not http_rest_api_util.PATH_REGEX.fullmatch(path):
    return None
  # As http_rest_api_util.parse_model_info matches them.
  if http_method == "POST" and http_rest_api_util.PREDICTION_API_REGEX.fullmatch(
      path):
    return groups.INFERENCE
  if http_method == "GET" and http_rest_api_util.MODEL_STATUS_API_REGEX.fullmatch(
      path):
    return groups.METADATA
  return restricted_api_lib.STRICTEST_GROUP


class HttpRestServer:
  """Serves the REST API of a ServerCore. See the module docstring."""

  Options = HttpRestServerOptions

  def __init__(self, data_plane: data_plane_lib.DataPlane,
               options: HttpRestServerOptions = HttpRestServerOptions(),
               v2_handler: Optional[
                   v2_handler_lib.V2HttpRestApiHandler] = None,
               memory_budget: Optional[
                   memory_budget_lib.MemoryBudget] = None) -> None:
    """See the class docstring; memory_budget: the server's
    (--request_memory_budget_bytes), charged with REST bodies; None: no
    bound but the per-request limit."""
    self._options = options
    self.max_body_bytes = options.max_body_bytes
    self.memory_budget = memory_budget
    # Bodies at least this large are charged (below it, none is).
    self.min_charge_bytes = (memory_budget.min_charge_bytes
                             if memory_budget is not None else 1 << 62)
    self._restricted_api = (options.restricted_api
                            if options.restricted_api is not None and
                            options.restricted_api.enabled else None)
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
    # Set once stop() or start_draining() was called: new requests get 503.
    self._draining = False  # Written on the loop thread.
    self._in_flight = 0  # Requests answered from the pool; loop thread only.
    self._dropping_syns = False  # New connections' SYNs dropped (draining).
    self._shutting_down_body = json_tensor.make_json_error(
        SHUTTING_DOWN_MESSAGE).encode("utf-8")
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
    context = self._options.ssl_context
    if context is not None:
      logging.info("The HTTP/REST port serves HTTPS only%s.",
                   " (mutual TLS)" if context.verify_mode == ssl.CERT_REQUIRED
                   else "")
    return self.port

  def _run_loop(self, sock: socket.socket,
                started: concurrent.futures.Future) -> None:
    loop = self._loop
    asyncio.set_event_loop(loop)
    try:
      self._server = loop.run_until_complete(
          loop.create_server(lambda: _Connection(self), sock=sock,
                             backlog=1024, ssl=self._options.ssl_context))
    except BaseException as e:  # pylint: disable=broad-except
      started.set_exception(e)
      return
    started.set_result(None)
    loop.run_forever()
    loop.run_until_complete(self._close_all())
    loop.close()

  async def _close_all(self) -> None:
    self._server.close()
    for connection in list(self._connections):
      connection.abort()
    await self._server.wait_closed()

  def _connection_closed(self, connection: _Connection) -> None:
    self._connections.discard(connection)

  # ---------------------------------------------------------------- drain

  def start_draining(self) -> None:
    """From now on every new request (but V2 health probes) is answered 503
    {"error": "The model server is shutting down"} before any work is done
    for it, and every answer closes its connection; requests already being
    answered finish as usual. Idle keep-alive connections stay open, so
    that a request sent on one meets a 503, not a reset. New connections
    are no longer accepted: their SYNs are dropped (Linux), so that their
    clients retry and are refused once the port closes. Any thread but the
    loop's; in effect when it returns."""
    loop = self._loop
    if loop is None:
      return
    begun = concurrent.futures.Future()

    def begin() -> None:
      self._start_draining()
      begun.set_result(None)

    loop.call_soon_threadsafe(begin)
    try:
      begun.result(_LINGER_SECONDS)
    except concurrent.futures.TimeoutError:
      pass  # The loop is stuck; stop() goes on regardless.

  def _start_draining(self) -> None:
    if self._draining:
      return
    self._draining = True
    # New connections wait (their SYNs dropped) and are refused once the
    # port closes; a handshake already under way completes and its request
    # gets 503. Dropping from the start, rather than at the end, leaves the
    # whole drain for such handshakes to complete and be answered.
    if self._server is not None:
      self._dropping_syns = any(
          [_drop_new_connections(sock) for sock in self._server.sockets])
    for connection in self._connections:
      connection.begin_closing()

  def wait_for_in_flight(self, timeout: float) -> bool:
    """Waits until no admitted request is being answered; False if
    `timeout` passed first. Any thread but the loop's."""
    loop = self._loop
    if loop is None:
      return True
    future = asyncio.run_coroutine_threadsafe(self._wait_for_in_flight(),
                                              loop)
    try:
      future.result(timeout)
    except concurrent.futures.TimeoutError:
      future.cancel()
      return False
    return True

  async def _wait_for_in_flight(self) -> None:
    while self._in_flight:
      await asyncio.sleep(0.005)

  async def _close_gently(self) -> None:
    """The end of a drain (new connections' SYNs dropped since it began:
    they are refused once the port closes, so a client never sees a
    connection accepted and then reset): each connection is closed once
    quiet (nothing arriving or in flight for _QUIET_SECONDS), until none is
    open or waiting to be accepted, for up to _LINGER_SECONDS."""
    if not self._dropping_syns:
      self._server.close()  # Not Linux: refuse new connections at once.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _LINGER_SECONDS
    # Done once no connection is open or waiting to be accepted, and none
    # has been for _SETTLE_SECONDS (a handshake under way when SYNs started
    # being dropped completes within that).
    settled_at = None
    quiet_closed = 0
    while loop.time() < deadline:
      now = time.monotonic()
      for connection in list(self._connections):
        if connection.is_quiet(now, _QUIET_SECONDS):
          connection.close()
          quiet_closed += 1
      if self._connections or any(
          _accept_queue_length(sock) for sock in self._server.sockets):
        settled_at = None
      elif settled_at is None:
        settled_at = now
      elif now - settled_at >= _SETTLE_SECONDS:
        break
      await asyncio.sleep(0.02)
    logging.info("REST port drained: %d idle connection(s) closed, %d still "
                 "open.", quiet_closed, len(self._connections))

  def stop(self, keep_port: bool = False) -> None:
    """Drains and stops serving; nothing in flight is lost.

    start_draining(), then waits up to 10 s for the requests in flight,
    then closes gently (see _close_gently): every request is answered as
    usual or refused with 503 before any work, and a new connection is
    refused once the port closes. Model runs left on the pool finish on
    their own.

    Args:
      keep_port: for a process about to exit: leave the event loop serving
        (every request 503) and the port open, dropping new connections'
        SYNs, for the exit to close (its clients are then refused).
    """
    loop = self._loop
    if loop is None:
      return
    self.start_draining()
    self.wait_for_in_flight(_DRAIN_SECONDS)
    try:
      asyncio.run_coroutine_threadsafe(self._close_gently(), loop).result(
          _LINGER_SECONDS + 5.0)
    except concurrent.futures.TimeoutError:
      pass
    if keep_port:
      return
    self._loop = None
    loop.call_soon_threadsafe(loop.stop)
    self._thread.join(timeout=_SHUTDOWN_TIMEOUT_SECONDS)
    self._pool.shutdown(wait=False, cancel_futures=True)

  # ------------------------------------------------- body limits and budget

  def new_body_budget(self) -> http_rest_api_util.BodyBudget:
    return http_rest_api_util.BodyBudget(self.memory_budget,
                                         self.max_body_bytes)

  def too_large_response(self) -> HttpResponse:
    return self.error_response(
        http_rest_api_util.BodyTooLargeError("as received", self.max_body_bytes))

  def error_response(self, error: status.ServingError) -> HttpResponse:
    """An {"error": ...} answer to a request refused before its call."""
    return HttpResponse(http_status_of(error), self._json_headers,
                        json_tensor.make_json_error(
                            error.message).encode("utf-8"))

  def refusal_while_draining(self,
                             request: HttpRequest) -> Optional[HttpResponse]:
    """503 for a request that arrives while draining; None for V2 health
    probes (they say "not ready", as gRPC's health service says
    NOT_SERVING)."""
    if (self._v2_handler is not None and request.method == "GET" and
        request.path.startswith(_V2_HEALTH_PREFIX)):
      return None
    return HttpResponse(503, self._json_headers, self._shutting_down_body)

  # ------------------------------------------------------------- requests

  def _respond(
      self, request: HttpRequest
  ) -> Union[HttpResponse, Awaitable[HttpResponse]]:
    """The response, or an awaitable of it (calls run on the pool)."""
    if self._restricted_api is not None:
      refused = self._refuse_restricted(request)
      if refused is not None:
        return refused
    path = request.path
    if self._metrics_path is not None and path == self._metrics_path:
      return self._metrics_page()
    if self._v2_handler is not None and v2_handler_lib.is_v2_path(path):
      return self._respond_v2(request)
    if not http_rest_api_util.PATH_REGEX.fullmatch(path):
      return HttpResponse(404, b"", b"")
    if request.method == "OPTIONS":
      return self._preflight(request)
    # The API label is the handler's to set, from the URL.
    context = data_plane_lib.RequestContext.with_timeout(
        metrics.REST, "", self._timeout)
    args = (request.method, path, request.body, context,
            request.headers.get("content-encoding", ""), request.body_budget)
    return self._run(request, self._handler.process_request, args, context,
                     http_rest_api_handler.RestResult.failure,
                     self._to_response)

  def _refuse_restricted(self, request: HttpRequest) -> Optional[HttpResponse]:
    """403 for a request of a guarded group without its header, else None."""
    group = api_group(request.method, request.path, self._metrics_path,
                      self._v2_handler is not None)
    if group is None:
      return None
    try:
      self._restricted_api.check(group, request.headers.get, metrics.REST)
    except status.ServingError as e:
      logging.vlog(1, "HTTP/REST request refused: %s %s Error: %s",
                   request.method, request.path, e.message)
      return self.error_response(e)
    return None

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
            context, request.body_budget)
    return self._run(request, self._v2_handler.process_request, args, context,
                     v2_handler_lib.V2RestResult.failure, self._to_v2_response)

  def _run(self, request: HttpRequest, call: Callable[..., _Result],
           args: tuple, context: data_plane_lib.RequestContext,
           failure: Callable[[status.ServingError], _Result],
           to_response: Callable[[HttpRequest, _Result], HttpResponse]
          ) -> Union[HttpResponse, Awaitable[HttpResponse]]:
    """Runs `call(*args)` on the loop when calls of its kind were measured
    short, else on the pool (see the module docstring). A body charged to
    the memory budget always goes to the pool: the charge may wait."""
    kind = (request.method, request.path, len(request.body).bit_length())
    if request.body_budget is None and self._call_times.is_short(kind):
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
    return HttpResponse(http_status_of(result.error), self._json_headers,
                        result.body.encode("utf-8"))

  def _to_v2_response(self, request: HttpRequest,
                      result: v2_handler_lib.V2RestResult) -> HttpResponse:
    if result.error is not None:
      logging.vlog(1, "Error Processing HTTP/REST request: %s %s Error: %s",
                   request.method, request.path, result.error.message)
      http_status = http_status_of(result.error)
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
