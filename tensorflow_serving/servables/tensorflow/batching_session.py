"""BatchingSession: runs concurrent calls of a model function as one batch.

A TensorFlow signature is run through a callable
`run(feeds: {alias: np.ndarray}) -> {alias: np.ndarray}`. BatchingSession
wraps such a callable into one with the same signature whose calls wait in a
queue of the server's SharedBatchScheduler; a batch thread merges the queued
calls' inputs along dimension 0, runs the model once, and splits the outputs
back, so each caller gets exactly the rows that belong to its own inputs. On
this project's CPU-bound models the win is the per-call overhead (Python,
TensorFlow dispatch) paid once per batch instead of once per request.

Behaviour, following upstream's batching_session.cc:
  * A call's size is the common 0th-dimension size of its inputs; calls
    whose inputs disagree, or that have a scalar input, are refused with
    INVALID_ARGUMENT before they are queued.
  * allowed_batch_sizes: a merged batch is padded up to the smallest allowed
    size that holds it, by repeating the first row of the last call's input
    (a row known to be valid for the model); the padded rows' outputs are
    dropped.
  * pad_variable_length_inputs: inputs of the same alias whose other
    dimensions differ are padded at the end of each dimension up to the
    largest size in the batch, with the tensor's own first element as the
    padding value (ranks 1 to 6, as upstream). Outputs are not un-padded.
  * Large-batch splitting: a call too big for the room left in the open batch
    is sliced into parts on different batches and its outputs are joined
    again; if any part fails, the call fails.
  * A failed model run fails exactly the calls of that run, with the same
    exception object the wrapped callable raised.
  * Deadlines: a call may carry its request's deadline (time.monotonic()
    seconds). When a batch is about to run, a call whose deadline has passed
    is dropped from it with upstream's RESOURCE_EXHAUSTED "Run() timeout
    exceeded while waiting in batching queue" (upstream fails a batch so
    only when every call in it has expired, and runs expired calls with the
    others); the run is given the latest deadline of the calls that remain,
    or none if one of them has none, as upstream gives the batch's run the
    latest of its tasks' timeouts. The wrapped callable gets it as the
    keyword `deadline`, passed only when there is one, so a callable that
    knows no deadlines keeps working.

One deliberate difference: upstream fails a whole batch with
FAILED_PRECONDITION when calls with different shapes (and no padding) meet
in it. Here such calls are run as separate sub-batches, so one malformed
request cannot fail well-formed requests that happened to share its batch.

BatchingRunner adapts the same machinery to a run step of the form
`run(feed_names, feeds, fetch_names) -> [arrays]` (SavedModelBundle.run),
with one queue per distinct feed/fetch set, made on first use.

Threading: calls run on request threads and block until the result is
ready; the model runs on the scheduler's batch threads.
"""

import dataclasses
import itertools
import threading
import time
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from tensorflow_serving.batching import batch_scheduler
from tensorflow_serving.batching import shared_batch_scheduler
from tensorflow_serving.util import status

Feeds = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray]
RunFn = Callable[[Feeds], Mapping[str, np.ndarray]]

_MAX_PADDABLE_RANK = 6


@dataclasses.dataclass(frozen=True)
class BatchingSessionOptions:
  """How merged batches are shaped (BatchingParameters' tensor-side fields).

  Attributes:
    allowed_batch_sizes: if non-empty, the increasing batch sizes the model
      runs with; batches are padded up to the next one. The last entry must
      equal the queue's maximum batch size.
    pad_variable_length_inputs: pad inputs whose non-batch dimensions differ
      between calls, instead of running them in separate batches.
  """

  allowed_batch_sizes: tuple[int, ...] = ()
  pad_variable_length_inputs: bool = False


def validate_allowed_batch_sizes(allowed_batch_sizes: Sequence[int],
                                 max_batch_size: int) -> None:
  """Checks allowed_batch_sizes against max_batch_size, as the server does.

  Upstream's server (bundle_factory_util's WrapSessionForBatching) checks
  only that the last entry is max_batch_size; the order of the others is
  not checked there (a batch is padded to the first entry that holds it),
  so a file upstream's server accepts is accepted here too.

  Raises:
    ServingError: INVALID_ARGUMENT "Last entry in allowed_batch_sizes must
      match max_batch_size; last entry was A; expected B".
  """
  if not allowed_batch_sizes:
    return
  if allowed_batch_sizes[-1] != max_batch_size:
    raise status.invalid_argument(
        "Last entry in allowed_batch_sizes must match max_batch_size; last "
        f"entry was {allowed_batch_sizes[-1]}; expected {max_batch_size}")


def round_to_lowest_allowed_batch_size(allowed_batch_sizes: Sequence[int],
                                       batch_size: int) -> int:
  """The smallest allowed size >= batch_size (batch_size if none is allowed)."""
  for size in allowed_batch_sizes:
    if size >= batch_size:
      return size
  return batch_size


