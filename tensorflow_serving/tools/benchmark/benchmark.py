r"""Load generator and side-by-side benchmark for Predict and V2 inference.

Sends pre-serialized requests for an MNIST-shaped model (images float
[rows, 784] -> scores [rows, 10]): TF Serving's Predict (gRPC, REST JSON) or
the V2 protocol's inference (gRPC ModelInfer with raw contents, REST JSON,
REST with binary tensors), at a fixed concurrency (closed loop:
each of `concurrency` loops sends its next request when the previous one
answers) and prints QPS, rows/s, latency percentiles, errors and the CPU the
server spent per request (from /proc; the robust figure on a shared machine,
where QPS is noisy). See docs/performance.md.

Targets (--targets, comma-separated; each is run in turn):
  floor_grpc, naive_grpc, floor_rest, floor_rest_raw, naive_rest
      reference servers started by the benchmark (baseline_servers.py):
      fixed responses (the floors) and a straightforward TensorFlow server.
  server_grpc, server_rest
      the model server, started by the benchmark with --server_command
      (default: this workspace's tensorflow_model_server in Python) plus
      --server_flags, e.g. --server_flags=--enable_batching.
  server_v2_grpc, server_v2_rest, server_v2_rest_binary
      the model server, called with the V2 protocol: gRPC ModelInfer (inputs
      in raw_input_contents), REST JSON, REST with binary tensors (input and
      outputs as raw bytes after the JSON header).
  server_grpc:NAME, server_rest:NAME (and server_v2_*:NAME)
      the same with the flags of --server_variant=NAME=FLAGS added, so that
      two configurations run side by side in one invocation.
  mlserver_v2_grpc, mlserver_v2_rest
      Seldon MLServer serving the same SavedModel through a small MLModel
      (mlserver_baseline.py; its virtualenv is made on first use), called
      with the same V2 requests (REST with JSON: MLServer refuses binary).
  grpc:HOST:PORT[:PID], rest:HOST:PORT[:PID], v2grpc:..., v2rest:...,
  v2rest_binary:...
      a server that is already running; give its PID for the CPU figure.

Shorthands: --compare=A,B (= --targets), --baseline=KIND, and
--target=HOST:PORT [--protocol=rest] [--server_pid=PID].

Examples:
  benchmark --targets=floor_grpc,naive_grpc,server_grpc --concurrency=16
  benchmark --targets=server_grpc,server_rest --rows=1,64 \
      --server_flags=--enable_batching
  benchmark --targets=grpc:localhost:8500:12345 --duration_s=30
  benchmark --targets=server_grpc,server_grpc:batching --concurrency=64 \
      --server_variant="batching=--enable_batching --grpc_max_threads=64"
  benchmark --targets=server_v2_grpc,mlserver_v2_grpc --rows=1 --repeat=3

Models: --model=softmax (the default) costs a few microseconds per run, so
it measures serving overhead; --model=mlp (784-1024-1024-10) has real
compute and is the one to measure batching with:
  benchmark --model=mlp --targets=server_grpc,server_grpc:batching \
      --concurrency=64 --server_variant="batching=--enable_batching \
      --batching_parameters_file=/tmp/batching.pbtxt"

Ratios in the table compare each row with the floor of its protocol
(floor_grpc or floor_rest) at the same concurrency and rows, when that floor
is among the targets. With --repeat=N the whole list runs N times, one
target after the other each time (so that a slow spell of a shared machine
hits every target alike), and a last table gives each row's median.
"""

import contextlib
import dataclasses
import json
import os
import re
import shlex
import statistics
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Iterator, Optional, Sequence

from absl import app
from absl import flags

from tensorflow_serving.tools.benchmark import export_model
from tensorflow_serving.tools.benchmark import load_generator
from tensorflow_serving.tools.benchmark import mlserver_baseline
from tensorflow_serving.tools.benchmark import proc_stats

