"""The server's metrics: counters and samplers, and the ones it records.

Upstream records its figures with TensorFlow's in-process monitoring library
(Counter, Sampler with exponential buckets, cells per label tuple) and its
PrometheusExporter renders whatever is registered. This module is that
library's small Python counterpart plus the metric objects themselves, so that
every layer can record without knowing about HTTP or Prometheus:
model_servers/prometheus_exporter.py renders REGISTRY in Prometheus' text
format (through prometheus_client), on the REST port.

Names are TensorFlow's ("/tensorflow/serving/request_count"); the exporter
turns "/" into ":" as upstream does.

Who records what:
  * gRPC Predict/Classify/Regress and every REST call: record_request()
    (by the data plane, which chooses the label values; see below).
  * The model run inside a request: record_runtime_latency().
  * The SavedModel loader, once per load attempt: record_load_attempt().
  * Every version's lifecycle (core/servable_state_metrics):
    record_version_state(), record_version_load_latency(),
    remove_version().
  * Batching: record_batch() and record_queuing_latency(), per batch / task.
All functions are thread-safe and cheap (one lock per cell).

Not in upstream: the request metrics carry the version and signature that
answered (and request_count the API and entrypoint too), and two gauges give
each version's state and load time. Their label values come only from what
the server has configured or loaded, never from a client's text as such, so
a client cannot create series at will: the data plane puts UNKNOWN where a
request named a model, version or signature the server does not have, and
NOT_APPLICABLE ("") where the call has none (docs/serving_config.md).
"""

import bisect
import threading
from typing import Iterator, Optional, Sequence

from tensorflow_serving.util import status


def exponential_buckets(scale: float, growth_factor: float,
                        bucket_count: int) -> list[float]:
  """Bucket limits scale, scale*growth, ... (bucket_count of them).

  A last, unbounded bucket (+Inf) is always added by the Sampler.
  """
  limits = []
  bound = scale
  for _ in range(bucket_count):
    limits.append(bound)
    bound *= growth_factor
  return limits


class _CounterCell:
  """The value of a counter for one tuple of label values."""

  def __init__(self) -> None:
    self._mu = threading.Lock()
    self._value = 0  # guarded by self._mu

  def increment_by(self, step: int | float = 1) -> None:
    with self._mu:
      self._value += step

  def value(self) -> int | float:
    with self._mu:
      return self._value


class _SamplerCell:
  """A histogram for one tuple of label values."""

  def __init__(self, limits: Sequence[float]) -> None:
    self._limits = limits
    self._mu = threading.Lock()
    # guarded by self._mu: per-bucket counts (the last is +Inf), sum, count.
    self._buckets = [0] * (len(limits) + 1)
    self._sum = 0.0
    self._count = 0

  def add(self, value: float) -> None:
    # As TensorFlow's Histogram: bucket i holds limits[i-1] <= v < limits[i].
    index = bisect.bisect_right(self._limits, value)
    with self._mu:
      self._buckets[index] += 1
      self._sum += value
      self._count += 1

  def snapshot(self) -> tuple[list[int], float, int]:
    """(per-bucket counts, sum, count), consistent with each other."""
    with self._mu:
      return list(self._buckets), self._sum, self._count


class _GaugeCell:
  """The current value of a gauge for one tuple of label values."""

  def __init__(self) -> None:
    self._value = 0  # Replaced whole; reading it needs no lock.

  def set(self, value: int | float) -> None:
    self._value = value

  def value(self) -> int | float:
    return self._value