def compute_input_size(feeds: Feeds) -> int:
  """The call's batch size: its inputs' common 0th dimension.

  Raises:
    ServingError: INVALID_ARGUMENT (upstream's texts) if there is no input,
      an input is a scalar, or the 0th dimensions differ.
  """
  if not feeds:
    raise status.invalid_argument(
        "Batching Run() must have at least one input tensor")
  size = None
  for array in feeds.values():
    if array.ndim == 0:
      raise status.invalid_argument(
          "Batching Run() input tensors must have at least one dimension")
    if size is None:
      size = array.shape[0]
    elif array.shape[0] != size:
      raise status.invalid_argument(
          "Batching Run() input tensors must have equal 0th-dimension size")
  return size


def calculate_max_dim_sizes(feeds_list: Sequence[Feeds]) -> dict[str, list[int]]:
  """Per alias, the largest size of each dimension across the calls."""
  result: dict[str, list[int]] = {}
  for feeds in feeds_list:
    for name, array in feeds.items():
      sizes = result.setdefault(name, [0] * array.ndim)
      for d, n in enumerate(array.shape):
        if n > sizes[d]:
          sizes[d] = n
  return result


def add_padding(array: np.ndarray, max_dim_sizes: Sequence[int]) -> np.ndarray:
  """Pads dims 1.. of `array` up to max_dim_sizes with its first element.

  Raises:
    ServingError: INVALID_ARGUMENT for ranks outside 1..6, or for an empty
      tensor that needs padding (there is no element to pad with).
  """
  if not 1 <= array.ndim <= _MAX_PADDABLE_RANK:
    raise status.invalid_argument(
        "Only tensors with rank from 1 to 6 can be padded.")
  pad = [(0, 0)] + [(0, max(0, m - n))
                    for m, n in zip(max_dim_sizes[1:], array.shape[1:])]
  if not any(after for _, after in pad):
    return array
  if array.size == 0:
    raise status.invalid_argument(
        "Got empty tensor in batch of non-empty tensors.")
  return np.pad(array, pad, mode="constant",
                constant_values=array.flat[0])


def merge_inputs(feeds_list: Sequence[Feeds], padding_size: int,
                 pad_variable_length_inputs: bool) -> dict[str, np.ndarray]:
  """Concatenates same-named inputs along dim 0 and appends padding rows.

  All calls must have the same aliases (and, without variable-length padding,
  the same dtypes and non-batch dims); BatchingSession groups them so.
  """
  max_dims = (calculate_max_dim_sizes(feeds_list)
              if pad_variable_length_inputs else None)
  merged = {}
  for name in feeds_list[0]:
    arrays = [feeds[name] for feeds in feeds_list]
    if max_dims is not None:
      arrays = [add_padding(a, max_dims[name]) for a in arrays]
    if padding_size > 0:
      arrays.append(np.repeat(arrays[-1][:1], padding_size, axis=0))
    merged[name] = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
  return merged


def split_outputs(outputs: Mapping[str, np.ndarray], sizes: Sequence[int],
                  padding_size: int) -> list[Outputs]:
  """Splits batched outputs into one dict per call (padding rows dropped).

  Raises:
    ServingError: FAILED_PRECONDITION (upstream's texts) if an output has no
      batch dimension or its 0th dimension is not the batch's size.
  """
  total = sum(sizes) + padding_size
  offsets = list(itertools.accumulate(sizes))
  per_call: list[Outputs] = [{} for _ in sizes]
  for name, array in outputs.items():
    array = np.asarray(array)
    if array.ndim == 0:
      raise status.failed_precondition("Batched output tensor has 0 dimensions")
    if array.shape[0] != total:
      raise status.failed_precondition(
          "Batched output tensor's 0th dimension does not equal the sum of "
          "the 0th dimension sizes of the input tensors")
    start = 0
    for i, end in enumerate(offsets):
      per_call[i][name] = array[start:end]
      start = end
  return per_call


class _SplitCall:
  """Joins the parts of a call that large-batch splitting spread over batches.

  Thread-safe: parts finish on different batch threads.
  """

  def __init__(self, whole: "_RunTask", num_parts: int) -> None:
    self._whole = whole
    self._mu = threading.Lock()
    self._outputs: list[Optional[Outputs]] = [None] * num_parts  # guarded by self._mu
    self._error: Optional[BaseException] = None  # guarded by self._mu
    self._pending = num_parts  # guarded by self._mu

  def part_done(self, index: int, outputs: Optional[Outputs],
                error: Optional[BaseException]) -> None:
    with self._mu:
      if error is not None and self._error is None:
        self._error = error
      self._outputs[index] = outputs
      self._pending -= 1
      if self._pending:
        return
    if self._error is not None:
      self._whole.finish(None, self._error)
      return
    parts = self._outputs
    joined = {
        name: np.concatenate([p[name] for p in parts]) for name in parts[0]
    }
    self._whole.finish(joined, None)


