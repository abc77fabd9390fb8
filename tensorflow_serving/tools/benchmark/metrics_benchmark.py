"""Measures what recording one request's metrics costs: util/metrics' cells
against prometheus_client's own labelled Counter and Histogram, and the
per-version labels against upstream's label sets.

A served Predict records three figures: request_count (a counter),
request_latency and runtime_latency (histograms with upstream's 33
exponential buckets). This times exactly that, in process:

  util_metrics       what the server does now: the data plane's label
                     choice (the version's string, the signature checked
                     against the servable, data_plane.signature_label) and
                     metrics.record_request + metrics.record_runtime_latency
                     with {model_name, status, API, entrypoint, version,
                     signature} and {model_name, API, entrypoint|runtime,
                     version, signature}
  upstream_labels    the baseline: the same cells with upstream's labels
                     only ({model_name, status}, {model_name, API,
                     entrypoint}, {model_name, API, runtime}), as the server
                     recorded before the version and signature labels
  prometheus_client  Counter.labels(...).inc() and two
                     Histogram.labels(...).observe() with util_metrics'
                     labels and buckets, on a registry of their own

on one thread and on --threads threads at once (the server records from
its gRPC and REST worker threads), best of interleaved rounds. The figures
go in docs/architecture.md (Metrics), next to the server's CPU time per
request from the load benchmark. A benchmark, not a test.

  bazel run -c opt //tensorflow_serving/tools/benchmark:metrics_benchmark
"""

import math
import random
import threading
import time
from typing import Callable, Sequence

from absl import app
from absl import flags
from prometheus_client import registry as prometheus_registry
import prometheus_client

from tensorflow_serving.model_servers import data_plane
from tensorflow_serving.servables.tensorflow import servable as servable_lib
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status

_ROUNDS = flags.DEFINE_integer("rounds", 7, "Interleaved rounds; best counts.")
_CALLS = flags.DEFINE_integer("calls", 50000,
                              "Requests recorded per round and variant.")
_THREADS = flags.DEFINE_integer("threads", 4,
                                "Threads recording at once in the contended "
                                "runs.")

# Label values a busy server would see: a few models, mostly OK.
_MODELS = ("mnist", "half", "resnet")


def _inputs(n: int) -> list[tuple[str, status.Code, float]]:
  rng = random.Random(0)
  return [(rng.choice(_MODELS),
           status.Code.OK if rng.random() < 0.95 else status.Code.NOT_FOUND,
           rng.lognormvariate(math.log(200), 0.6)) for _ in range(n)]


class _Servable(servable_lib.Servable):
  """A version with SavedModelServable's signature lookup (a dict); the rest
  is never called."""

  def __init__(self) -> None:
    self._signatures = {"serving_default": {}, "classify_x_to_y": {}}

  name = version = None
  predict = classify = regress = multi_inference = get_model_metadata = None

  def get_signature_inputs(self, signature_name):
    return self._signatures.get(signature_name or "serving_default")


_SERVABLE = _Servable()


def _util_metrics() -> Callable[[str, status.Code, float], None]:
  signature_label = data_plane.signature_label
  servable = _SERVABLE
  version_number = 4

  def record(model: str, code: status.Code, latency_us: float) -> None:
    # The data plane's part: the labels of the version that answered.
    version = str(version_number)
    signature = signature_label(servable, "")
    metrics.record_request(model, version, signature, "Predict",
                           metrics.GRPC, code, latency_us)
    # The servable's part.
    metrics.record_runtime_latency(model, "Predict", latency_us / 2, "4",
                                   "serving_default")

  return record