BASELINES = ("floor_grpc", "naive_grpc", "floor_rest", "floor_rest_raw",
             "naive_rest")
SERVER_KINDS = ("server_grpc", "server_rest", "server_v2_grpc",
                "server_v2_rest", "server_v2_rest_binary")
MLSERVER_KINDS = ("mlserver_v2_grpc", "mlserver_v2_rest")
# External targets: prefix -> (protocol, API, binary).
_EXTERNAL = {
    "grpc": ("grpc", "tfs", False),
    "rest": ("rest", "tfs", False),
    "v2grpc": ("grpc", "v2", False),
    "v2rest": ("rest", "v2", False),
    "v2rest_binary": ("rest", "v2", True),
}

_TARGETS = flags.DEFINE_list(
    "targets", ["floor_grpc"],
    "What to benchmark, in order; see the module docstring.")
_COMPARE = flags.DEFINE_list(
    "compare", None, "Same as --targets (runs them side by side).")
_BASELINE = flags.DEFINE_enum(
    "baseline", None, list(BASELINES),
    "Shorthand for --targets=<one baseline>.")
_TARGET = flags.DEFINE_string(
    "target", None, "HOST:PORT of a running server; shorthand for "
    "--targets=<protocol>:HOST:PORT[:<server_pid>].")
_PROTOCOL = flags.DEFINE_enum("protocol", "grpc", ["grpc", "rest"],
                              "Protocol of --target.")
_SERVER_PID = flags.DEFINE_integer(
    "server_pid", None, "PID of the --target server, for its CPU figure.")
_CONCURRENCY = flags.DEFINE_list(
    "concurrency", ["16"], "Concurrent requests (closed loops); a list runs "
    "each level.")
_ROWS = flags.DEFINE_list(
    "rows", ["1"], "Rows (images) per request; a list runs each size.")
_DURATION = flags.DEFINE_float("duration_s", 10.0, "Measured seconds per run.")
_WARMUP = flags.DEFINE_float("warmup_s", 2.0,
                             "Seconds of load before measuring each run.")
_CLIENT_PROCESSES = flags.DEFINE_integer(
    "client_processes", 1, "Load worker processes (the loops are spread "
    "over them).")
_MODEL_NAME = flags.DEFINE_string("model_name", "mnist", "Model to call.")
_SIGNATURE = flags.DEFINE_string("signature_name", "predict_images",
                                 "Signature to call.")
_INPUT = flags.DEFINE_string("input_name", "images", "Input alias.")
_OUTPUT = flags.DEFINE_string("output_name", "scores",
                              "Output alias (what the MLServer model returns).")
_MODEL_BASE_PATH = flags.DEFINE_string(
    "model_base_path", "", "Model base directory (version subdirectories "
    "inside). Default: the --model (export_model.py) exported into "
    "$TMPDIR/tfs_benchmark_model (softmax) or $TMPDIR/tfs_benchmark_model_mlp "
    "(once).")
_SERVER_COMMAND = flags.DEFINE_string(
    "server_command", "",
    "Command that starts the model server for server_* targets, with "
    "{grpc_port}, {rest_port}, {model_name}, {model_base_path} and {python} "
    "filled in. Default: the workspace's bazel-bin/tensorflow_serving/"
    "model_servers/tensorflow_model_server if built, else {python} -m "
    "tensorflow_serving.model_servers.main; with --port={grpc_port} "
    "--rest_api_port={rest_port} --model_name={model_name} "
    "--model_base_path={model_base_path}")
_SERVER_FLAGS = flags.DEFINE_string(
    "server_flags", "", "Extra arguments appended to the server command.")
_SERVER_VARIANTS = flags.DEFINE_multi_string(
    "server_variant", [], "NAME=FLAGS: the target server_grpc:NAME (or "
    "server_rest:NAME) is the model server with FLAGS appended after "
    "--server_flags; leading KEY=VALUE words of FLAGS are set in its "
    "environment instead (e.g. MALLOC_ARENA_MAX=2). Repeat for more "
    "variants.")
