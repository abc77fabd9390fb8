"""A closed-loop load generator for gRPC and REST inference calls.

The client shares the machine with the server, so every microsecond it
spends is taken from the server. It therefore does as little as possible:
requests are serialized once, up front, and sent as raw bytes; responses are
not parsed beyond their status.

  * gRPC: a generic unary-unary callable on the method path (Predict, or
    the V2 protocol's ModelInfer) with no (de)serializers, driven by grpc
    futures. Each of the `concurrency` loops
    issues its next call from the previous call's done-callback, so no
    Python thread of ours takes part.
  * REST: one keep-alive HTTP/1.1 connection per loop, driven by an asyncio
    Protocol that writes the pre-built request and reads only the status
    line, Content-Length (or a chunked body's end) and the body bytes.

Load runs in worker processes (spawned, so they import neither TensorFlow
nor the parent's state), each with its share of the loops. The parent picks
a common time line: warm-up until t_start, measurement until t_end. Only
responses that arrive inside [t_start, t_end) count, latency included; the
workers also report their own CPU time over that window.
"""

import asyncio
import collections
import dataclasses
import multiprocessing
import threading
import time
from typing import Optional

GRPC_PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
GRPC_MODEL_INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
_MAX_MESSAGE = 2**31 - 1
# How long a worker waits for its last in-flight calls after t_end.
_DRAIN_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
  """What one worker process sends, where, and with how many loops."""

  protocol: str  # "grpc" or "rest"
  host: str
  port: int
  payload: bytes  # serialized request message, or the whole HTTP request
  concurrency: int
  timeout_s: float = 30.0
  grpc_method: str = GRPC_PREDICT_METHOD


@dataclasses.dataclass
class WorkerResult:
  """What one worker measured inside the window."""

  latencies: list[float]  # seconds, successful calls only
  errors: collections.Counter  # error kind -> count
  cpu_seconds: float  # the worker's own CPU time in the window


class _Window:
  """The measured window, and the per-response bookkeeping shared by loops.

  Loops record from grpc callback threads (gRPC) or the event loop (REST);
  list.append and Counter updates of distinct keys are made under a lock
  only where they are not single bytecode operations.
  """

  def __init__(self, t_start: float, t_end: float) -> None:
    self.t_start = t_start
    self.t_end = t_end
    self.latencies: list[float] = []
    self._mu = threading.Lock()
    self.errors: collections.Counter = collections.Counter()  # guarded by self._mu

  def record(self, started: float, finished: float,
             error: Optional[str]) -> None:
    if not self.t_start <= finished < self.t_end:
      return
    if error is None:
      self.latencies.append(finished - started)
    else:
      with self._mu:
        self.errors[error] += 1


# --- gRPC -------------------------------------------------------------------


class _GrpcLoop:
  """One closed loop: the next call starts in the previous call's callback."""

  def __init__(self, call, payload: bytes, window: _Window, timeout_s: float,
               finished: threading.Semaphore) -> None:
    self._call = call
    self._payload = payload
    self._window = window
    self._timeout = timeout_s
    self._finished = finished
    self._started = 0.0

  def issue(self) -> None:
    now = time.monotonic()
    if now >= self._window.t_end:
      self._finished.release()
      return
    self._started = now
    future = self._call.future(self._payload, timeout=self._timeout)
    future.add_done_callback(self._done)

  def _done(self, future) -> None:
    finished = time.monotonic()
    code = future.code()
    error = None if code.name == "OK" else code.name
    self._window.record(self._started, finished, error)
    self.issue()


def _run_grpc(spec: WorkerSpec, window: _Window, channel) -> None:
  call = channel.unary_unary(spec.grpc_method)
  finished = threading.Semaphore(0)
  loops = [
      _GrpcLoop(call, spec.payload, window, spec.timeout_s, finished)
      for _ in range(spec.concurrency)
  ]
  for loop in loops:
    loop.issue()
  deadline = window.t_end + _DRAIN_SECONDS
  for _ in loops:
    if not finished.acquire(timeout=max(0.0, deadline - time.monotonic())):
      break


