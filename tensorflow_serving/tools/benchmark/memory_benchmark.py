r"""Resident memory of the model server, idle, per model and under load.

For each --targets entry this starts the server (as the benchmark does,
with --server_flags and --server_variant), lets it settle, reads its
resident set from /proc (RSS, split into anonymous memory -- the process's
own heap, arenas and stacks -- and file-backed memory, mostly TensorFlow's
shared libraries), sends --load_requests Predict requests of --rows rows at
--concurrency (the first value of each), and reads it again. Targets:

  server_grpc[:NAME], server_rest[:NAME]
      the model server (loaded over gRPC or REST), once per --models count:
      N copies of the benchmark model under the names mnist, mnist_1, ...
      (a --model_config_file), so that the cost of each additional model
      is (RSS at N - RSS at 1) / (N - 1).
  naive_grpc, naive_rest
      the benchmark's straightforward TensorFlow servers.
  tf_import
      a Python process that has imported TensorFlow and nothing else: the
      floor of any TensorFlow server in Python.

  bazel run //tensorflow_serving/tools/benchmark:memory_benchmark -- \
      --targets=tf_import,naive_grpc,naive_rest,server_grpc,server_rest \
      --models=1,11 --load_requests=20000

A --server_variant may start with environment settings, e.g.
--server_variant="arena2=MALLOC_ARENA_MAX=2", run as server_grpc:arena2.
"""

import os
import subprocess
import sys
import tempfile
import time
from typing import Optional, Sequence

from absl import app
from absl import flags

from tensorflow_serving.tools.benchmark import benchmark
from tensorflow_serving.tools.benchmark import load_generator
from tensorflow_serving.tools.benchmark import proc_stats

_MODELS = flags.DEFINE_list(
    "models", ["1"], "Server targets: how many copies of the model to load; "
    "a list measures each count.")
_LOAD_REQUESTS = flags.DEFINE_integer(
    "load_requests", 20000, "Predict requests to send before the second "
    "reading (0: idle only).")
_SETTLE = flags.DEFINE_float(
    "settle_s", 3.0, "Seconds to wait before each reading.")

_MB = 1 << 20


def model_config(base_path: str, count: int) -> str:
  """A ModelServerConfig text with `count` copies of one model."""
  names = ["mnist"] + [f"mnist_{i}" for i in range(1, count)]
  entries = "".join(
      f'  config {{ name: "{name}" base_path: "{base_path}" '
      'model_platform: "tensorflow" }\n' for name in names)
  return "model_config_list {\n" + entries + "}\n"


def _load(target: benchmark.Target, requests: int) -> int:
  """Sends about `requests` Predicts (of --rows rows); returns how many
  succeeded."""
  rows = int(benchmark._ROWS.value[0])  # pylint: disable=protected-access
  payload = (benchmark.grpc_payload(rows) if target.protocol == "grpc" else
             benchmark.rest_payload(target.host, target.port, rows))
  concurrency = int(benchmark._CONCURRENCY.value[0])  # pylint: disable=protected-access
  spec = load_generator.WorkerSpec(target.protocol, target.host, target.port,
                                   payload, concurrency)
  done = 0
  while done < requests:  # A LoadRun measures one window.
    with load_generator.LoadRun(spec, 1) as run:
      done += run.measure(0.0, 5.0).completed
  return done


def _row(label: str, models: int, idle: proc_stats.MemorySample,
         loaded: Optional[proc_stats.MemorySample], requests: int) -> tuple:
  mb = lambda v: f"{v / _MB:,.0f}"
  return (label, str(models), str(idle.threads), mb(idle.rss), mb(idle.anon),
          mb(idle.file), mb(loaded.rss) if loaded else "-",
          mb(loaded.anon) if loaded else "-",
          str(loaded.threads) if loaded else "-", f"{requests:,}")


def _tf_import_row() -> tuple:
  proc = subprocess.Popen(
      [sys.executable, "-c",
       "import tensorflow, sys; print('ready', flush=True); sys.stdin.read()"],
      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
      env=benchmark._child_env())  # pylint: disable=protected-access
  try:
    proc.stdout.readline()
    time.sleep(_SETTLE.value)
    return _row("tf_import", 0, proc_stats.memory(proc.pid), None, 0)
  finally:
    proc.stdin.close()
    proc.wait()


def measure(target: benchmark.Target, model_base_path: str,
            models: int) -> tuple:
  """One row: the target's memory idle and after the load."""
  config = None
  if target.kind.startswith("server") and models > 1:
    config = tempfile.NamedTemporaryFile(
        "w", prefix="memory_benchmark_", suffix=".config", delete=False)
    config.write(model_config(model_base_path, models))
    config.close()
  try:
    with benchmark.started(
        target, model_base_path, 1,
        lambda t: (benchmark.grpc_payload(1) if t.protocol == "grpc" else
                   benchmark.rest_payload(t.host, t.port, 1)),
        model_config_file=config.name if config else None) as running:
      time.sleep(_SETTLE.value)
      idle = proc_stats.memory(running.pid)
      loaded, requests = None, 0
      if _LOAD_REQUESTS.value > 0:
        requests = _load(running, _LOAD_REQUESTS.value)
        time.sleep(_SETTLE.value)
        loaded = proc_stats.memory(running.pid)
      return _row(target.spec, models if config or target.kind.startswith(
          "server") else 1, idle, loaded, requests)
  finally:
    if config is not None:
      os.unlink(config.name)


def format_table(rows: Sequence[tuple]) -> str:
  header = ("target", "models", "threads", "idle RSS MB", "anon", "file",
            "loaded RSS MB", "anon", "threads", "requests")
  lines = [header] + list(rows)
  widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
  out = ["  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                   for j, (c, w) in enumerate(zip(line, widths)))
         for line in lines]
  out.insert(1, "  ".join("-" * w for w in widths))
  return "\n".join(out)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  specs = benchmark.target_specs()
  model_base_path = (benchmark._MODEL_BASE_PATH.value or  # pylint: disable=protected-access
                     benchmark.default_model_base_path())
  rows = []
  for spec in specs:
    if spec == "tf_import":
      rows.append(_tf_import_row())
      print("  ".join(rows[-1]), flush=True)
      continue
    target = benchmark.parse_target(spec)
    if target.kind == "external" or target.kind.startswith("floor"):
      raise app.UsageError(f"{spec}: not a target this tool starts")
    counts = ([int(m) for m in _MODELS.value]
              if target.kind.startswith("server") else [1])
    for count in counts:
      rows.append(measure(target, model_base_path, count))
      print("  ".join(rows[-1]), flush=True)
  print()
  print(format_table(rows))


if __name__ == "__main__":
  flags.FLAGS.set_default(
      "targets", ["tf_import", "naive_grpc", "naive_rest", "server_grpc",
                  "server_rest"])
  app.run(main)