_SERVER_THREADS = flags.DEFINE_integer(
    "baseline_threads", 16, "Handler threads of the thread-pool baselines.")
_STARTUP_TIMEOUT = flags.DEFINE_float(
    "startup_timeout_s", 180.0, "How long a started server may take to answer.")
_JSON_OUTPUT = flags.DEFINE_string("json_output", "",
                                   "Also write the results to this JSON file.")
_REPEAT = flags.DEFINE_integer(
    "repeat", 1, "Run the whole target list this many times, interleaved; "
    "the last table gives each row's median.")
_MLSERVER_ENV = flags.DEFINE_string(
    "mlserver_env", "", "The MLServer virtualenv for mlserver_* targets "
    "(made there on first use). Default: $TMPDIR/tfs_benchmark_mlserver_env.")

_SERVER_BINARY = "bazel-bin/tensorflow_serving/model_servers/tensorflow_model_server"
_SERVER_ARGS = ("--port={grpc_port} --rest_api_port={rest_port} "
                "--model_name={model_name} --model_base_path={model_base_path}")


@dataclasses.dataclass(frozen=True)
class Target:
  """A parsed --targets entry."""

  spec: str
  protocol: str  # "grpc" or "rest"
  kind: str  # a baseline, a server kind, an MLServer kind, or "external"
  host: str = "localhost"
  port: int = 0
  pid: Optional[int] = None
  variant: str = ""  # server kinds: the --server_variant to add
  api: str = "tfs"  # "tfs" (Predict) or "v2" (the V2 protocol's inference)
  binary: bool = False  # V2 REST: tensors as binary data, not JSON


def _kind_traits(kind: str) -> tuple[str, str, bool]:
  """(protocol, API, binary) of a baseline, server or MLServer kind."""
  protocol = "grpc" if kind.endswith("_grpc") else "rest"
  api = "v2" if "_v2_" in kind else "tfs"
  return protocol, api, kind.endswith("_binary")


def parse_target(spec: str) -> Target:
  """Parses one --targets entry.

  Raises:
    ValueError: not a known kind nor grpc:/rest:HOST:PORT[:PID].
  """
  if spec in BASELINES or spec in SERVER_KINDS or spec in MLSERVER_KINDS:
    protocol, api, binary = _kind_traits(spec)
    return Target(spec, protocol, spec, api=api, binary=binary)
  kind, _, variant = spec.partition(":")
  if kind in SERVER_KINDS and re.fullmatch(r"[\w-]+", variant):
    protocol, api, binary = _kind_traits(kind)
    return Target(spec, protocol, kind, variant=variant, api=api,
                  binary=binary)
  parts = spec.split(":")
  if parts[0] in _EXTERNAL and len(parts) in (3, 4):
    try:
      port = int(parts[2])
      pid = int(parts[3]) if len(parts) == 4 else None
    except ValueError:
      raise ValueError(f"bad target {spec!r}: port and pid must be "
                       "numbers") from None
    protocol, api, binary = _EXTERNAL[parts[0]]
    return Target(spec, protocol, "external", parts[1], port, pid, api=api,
                  binary=binary)
  raise ValueError(
      f"unknown target {spec!r}; expected one of "
      f"{', '.join(BASELINES + SERVER_KINDS + MLSERVER_KINDS)}, "
      "server_*:NAME, or {grpc,rest,v2grpc,v2rest,v2rest_binary}:"
      "HOST:PORT[:PID]")


def parse_server_variants(values: Sequence[str]) -> dict[str, list[str]]:
  """--server_variant values -> {name: extra server arguments}.

  Raises:
    ValueError: an entry is not NAME=FLAGS, or a name repeats.
  """
  variants = {}
  for value in values:
    name, sep, extra = value.partition("=")
    if not sep or not re.fullmatch(r"[\w-]+", name):
      raise ValueError(f"bad --server_variant {value!r}; expected NAME=FLAGS")
    if name in variants:
      raise ValueError(f"--server_variant {name} is given twice")
    variants[name] = shlex.split(extra)
  return variants