# --- REST -------------------------------------------------------------------


def parse_http_response(buf: bytes) -> Optional[tuple[int, int]]:
  """(status code, bytes used) for a complete response at the start of buf.

  Returns None while the response is incomplete. Handles Content-Length and
  chunked bodies (the chunked body is not decoded, only delimited).

  Raises:
    ValueError: not an HTTP/1.x response.
  """
  head_end = buf.find(b"\r\n\r\n")
  if head_end < 0:
    return None
  if not buf.startswith(b"HTTP/1."):
    raise ValueError(f"not an HTTP response: {buf[:40]!r}")
  status_code = int(buf[9:12])
  head = buf[:head_end].lower()
  body_start = head_end + 4
  index = head.find(b"\r\ncontent-length:")
  if index >= 0:
    line_end = head.find(b"\r\n", index + 2)
    value = head[index + 17:line_end if line_end >= 0 else len(head)]
    total = body_start + int(value)
    return (status_code, total) if len(buf) >= total else None
  if b"\r\ntransfer-encoding: chunked" in head:
    end = buf.find(b"\r\n0\r\n\r\n", body_start - 2)
    return (status_code, end + 7) if end >= 0 else None
  return status_code, body_start  # no body (e.g. 204)


class _HttpLoop(asyncio.Protocol):
  """One keep-alive connection running one closed loop of requests."""

  def __init__(self, payload: bytes, window: _Window,
               done: asyncio.Future) -> None:
    self._payload = payload
    self._window = window
    self._done = done
    self._transport = None
    self._buf = b""
    self._started = 0.0

  def connection_made(self, transport) -> None:
    self._transport = transport
    self._send()

  def _send(self) -> None:
    now = time.monotonic()
    if now >= self._window.t_end:
      self._finish()
      return
    self._started = now
    self._transport.write(self._payload)

  def data_received(self, data: bytes) -> None:
    self._buf += data
    try:
      parsed = parse_http_response(self._buf)
    except ValueError:
      self._window.record(self._started, time.monotonic(), "bad_response")
      self._finish()
      return
    if parsed is None:
      return
    code, used = parsed
    self._buf = self._buf[used:]
    self._window.record(self._started, time.monotonic(),
                        None if code == 200 else f"HTTP {code}")
    self._send()

  def connection_lost(self, exc) -> None:
    if not self._done.done():
      self._window.record(self._started, time.monotonic(), "connection_lost")
      self._done.set_result(False)

  def _finish(self) -> None:
    if not self._done.done():
      self._done.set_result(True)
    self._transport.close()


async def _run_rest_async(spec: WorkerSpec, window: _Window) -> None:
  loop = asyncio.get_running_loop()
  pending = []
  for _ in range(spec.concurrency):
    done = loop.create_future()
    await loop.create_connection(
        lambda d=done: _HttpLoop(spec.payload, window, d), spec.host,
        spec.port)
    pending.append(done)
  await asyncio.wait(pending,
                     timeout=max(0.0, window.t_end + _DRAIN_SECONDS -
                                 time.monotonic()))


# --- worker process -----------------------------------------------------------


def _cpu_in_window(window: _Window, out: list) -> None:
  time.sleep(max(0.0, window.t_start - time.monotonic()))
  begin = time.process_time()
  time.sleep(max(0.0, window.t_end - time.monotonic()))
  out.append(time.process_time() - begin)