class _Metric:
  """Cells keyed by label values; created on first use, kept forever."""

  kind = ""

  def __init__(self, name: str, description: str,
               label_names: Sequence[str]) -> None:
    self.name = name
    self.description = description
    self.label_names = tuple(label_names)
    self._mu = threading.Lock()
    self._cells: dict[tuple[str, ...], object] = {}  # guarded by self._mu

  def _new_cell(self):
    raise NotImplementedError

  def _get_cell(self, labels: tuple):
    # Label values are kept as strings. Requests record with strings, so
    # the first lookup (a dict read, atomic) usually finds the cell without
    # converting anything.
    cell = self._cells.get(labels)
    if cell is not None:
      return cell
    labels = tuple([str(label) for label in labels])
    if len(labels) != len(self.label_names):
      raise ValueError(f"{self.name} takes labels {self.label_names}, got "
                       f"{labels}")
    cell = self._cells.get(labels)
    if cell is None:
      with self._mu:
        cell = self._cells.setdefault(labels, self._new_cell())
    return cell

  def cells(self) -> list[tuple[tuple[str, ...], object]]:
    """(label values, cell) pairs, in creation order."""
    with self._mu:
      return list(self._cells.items())

  def remove(self, *labels: str) -> None:
    """Drops the cell of these label values, if any (its series ends)."""
    with self._mu:
      self._cells.pop(tuple([str(label) for label in labels]), None)


class Counter(_Metric):
  """A monotonically increasing value per label tuple."""

  kind = "counter"

  def _new_cell(self) -> _CounterCell:
    return _CounterCell()

  def get_cell(self, *labels: str) -> _CounterCell:
    return self._get_cell(labels)


class Sampler(_Metric):
  """A histogram per label tuple, with fixed bucket limits."""

  kind = "histogram"

  def __init__(self, name: str, description: str, label_names: Sequence[str],
               bucket_limits: Sequence[float]) -> None:
    super().__init__(name, description, label_names)
    self.bucket_limits = tuple(bucket_limits)

  def _new_cell(self) -> _SamplerCell:
    return _SamplerCell(self.bucket_limits)

  def get_cell(self, *labels: str) -> _SamplerCell:
    return self._get_cell(labels)


class Gauge(_Metric):
  """A value per label tuple that goes up and down (not in TensorFlow's
  monitoring library under this name; its IntGauge)."""

  kind = "gauge"

  def _new_cell(self) -> _GaugeCell:
    return _GaugeCell()

  def get_cell(self, *labels: str) -> _GaugeCell:
    return self._get_cell(labels)


class Registry:
  """The set of metrics an exporter shows, in registration order."""

  def __init__(self) -> None:
    self._mu = threading.Lock()
    self._metrics: dict[str, _Metric] = {}  # guarded by self._mu

  def register(self, metric: _Metric) -> _Metric:
    with self._mu:
      if metric.name in self._metrics:
        raise ValueError(f"metric {metric.name} is already registered")
      self._metrics[metric.name] = metric
    return metric

  def metrics(self) -> Iterator[_Metric]:
    with self._mu:
      return iter(list(self._metrics.values()))

  def get(self, name: str) -> Optional[_Metric]:
    with self._mu:
      return self._metrics.get(name)


REGISTRY = Registry()

# Upstream's latency buckets, in microseconds: 10 us up to ~25 min.
LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)
# Batch sizes: 1, 2, 4, ... 8192.
BATCH_SIZE_BUCKETS = exponential_buckets(1, 2, 14)

# The label values of a request the server cannot vouch for (a model,
# version or signature it does not have), and of a label that does not apply
# to the call (the version of a model-status call, the signature of a
# metadata call).
UNKNOWN = "__unknown__"
NOT_APPLICABLE = ""

# Upstream's labels first; "API", "entrypoint" (request_count), "version" and
# "signature" are added (not in upstream).
REQUEST_COUNT = REGISTRY.register(Counter(
    "/tensorflow/serving/request_count", "The total number of requests.",
    ("model_name", "status", "API", "entrypoint", "version", "signature")))
REQUEST_LATENCY = REGISTRY.register(Sampler(
    "/tensorflow/serving/request_latency",
    "Distribution of wall time (in microseconds) for Tensorflow Serving "
    "request.", ("model_name", "API", "entrypoint", "version", "signature"),
    LATENCY_BUCKETS))