# --- requests -------------------------------------------------------------------


def make_images(rows: int, seed: int = 0):
  """MNIST-like rows: 784 pixels in [0, 1], about 80% of them zero."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  pixels = rng.integers(1, 256, size=(rows, 784)) * (
      rng.random((rows, 784)) > 0.8)
  return (pixels / 255.0).astype(np.float32)


def grpc_payload(rows: int) -> bytes:
  """A serialized PredictRequest as mnist_client sends it (tensor_content)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  request = predict_pb2.PredictRequest()
  request.model_spec.name = _MODEL_NAME.value
  request.model_spec.signature_name = _SIGNATURE.value
  request.inputs[_INPUT.value].CopyFrom(
      tf.make_tensor_proto(make_images(rows)))
  return request.SerializeToString()


def v2_grpc_payload(rows: int) -> bytes:
  """A serialized V2 ModelInferRequest, the images in raw_input_contents (as
  tritonclient and the kserve SDK send them)."""
  from tensorflow_serving.apis import grpc_service_pb2  # pylint: disable=g-import-not-at-top
  images = make_images(rows)
  request = grpc_service_pb2.ModelInferRequest(model_name=_MODEL_NAME.value)
  request.parameters["signature_name"].string_param = _SIGNATURE.value
  request.inputs.add(name=_INPUT.value, datatype="FP32", shape=images.shape)
  request.raw_input_contents.append(images.tobytes())
  return request.SerializeToString()


def v2_rest_payload(host: str, port: int, rows: int, binary: bool) -> bytes:
  """A whole HTTP/1.1 request for V2 inference: JSON, or JSON and binary
  tensors (the input as raw bytes, the outputs asked back the same way)."""
  images = make_images(rows)
  tensor = {"name": _INPUT.value, "datatype": "FP32",
            "shape": list(images.shape)}
  parameters = {"signature_name": _SIGNATURE.value}
  blob = b""
  if binary:
    blob = images.tobytes()
    tensor["parameters"] = {"binary_data_size": len(blob)}
    parameters["binary_data_output"] = True
  else:
    tensor["data"] = images.ravel().tolist()
  header = json.dumps({"parameters": parameters,
                       "inputs": [tensor]}).encode()
  body = header + blob
  head = (f"POST /v2/models/{_MODEL_NAME.value}/infer HTTP/1.1\r\n"
          f"Host: {host}:{port}\r\n")
  if binary:
    head += ("Content-Type: application/octet-stream\r\n"
             f"Inference-Header-Content-Length: {len(header)}\r\n")
  else:
    head += "Content-Type: application/json\r\n"
  head += f"Content-Length: {len(body)}\r\n\r\n"
  return head.encode() + body


def payload_for(target: Target, rows: int) -> bytes:
  """What the target is sent: the request of its protocol and API."""
  if target.protocol == "grpc":
    return v2_grpc_payload(rows) if target.api == "v2" else grpc_payload(rows)
  if target.api == "v2":
    return v2_rest_payload(target.host, target.port, rows, target.binary)
  return rest_payload(target.host, target.port, rows)


def grpc_method(target: Target) -> str:
  return (load_generator.GRPC_MODEL_INFER_METHOD if target.api == "v2" else
          load_generator.GRPC_PREDICT_METHOD)


def rest_payload(host: str, port: int, rows: int) -> bytes:
  """A whole HTTP/1.1 request for :predict, row format, as curl would send."""
  body = json.dumps({
      "signature_name": _SIGNATURE.value,
      "instances": make_images(rows).tolist(),
  }).encode()
  head = (f"POST /v1/models/{_MODEL_NAME.value}:predict HTTP/1.1\r\n"
          f"Host: {host}:{port}\r\n"
          "Content-Type: application/json\r\n"
          f"Content-Length: {len(body)}\r\n\r\n")
  return head.encode() + body