def worker_main(spec: WorkerSpec, conn) -> None:
  """Entry point of a worker process; talks to the parent over `conn`.

  Protocol: send "ready" once connected; receive (t_start, t_end) on the
  monotonic clock (shared by all processes on the machine); run; send the
  WorkerResult.
  """
  channel = None
  if spec.protocol == "grpc":
    import grpc  # pylint: disable=g-import-not-at-top
    channel = grpc.insecure_channel(
        f"{spec.host}:{spec.port}",
        options=[("grpc.max_receive_message_length", _MAX_MESSAGE),
                 ("grpc.max_send_message_length", _MAX_MESSAGE)])
    grpc.channel_ready_future(channel).result(timeout=30)
  conn.send("ready")
  t_start, t_end = conn.recv()
  window = _Window(t_start, t_end)
  cpu: list[float] = []
  cpu_thread = threading.Thread(target=_cpu_in_window, args=(window, cpu))
  cpu_thread.start()
  if spec.protocol == "grpc":
    _run_grpc(spec, window, channel)
  else:
    asyncio.run(_run_rest_async(spec, window))
  cpu_thread.join()
  conn.send(WorkerResult(window.latencies, window.errors, cpu[0]))
  if channel is not None:
    channel.close()


@dataclasses.dataclass
class LoadResult:
  """All workers' measurements, merged."""

  duration_s: float
  latencies: list[float]
  errors: collections.Counter
  client_cpu_seconds: float

  @property
  def completed(self) -> int:
    return len(self.latencies)


def split_concurrency(concurrency: int, processes: int) -> list[int]:
  """Loops per worker process, as even as possible, none empty."""
  processes = max(1, min(processes, concurrency))
  return [concurrency // processes + (1 if i < concurrency % processes else 0)
          for i in range(processes)]


class LoadRun:
  """Starts workers, then runs one measured window. Use as a context manager.

  Between start() and measure(), the workers have connected and wait; the
  caller may sample the server (e.g. its CPU) at the window's edges through
  the `on_window_start`/`on_window_end` callbacks of measure().
  """

  def __init__(self, spec: WorkerSpec, processes: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    self._pipes = []
    self._procs = []
    for concurrency in split_concurrency(spec.concurrency, processes):
      parent, child = ctx.Pipe()
      proc = ctx.Process(
          target=worker_main,
          args=(dataclasses.replace(spec, concurrency=concurrency), child),
          daemon=True)
      proc.start()
      self._pipes.append(parent)
      self._procs.append(proc)

  def __enter__(self) -> "LoadRun":
    for pipe in self._pipes:
      if not pipe.poll(60):
        raise RuntimeError("a load worker did not become ready in 60 s")
      pipe.recv()
    return self

  def __exit__(self, *exc) -> None:
    for proc in self._procs:
      proc.join(timeout=_DRAIN_SECONDS + 5)
      if proc.is_alive():
        proc.terminate()

  def measure(self, warmup_s: float, duration_s: float,
              on_window_start=None, on_window_end=None) -> LoadResult:
    t_start = time.monotonic() + warmup_s
    t_end = t_start + duration_s
    for pipe in self._pipes:
      pipe.send((t_start, t_end))
    time.sleep(max(0.0, t_start - time.monotonic()))
    if on_window_start:
      on_window_start()
    time.sleep(max(0.0, t_end - time.monotonic()))
    if on_window_end:
      on_window_end()
    latencies: list[float] = []
    errors: collections.Counter = collections.Counter()
    cpu = 0.0
    for pipe in self._pipes:
      if not pipe.poll(_DRAIN_SECONDS + 30):
        raise RuntimeError("a load worker did not report")
      result: WorkerResult = pipe.recv()
      latencies.extend(result.latencies)
      errors.update(result.errors)
      cpu += result.cpu_seconds
    return LoadResult(duration_s, latencies, errors, cpu)


def percentile(sorted_values: list[float], fraction: float) -> float:
  """Nearest-rank percentile of an ascending list (nan if empty)."""
  if not sorted_values:
    return float("nan")
  rank = max(1, int(-(-fraction * len(sorted_values) // 1)))  # ceil
  return sorted_values[min(rank, len(sorted_values)) - 1]