class _RunTask(batch_scheduler.BatchTask):
  """One call (or one part of a split call) waiting for its batch."""

  __slots__ = ("feeds", "_size", "key", "_done", "_outputs", "_error",
               "_split", "_part_index", "deadline")

  def __init__(self, feeds: Feeds, size: int, key: tuple,
               split: Optional[_SplitCall] = None, part_index: int = 0,
               deadline: Optional[float] = None) -> None:
    self.feeds = feeds
    self._size = size
    self.key = key
    self.deadline = deadline
    self._outputs: Optional[Outputs] = None
    self._error: Optional[BaseException] = None
    self._split = split
    self._part_index = part_index
    # A one-shot latch: held until finish(); wait() blocks on it. Cheaper
    # than an Event, which matters at one per request.
    self._done = threading.Lock()
    self._done.acquire()  # pylint: disable=consider-using-with

  @property
  def size(self) -> int:
    return self._size

  def finish(self, outputs: Optional[Outputs],
             error: Optional[BaseException]) -> None:
    """Delivers the result (exactly once)."""
    if self._split is not None:
      self._split.part_done(self._part_index, outputs, error)
      return
    self._outputs = outputs
    self._error = error
    self._done.release()

  def wait(self) -> Outputs:
    self._done.acquire()  # pylint: disable=consider-using-with
    if self._error is not None:
      raise self._error
    return self._outputs


def _split_task(task: _RunTask, first_size: int,
                max_size: int) -> list[_RunTask]:
  """Slices a call into parts: first_size rows (if > 0), then <= max_size."""
  sizes = [first_size] if first_size > 0 else []
  left = task.size - first_size
  while left > 0:
    sizes.append(min(left, max_size))
    left -= sizes[-1]
  joiner = _SplitCall(task, len(sizes))
  parts = []
  start = 0
  for index, size in enumerate(sizes):
    feeds = {name: a[start:start + size] for name, a in task.feeds.items()}
    parts.append(_RunTask(feeds, size, task.key, joiner, index,
                          task.deadline))
    start += size
  return parts


class BatchingSession:
  """A batched version of one run callable, on one queue of a shared scheduler.

  Make one per model version and signature (the queue is the signature's
  queue), close() it when the version unloads.
  """

  Options = BatchingSessionOptions

  def __init__(self, run: RunFn,
               scheduler: shared_batch_scheduler.SharedBatchScheduler,
               queue_options: shared_batch_scheduler.QueueOptions,
               options: BatchingSessionOptions = BatchingSessionOptions()
               ) -> None:
    """Adds a queue for `run` to `scheduler`.

    Raises:
      ServingError: INVALID_ARGUMENT for inconsistent options.
    """
    validate_allowed_batch_sizes(options.allowed_batch_sizes,
                                 queue_options.input_batch_size_limit)
    if queue_options.enable_large_batch_splitting:
      queue_options = dataclasses.replace(queue_options,
                                          split_input_task_func=_split_task)
    self._run = run
    self._options = options
    self._queue = scheduler.add_queue(queue_options, self._process_batch)

  def __call__(self, feeds: Feeds, deadline: Optional[float] = None) -> Outputs:
    """Runs `feeds` as part of a batch; returns this call's outputs.

    `deadline`: the request's, or None (see the module doc).

    Raises:
      ServingError: INVALID_ARGUMENT for unbatchable inputs or a call bigger
        than max_batch_size; UNAVAILABLE when the queue is full or closed;
        RESOURCE_EXHAUSTED when the deadline passed before its batch ran.
      Exception: whatever the wrapped callable raised for this call's batch.
    """
    size = compute_input_size(feeds)
    if self._options.pad_variable_length_inputs:
      key = tuple(sorted((name, a.dtype.str, a.ndim)
                         for name, a in feeds.items()))
    else:
      key = tuple(sorted((name, a.dtype.str, a.shape[1:])
                         for name, a in feeds.items()))
    task = _RunTask(feeds, size, key, deadline=deadline)
    self._queue.schedule(task)
    return task.wait()

  def num_enqueued_calls(self) -> int:
    """Calls (or parts of split calls) waiting for a batch thread."""
    return self._queue.num_enqueued_tasks()

  def close(self) -> None:
    """Refuses new calls and returns once every queued call has finished."""
    self._queue.close()

  def _process_batch(self, batch: batch_scheduler.Batch) -> None:
    """Runs on a batch thread: one model run per group of compatible calls."""
    groups: dict[tuple, list[_RunTask]] = {}
    for task in batch:
      groups.setdefault(task.key, []).append(task)
    for tasks in groups.values():
      self._run_group(tasks)

  def _run_group(self, tasks: list[_RunTask]) -> None:
    deadline = _drop_expired(tasks)
    if not tasks:
      return
    try:
      sizes = [t.size for t in tasks]
      total = sum(sizes)
      padding = round_to_lowest_allowed_batch_size(
          self._options.allowed_batch_sizes, total) - total
      # One call without padding is fed as is (merge_inputs copies nothing).
      merged = merge_inputs([t.feeds for t in tasks], padding,
                            self._options.pad_variable_length_inputs)
      outputs = (self._run(merged) if deadline is None else
                 self._run(merged, deadline=deadline))
      results = split_outputs(outputs, sizes, padding)
    except BaseException as e:  # pylint: disable=broad-except
      for task in tasks:
        task.finish(None, e)
      return
    for task, outputs in zip(tasks, results):
      task.finish(outputs, None)