# --- servers --------------------------------------------------------------------


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _workspace() -> str:
  """The source tree: where `bazel run` was called, else the current dir."""
  return os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd()


def _child_env() -> dict[str, str]:
  """The environment for started servers: this process's import path, and
  the workspace (sources and generated protos) when run from one."""
  env = dict(os.environ)
  paths = [p for p in sys.path if p]
  workspace = _workspace()
  if os.path.isdir(os.path.join(workspace, "tensorflow_serving")):
    paths = [workspace, os.path.join(workspace, "bazel-bin")] + paths
  env["PYTHONPATH"] = os.pathsep.join(paths)
  return env


def default_server_command() -> str:
  binary = os.path.join(_workspace(), _SERVER_BINARY)
  if os.access(binary, os.X_OK):
    return shlex.quote(binary) + " " + _SERVER_ARGS
  return "{python} -m tensorflow_serving.model_servers.main " + _SERVER_ARGS


def default_model_base_path(model: str = "softmax") -> str:
  """Where export_model.py's `model` lives; exports it there the first time."""
  base = os.path.join(tempfile.gettempdir(), "tfs_benchmark_model" +
                      ("" if model == "softmax" else f"_{model}"))
  if not os.path.exists(os.path.join(base, "1", "saved_model.pb")):
    print(f"Exporting the benchmark model ({model}) to {base} ...", flush=True)
    # In a child process: the benchmark itself stays free of TensorFlow state.
    subprocess.run([
        sys.executable, "-m", "tensorflow_serving.tools.benchmark.export_model",
        f"--model={model}", base
    ], check=True, env=_child_env(), stdout=subprocess.DEVNULL)
  return base


def _latest_version_dir(base: str) -> str:
  versions = [int(d) for d in os.listdir(base) if d.isdigit()]
  if not versions:
    raise ValueError(f"no numbered version directory under {base}")
  return os.path.join(base, str(max(versions)))


def _probe(target: Target, payload: bytes) -> bool:
  """True once the target answers the benchmark's request successfully."""
  if target.protocol == "grpc":
    import grpc  # pylint: disable=g-import-not-at-top
    with grpc.insecure_channel(f"{target.host}:{target.port}") as channel:
      call = channel.unary_unary(grpc_method(target))
      try:
        call(payload, timeout=5)
        return True
      except grpc.RpcError:
        return False
  # The request as the load generator sends it: the bytes, as they are.
  try:
    with socket.create_connection((target.host, target.port),
                                  timeout=5) as sock:
      sock.sendall(payload)
      received = b""
      while True:
        data = sock.recv(65536)
        if not data:
          return False
        received += data
        parsed = load_generator.parse_http_response(received)
        if parsed is not None:
          return parsed[0] == 200
  except (ConnectionError, OSError, ValueError):
    return False


_ENV_WORD = re.compile(r"[A-Z_][A-Z0-9_]*=.*")


def split_env(words: Sequence[str]) -> tuple[list[str], list[str]]:
  """A variant's leading KEY=VALUE words (environment) and the rest."""
  words = list(words)
  n = 0
  while n < len(words) and _ENV_WORD.fullmatch(words[n]):
    n += 1
  return words[:n], words[n:]