def _upstream_labels() -> Callable[[str, status.Code, float], None]:
  registry = metrics.Registry()
  count = registry.register(metrics.Counter(
      "/c", "", ("model_name", "status")))
  latency = registry.register(metrics.Sampler(
      "/l", "", ("model_name", "API", "entrypoint"), metrics.LATENCY_BUCKETS))
  runtime = registry.register(metrics.Sampler(
      "/r", "", ("model_name", "API", "runtime"), metrics.LATENCY_BUCKETS))
  names = {code: code.name for code in status.Code}

  def record(model: str, code: status.Code, latency_us: float) -> None:
    count.get_cell(model, names[code]).increment_by(1)
    if code == status.Code.OK:
      latency.get_cell(model, "Predict", metrics.GRPC).add(latency_us)
    runtime.get_cell(model, "Predict", "TF1").add(latency_us / 2)

  return record


def _prometheus_client() -> Callable[[str, status.Code, float], None]:
  registry = prometheus_registry.CollectorRegistry()
  buckets = list(metrics.LATENCY_BUCKETS) + [math.inf]
  count = prometheus_client.Counter(
      ":tensorflow:serving:request_count", "The total number of requests.",
      ("model_name", "status", "API", "entrypoint", "version", "signature"),
      registry=registry)
  latency = prometheus_client.Histogram(
      ":tensorflow:serving:request_latency", "Request latency.",
      ("model_name", "API", "entrypoint", "version", "signature"),
      registry=registry, buckets=buckets)
  runtime = prometheus_client.Histogram(
      ":tensorflow:serving:runtime_latency", "Runtime latency.",
      ("model_name", "API", "runtime", "version", "signature"),
      registry=registry, buckets=buckets)
  names = {code: code.name for code in status.Code}

  def record(model: str, code: status.Code, latency_us: float) -> None:
    count.labels(model, names[code], "Predict", "GRPC", "4",
                 "serving_default").inc()
    if code == status.Code.OK:
      latency.labels(model, "Predict", "GRPC", "4",
                     "serving_default").observe(latency_us)
    runtime.labels(model, "Predict", "TF1", "4",
                   "serving_default").observe(latency_us / 2)

  return record


def _time_one_thread(record, inputs) -> float:
  start = time.perf_counter()
  for model, code, latency_us in inputs:
    record(model, code, latency_us)
  return (time.perf_counter() - start) / len(inputs)


def _time_threads(record, inputs, threads: int) -> float:
  """Wall time per recorded request, `threads` threads recording at once."""
  barrier = threading.Barrier(threads + 1)

  def work():
    barrier.wait()
    for model, code, latency_us in inputs:
      record(model, code, latency_us)

  workers = [threading.Thread(target=work) for _ in range(threads)]
  for worker in workers:
    worker.start()
  barrier.wait()
  start = time.perf_counter()
  for worker in workers:
    worker.join()
  return (time.perf_counter() - start) / (len(inputs) * threads)


def main(argv: Sequence[str]) -> None:
  del argv
  inputs = _inputs(_CALLS.value)
  variants = {"util_metrics": _util_metrics(),
              "upstream_labels": _upstream_labels(),
              "prometheus_client": _prometheus_client()}
  best = {(name, mode): math.inf for name in variants for mode in (1, 2)}
  for _ in range(_ROUNDS.value):
    for name, record in variants.items():
      best[name, 1] = min(best[name, 1], _time_one_thread(record, inputs))
      best[name, 2] = min(best[name, 2], _time_threads(
          record, inputs[:_CALLS.value // _THREADS.value], _THREADS.value))
  print(f"{'variant':<20}{'1 thread us/req':>17}"
        f"{f'{_THREADS.value} threads us/req':>19}")
  for name in variants:
    print(f"{name:<20}{best[name, 1] * 1e6:>17.2f}{best[name, 2] * 1e6:>19.2f}")
  for other, base in (("util_metrics", "upstream_labels"),
                      ("prometheus_client", "util_metrics")):
    for mode, label in ((1, "1 thread"), (2, f"{_THREADS.value} threads")):
      print(f"{other} / {base}, {label}: "
            f"{best[other, mode] / best[base, mode]:.2f}x "
            f"(+{(best[other, mode] - best[base, mode]) * 1e6:.2f}"
            " us per request)")

if __name__ == "__main__":
  app.run(main)