def _drop_expired(tasks: list[_RunTask]) -> Optional[float]:
  """Fails and removes (in place) the tasks whose deadline has passed.

  Returns the run's deadline: the latest of the remaining tasks', None if
  one of them has none.
  """
  latest: Optional[float] = 0.0
  now = None
  kept = 0
  for task in tasks:
    deadline = task.deadline
    if deadline is None:
      latest = None
    else:
      if now is None:
        now = time.monotonic()
      if deadline <= now:
        task.finish(None, status.resource_exhausted(
            "Run() timeout exceeded while waiting in batching queue"))
        continue
      if latest is not None and deadline > latest:
        latest = deadline
    tasks[kept] = task
    kept += 1
  del tasks[kept:]
  return latest


# (feed tensor names, arrays in that order, fetch tensor names) -> arrays;
# called with the keyword `deadline` as well when the run has one.
BundleRunFn = Callable[..., Sequence[np.ndarray]]


class BatchingRunner:
  """A batched drop-in for a `run(feed_names, feeds, fetch_names)` step.

  Each distinct (feed_names, fetch_names) pair, i.e. each signature as the
  requests use it, gets its own BatchingSession (its own scheduler queue) on
  first use, as upstream keys its queues by the set of input and output
  tensor names. At most `max_queues` pairs are batched; calls with further
  pairs (say, many different Predict output_filters) run unbatched, as
  upstream runs calls that match no batching signature.

  Thread-safe. close() once, when the model version unloads.
  """

  def __init__(self, run: BundleRunFn,
               scheduler: shared_batch_scheduler.SharedBatchScheduler,
               queue_options: shared_batch_scheduler.QueueOptions,
               options: BatchingSessionOptions = BatchingSessionOptions(),
               max_queues: int = 64) -> None:
    validate_allowed_batch_sizes(options.allowed_batch_sizes,
                                 queue_options.input_batch_size_limit)
    self._run = run
    self._scheduler = scheduler
    self._queue_options = queue_options
    self._options = options
    self._max_queues = max_queues
    self._mu = threading.Lock()
    # Written under self._mu, read without it (a dict lookup is atomic).
    self._sessions: dict[tuple, BatchingSession] = {}
    self._closed = False  # guarded by self._mu

  def __call__(self, feed_names: tuple[str, ...], feeds: Sequence[np.ndarray],
               fetch_names: tuple[str, ...],
               deadline: Optional[float] = None) -> list[np.ndarray]:
    """Same contract as the wrapped run, plus the batching errors."""
    key = (feed_names, fetch_names)
    session = self._sessions.get(key) or self._session(key)
    if session is None:
      if deadline is None:
        return list(self._run(feed_names, feeds, fetch_names))
      return list(self._run(feed_names, feeds, fetch_names, deadline=deadline))
    outputs = session(dict(zip(feed_names, feeds)), deadline)
    return [outputs[name] for name in fetch_names]

  def _session(self, key: tuple) -> Optional[BatchingSession]:
    with self._mu:
      if self._closed:
        raise status.unavailable("The batching runner is closed")
      session = self._sessions.get(key)
      if session is None and len(self._sessions) < self._max_queues:
        feed_names, fetch_names = key
        unique_fetches = tuple(dict.fromkeys(fetch_names))

        def run_dict(feeds: Feeds, deadline: Optional[float] = None) -> Outputs:
          arrays = [feeds[n] for n in feed_names]
          arrays = (self._run(feed_names, arrays, unique_fetches)
                    if deadline is None else
                    self._run(feed_names, arrays, unique_fetches,
                              deadline=deadline))
          return dict(zip(unique_fetches, arrays))

        session = BatchingSession(run_dict, self._scheduler,
                                  self._queue_options, self._options)
        self._sessions[key] = session
      return session

  def close(self) -> None:
    """Closes every queue, after the calls already queued have finished."""
    with self._mu:
      self._closed = True
      sessions = list(self._sessions.values())
    for session in sessions:
      session.close()