@contextlib.contextmanager
def started(target: Target, model_base_path: str, rows: int,
            probe_payload,
            model_config_file: Optional[str] = None) -> Iterator[Target]:
  """Starts the target's server if the benchmark owns it; yields the target
  with host, port and pid filled in; stops the server afterwards.

  model_config_file: serve the models of this config file instead of the
  one at model_base_path (the default server command only)."""
  if target.kind == "external":
    yield target
    return
  grpc_port, rest_port = _free_port(), _free_port()
  if target.kind in BASELINES:
    port = grpc_port if target.protocol == "grpc" else rest_port
    command = [
        sys.executable, "-m",
        "tensorflow_serving.tools.benchmark.baseline_servers",
        f"--kind={target.kind}", f"--port={port}",
        f"--model_name={_MODEL_NAME.value}",
        f"--signature_name={_SIGNATURE.value}", f"--rows={rows}",
        f"--threads={_SERVER_THREADS.value}"
    ]
    if target.kind.startswith("naive"):
      command.append(f"--model_dir={_latest_version_dir(model_base_path)}")
  elif target.kind in MLSERVER_KINDS:
    mlserver = mlserver_baseline.ensure_env(
        _MLSERVER_ENV.value or mlserver_baseline.default_env_dir())
    repository = mlserver_baseline.write_repository(
        tempfile.mkdtemp(prefix="benchmark_mlserver_"), _MODEL_NAME.value,
        _latest_version_dir(model_base_path), _SIGNATURE.value, _INPUT.value,
        _OUTPUT.value, http_port=rest_port, grpc_port=grpc_port)
    command = mlserver_baseline.command(mlserver, repository)
    port = grpc_port if target.protocol == "grpc" else rest_port
  else:
    template = _SERVER_COMMAND.value or default_server_command()
    if model_config_file:
      template = template.replace(
          " --model_name={model_name} --model_base_path={model_base_path}",
          " --model_config_file=" + shlex.quote(model_config_file))
    command = shlex.split(template.format(
        python=shlex.quote(sys.executable), grpc_port=grpc_port,
        rest_port=rest_port, model_name=_MODEL_NAME.value,
        model_base_path=shlex.quote(model_base_path)))
    command += shlex.split(_SERVER_FLAGS.value)
    if target.variant:
      env, extra = split_env(
          parse_server_variants(_SERVER_VARIANTS.value)[target.variant])
      command = (["env"] + env if env else []) + command + extra
    port = grpc_port if target.protocol == "grpc" else rest_port
  log = tempfile.NamedTemporaryFile(
      prefix=f"benchmark_{target.kind}_", suffix=".log", delete=False)
  env = _child_env()
  if target.kind in MLSERVER_KINDS:
    env.pop("PYTHONPATH", None)  # its own virtualenv, nothing of ours
  proc = subprocess.Popen(command, env=env, stdout=log,
                          stderr=subprocess.STDOUT, start_new_session=True)
  running = dataclasses.replace(target, port=port, pid=proc.pid)
  try:
    deadline = time.monotonic() + _STARTUP_TIMEOUT.value
    payload = probe_payload(running)
    while not _probe(running, payload):
      if proc.poll() is not None:
        raise RuntimeError(f"{target.kind} exited with {proc.returncode}; "
                           f"see {log.name}:\n{_tail(log.name)}")
      if time.monotonic() > deadline:
        raise RuntimeError(f"{target.kind} did not answer within "
                           f"{_STARTUP_TIMEOUT.value} s; see {log.name}")
      time.sleep(0.5)
    yield running
  finally:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGTERM)
      try:
        proc.wait(timeout=15)
      except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def _tail(path: str, lines: int = 20) -> str:
  with open(path, errors="replace") as f:
    return "".join(f.readlines()[-lines:])


# --- running and reporting ----------------------------------------------------------


@dataclasses.dataclass
class Result:
  """One measured run, as printed and written to --json_output."""

  target: str
  protocol: str
  concurrency: int
  rows: int
  duration_s: float
  requests: int
  qps: float
  rows_per_s: float
  p50_ms: float
  p90_ms: float
  p99_ms: float
  errors: dict
  server_cpu_us_per_request: Optional[float]
  client_cpu_us_per_request: Optional[float]
  # CPU (in cores) that neither the server nor the load generator used
  # during the window: the rest of the machine's load.
  others_cores: Optional[float] = None