RUNTIME_LATENCY = REGISTRY.register(Sampler(
    "/tensorflow/serving/runtime_latency",
    "Distribution of wall time (in microseconds) for Tensorflow runtime.",
    ("model_name", "API", "runtime", "version", "signature"),
    LATENCY_BUCKETS))
LOAD_ATTEMPT_COUNT = REGISTRY.register(Counter(
    "/tensorflow/cc/saved_model/load_attempt_count",
    "The number of times a SavedModel was successfully loaded.",
    ("model_path", "status")))
LOAD_LATENCY = REGISTRY.register(Counter(
    "/tensorflow/cc/saved_model/load_latency",
    "Latency in microseconds for SavedModels that were successfully loaded.",
    ("model_path",)))
BATCHING_QUEUING_LATENCY = REGISTRY.register(Sampler(
    "/tensorflow/serving/batching_session/queuing_latency",
    "Distribution of wall time (in microseconds) a task spends in a batching "
    "queue.", ("thread_pool_name",), LATENCY_BUCKETS))
BATCHING_WRAPPED_RUN_COUNT = REGISTRY.register(Counter(
    "/tensorflow/serving/batching_session/wrapped_run_count",
    "Total count of run calls on the wrapped session.", ()))
BATCHING_INPUT_BATCH_SIZE = REGISTRY.register(Sampler(
    "/tensorflow/serving/batching/input_batch_size",
    "Tracks the batch size distribution on the inputs by model_name (if "
    "available).", ("model_name", "op_name"), BATCH_SIZE_BUCKETS))
BATCHING_PROCESSED_BATCH_SIZE = REGISTRY.register(Sampler(
    "/tensorflow/serving/batching/processed_batch_size",
    "Tracks the batch size distribution on processing by model_name (if "
    "available).", ("model_name", "op_name"), BATCH_SIZE_BUCKETS))
BATCHING_PADDING_SIZE = REGISTRY.register(Sampler(
    "/tensorflow/serving/batching/padding_size",
    "Tracks the padding size distribution on batches by model_name (if "
    "available).", ("model_name", "execution_batch_size"),
    BATCH_SIZE_BUCKETS))
MODEL_WARMUP_LATENCY = REGISTRY.register(Sampler(
    "/tensorflow/serving/model_warmup_latency",
    "Wall time (in microseconds) spent replaying a model's warmup requests.",
    ("model_path", "status"), LATENCY_BUCKETS))
REQUEST_LOG_COUNT = REGISTRY.register(Counter(
    "/tensorflow/serving/request_log_count",
    "The number of sampled requests handed to a log collector.",
    ("model_name", "status_code")))

# Not in upstream: each version's lifecycle, from the servable event bus.
MODEL_VERSION_STATE = REGISTRY.register(Gauge(
    "/tensorflow/serving/model_version_state",
    "The lifecycle state of a model version, as GetModelStatus numbers it: "
    "10 START, 20 LOADING, 30 AVAILABLE, 40 UNLOADING, 50 END (a version "
    "that failed; one unloaded cleanly has no series).",
    ("model_name", "version")))
MODEL_VERSION_LOAD_LATENCY = REGISTRY.register(Gauge(
    "/tensorflow/serving/model_version_load_latency",
    "Wall time (in microseconds) from the start of a model version's load "
    "(retries included) until it became available.",
    ("model_name", "version")))

# The "entrypoint" label values.
GRPC = "GRPC"
REST = "REST"

# Code -> its name, the "status" label (Code(code).name costs a lookup in
# the enum per request).
_CODE_NAMES = {code: code.name for code in status.Code}


def record_request(model_name: str, version: str, signature: str, api: str,
                   entrypoint: str, code: status.Code,
                   latency_us: Optional[float]) -> None:
  """Counts one request; adds its latency when it succeeded (as upstream).

  The label values must come from the server's own models, versions and
  signatures (or UNKNOWN / NOT_APPLICABLE), never from a client's text as
  such: each new value is a new series, kept forever. The data plane picks
  them.

  Args:
    model_name: the model the request named.
    version: the version that answered, as a string.
    signature: the signature that answered.
    api: "Predict", "Classify", "Regress" for gRPC; REST uses its URL verb
      ("predict", "classify", "regress"; "" for the status/metadata GETs,
      as upstream).
    entrypoint: GRPC or REST.
    code: the outcome (status.Code.OK on success).
    latency_us: wall time of the whole call in microseconds.
  """
  code_name = _CODE_NAMES.get(code) or status.Code(code).name
  REQUEST_COUNT.get_cell(model_name, code_name, api, entrypoint, version,
                         signature).increment_by(1)
  if code == status.Code.OK and latency_us is not None:
    REQUEST_LATENCY.get_cell(model_name, api, entrypoint, version,
                             signature).add(latency_us)


def record_runtime_latency(model_name: str, api: str, latency_us: float,
                           version: str = NOT_APPLICABLE,
                           signature: str = NOT_APPLICABLE,
                           runtime: str = "TF1") -> None:
  """The model-run part of a request (the session call), in microseconds.

  Recorded by the servable, which knows its version and the signature it
  ran.
  """
  RUNTIME_LATENCY.get_cell(model_name, api, runtime, version,
                           signature).add(latency_us)


def record_load_attempt(model_path: str, ok: bool,
                        latency_us: Optional[float] = None) -> None:
  """One SavedModel load attempt of the version directory `model_path`.

  Counts the attempt under status "success" or "fail", and adds the latency
  of successful loads to load_latency (a counter of microseconds, as in
  TensorFlow).
  """
  LOAD_ATTEMPT_COUNT.get_cell(model_path,
                              "success" if ok else "fail").increment_by(1)
  if ok and latency_us is not None:
    LOAD_LATENCY.get_cell(model_path).increment_by(int(latency_us))


def record_batch(model_name: str, op_name: str, input_batch_size: int,
                 processed_batch_size: int) -> None:
  """One batch run: tasks' total size, the size run, and the padding added."""
  BATCHING_WRAPPED_RUN_COUNT.get_cell().increment_by(1)
  BATCHING_INPUT_BATCH_SIZE.get_cell(model_name, op_name).add(input_batch_size)
  BATCHING_PROCESSED_BATCH_SIZE.get_cell(model_name,
                                         op_name).add(processed_batch_size)
  BATCHING_PADDING_SIZE.get_cell(model_name, processed_batch_size).add(
      processed_batch_size - input_batch_size)


def record_queuing_latency(thread_pool_name: str, latency_us: float) -> None:
  """Time one task waited in a batching queue, in microseconds."""
  BATCHING_QUEUING_LATENCY.get_cell(thread_pool_name).add(latency_us)


def record_warmup(model_path: str, code: status.Code,
                  latency_us: float) -> None:
  """One warmup replay of the version directory `model_path` and its outcome."""
  MODEL_WARMUP_LATENCY.get_cell(model_path,
                                status.Code(code).name).add(latency_us)


def record_request_log(model_name: str, code: status.Code) -> None:
  """One sampled request log, and whether its collector took it."""
  REQUEST_LOG_COUNT.get_cell(model_name,
                             status.Code(code).name).increment_by(1)


def record_version_state(model_name: str, version: int, state: int) -> None:
  """A version's lifecycle state (its ModelVersionStatus.State number)."""
  MODEL_VERSION_STATE.get_cell(model_name, str(version)).set(state)


def record_version_load_latency(model_name: str, version: int,
                                latency_us: float) -> None:
  """How long a version took to become available, in microseconds."""
  MODEL_VERSION_LOAD_LATENCY.get_cell(model_name,
                                      str(version)).set(int(latency_us))


def remove_version(model_name: str, version: int) -> None:
  """Ends a version's state and load-time series (it unloaded cleanly)."""
  MODEL_VERSION_STATE.remove(model_name, str(version))
  MODEL_VERSION_LOAD_LATENCY.remove(model_name, str(version))