def summarize(target: Target, concurrency: int, rows: int,
              load: load_generator.LoadResult,
              server_cpu_s: Optional[float],
              machine_busy_s: Optional[float] = None) -> Result:
  latencies = sorted(load.latencies)
  n = len(latencies)
  per_request = lambda seconds: (None if seconds is None or not n else
                                 seconds / n * 1e6)
  return Result(
      target=target.spec, protocol=target.protocol, concurrency=concurrency,
      rows=rows, duration_s=load.duration_s, requests=n,
      qps=n / load.duration_s, rows_per_s=n * rows / load.duration_s,
      p50_ms=load_generator.percentile(latencies, 0.50) * 1e3,
      p90_ms=load_generator.percentile(latencies, 0.90) * 1e3,
      p99_ms=load_generator.percentile(latencies, 0.99) * 1e3,
      errors=dict(load.errors),
      server_cpu_us_per_request=per_request(server_cpu_s),
      client_cpu_us_per_request=per_request(load.client_cpu_seconds),
      others_cores=(None if machine_busy_s is None or not load.duration_s
                    else max(0.0, machine_busy_s - (server_cpu_s or 0.0) -
                             load.client_cpu_seconds) / load.duration_s))


def run_one(target: Target, concurrency: int, rows: int,
            payload: bytes) -> Result:
  """One measured window against a running target."""
  spec = load_generator.WorkerSpec(target.protocol, target.host, target.port,
                                   payload, concurrency,
                                   grpc_method=grpc_method(target))
  samples = {}

  def sample(key):
    samples["machine_" + key] = proc_stats.machine_busy()
    if target.pid is not None:
      samples[key] = proc_stats.sample(target.pid)

  with load_generator.LoadRun(spec, _CLIENT_PROCESSES.value) as run:
    load = run.measure(_WARMUP.value, _DURATION.value,
                       lambda: sample("start"), lambda: sample("end"))
  server_cpu = ((samples["end"] - samples["start"]).total
                if "end" in samples else None)
  machine = (samples["machine_end"] - samples["machine_start"]
             if "machine_end" in samples else None)
  return summarize(target, concurrency, rows, load, server_cpu, machine)


def _fmt(value: Optional[float], digits: int = 0) -> str:
  if value is None or value != value:  # None or nan
    return "-"
  return f"{value:,.{digits}f}"


def format_table(results: Sequence[Result]) -> str:
  """The results as an aligned text table, with ratios against the floor."""
  floors = {(r.protocol, r.concurrency, r.rows): r for r in results
            if r.target in ("floor_grpc", "floor_rest")}
  header = ("target", "conc", "rows", "QPS", "rows/s", "p50 ms", "p90 ms",
            "p99 ms", "errors", "server us/req", "client us/req",
            "QPS/floor", "CPU/floor", "others")
  lines = [header]
  for r in results:
    floor = floors.get((r.protocol, r.concurrency, r.rows))
    qps_ratio = cpu_ratio = None
    if floor is not None and floor is not r:
      qps_ratio = r.qps / floor.qps if floor.qps else None
      if r.server_cpu_us_per_request and floor.server_cpu_us_per_request:
        cpu_ratio = (r.server_cpu_us_per_request /
                     floor.server_cpu_us_per_request)
    lines.append((
        r.target, str(r.concurrency), str(r.rows), _fmt(r.qps),
        _fmt(r.rows_per_s), _fmt(r.p50_ms, 2), _fmt(r.p90_ms, 2),
        _fmt(r.p99_ms, 2), str(sum(r.errors.values())),
        _fmt(r.server_cpu_us_per_request), _fmt(r.client_cpu_us_per_request),
        _fmt(qps_ratio, 2), _fmt(cpu_ratio, 2), _fmt(r.others_cores, 2)))
  widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
  out = []
  for i, line in enumerate(lines):
    out.append("  ".join(
        cell.ljust(w) if j == 0 else cell.rjust(w)
        for j, (cell, w) in enumerate(zip(line, widths))))
    if i == 0:
      out.append("  ".join("-" * w for w in widths))
  return "\n".join(out)


def median_results(results: Sequence[Result]) -> list[Result]:
  """One Result per (target, concurrency, rows): the medians of the runs."""
  groups: dict[tuple, list[Result]] = {}
  for r in results:
    groups.setdefault((r.target, r.concurrency, r.rows), []).append(r)
  medians = []
  for runs in groups.values():
    def median(field, runs=runs):
      values = [getattr(r, field) for r in runs
                if getattr(r, field) is not None]
      return statistics.median(values) if values else None
    errors: dict = {}
    for r in runs:
      for key, count in r.errors.items():
        errors[key] = errors.get(key, 0) + count
    first = runs[0]
    medians.append(Result(
        target=first.target, protocol=first.protocol,
        concurrency=first.concurrency, rows=first.rows,
        duration_s=sum(r.duration_s for r in runs),
        requests=sum(r.requests for r in runs), qps=median("qps"),
        rows_per_s=median("rows_per_s"), p50_ms=median("p50_ms"),
        p90_ms=median("p90_ms"), p99_ms=median("p99_ms"), errors=errors,
        server_cpu_us_per_request=median("server_cpu_us_per_request"),
        client_cpu_us_per_request=median("client_cpu_us_per_request")))
  return medians


def target_specs() -> list[str]:
  """--targets, or what its shorthands (--compare, --baseline, --target) say."""
  if _COMPARE.value:
    return _COMPARE.value
  if _BASELINE.value:
    return [_BASELINE.value]
  if _TARGET.value:
    spec = f"{_PROTOCOL.value}:{_TARGET.value}"
    if _SERVER_PID.value is not None:
      spec += f":{_SERVER_PID.value}"
    return [spec]
  return _TARGETS.value


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    targets = [parse_target(t) for t in target_specs()]
    variants = parse_server_variants(_SERVER_VARIANTS.value)
    for target in targets:
      if target.variant and target.variant not in variants:
        raise ValueError(f"{target.spec}: no --server_variant="
                         f"{target.variant}=...")
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  levels = [int(c) for c in _CONCURRENCY.value]
  sizes = [int(r) for r in _ROWS.value]
  needs_model = any(t.kind.startswith(("naive", "server", "mlserver"))
                    for t in targets)
  model_base_path = (_MODEL_BASE_PATH.value or
                     (default_model_base_path(export_model.MODEL.value)
                      if needs_model else ""))
  payload_cache: dict[tuple, bytes] = {}

  def payload(target: Target, rows: int) -> bytes:
    key = (target.protocol, target.api, target.binary, target.host,
           target.port, rows)
    if key not in payload_cache:
      payload_cache[key] = payload_for(target, rows)
    return payload_cache[key]

  results = []
  for target in [t for _ in range(max(1, _REPEAT.value)) for t in targets]:
    # The floors answer with a fixed response sized for one rows value, so
    # they are restarted per size; the others serve every size.
    groups = ([[r] for r in sizes] if target.kind.startswith("floor")
              else [sizes])
    for group in groups:
      with started(target, model_base_path, group[0],
                   lambda t, g=group: payload(t, g[0])) as running:
        for rows in group:
          for concurrency in levels:
            result = run_one(running, concurrency, rows,
                             payload(running, rows))
            results.append(result)
            print(f"{target.spec} concurrency={concurrency} rows={rows}: "
                  f"{result.qps:,.0f} QPS, p50 {result.p50_ms:.2f} ms, "
                  f"server {_fmt(result.server_cpu_us_per_request)} us/req, "
                  f"errors {dict(result.errors) or 0}", flush=True)
  print()
  print(format_table(results))
  if _REPEAT.value > 1:
    print(f"\nMedians over {_REPEAT.value} runs:")
    print(format_table(median_results(results)))
  if _JSON_OUTPUT.value:
    with open(_JSON_OUTPUT.value, "w", encoding="utf-8") as f:
      json.dump([dataclasses.asdict(r) for r in results], f, indent=2)


if __name__ == "__main__":
  app.run(main)
