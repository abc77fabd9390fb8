"""SharedBatchScheduler: one pool of batch threads serving many task queues.

The server has one of these. Every model signature that batches gets its own
queue (add_queue), so tasks of different kinds are never mixed in a batch,
while all queues share the same few batch threads. That is what upstream's
SharedBatchScheduler does, and why: on a machine with N cores, N threads
running batches keep the cores busy, whereas a thread pool per model would
oversubscribe them as soon as several models are loaded.

How a queue forms batches (the semantics of upstream's queue):
  * A queue holds a deque of batches; the last one is *open* (accepting
    tasks), the others are closed and wait for a thread.
  * A task goes into the open batch. If it does not fit (the batch would
    exceed max_execution_batch_size), the open batch is closed and a new one
    opened. With enable_large_batch_splitting, a task bigger than the room
    left is instead split (by QueueOptions.split_input_task_func) so that the
    first piece fills the open batch and the rest go to new batches.
  * The open batch becomes ready when it is full, when the queue is closed,
    or when its first task has waited batch_timeout_micros. With a timeout
    of 0 it is ready as soon as it holds a task, so an idle thread takes
    whatever is queued; under load, tasks pile up while the threads are busy
    and the next free thread takes them all as one batch.
  * max_enqueued_batches bounds the queue (counting the open batch). A task
    that would need a batch beyond it is refused at once with UNAVAILABLE,
    instead of queueing without bound and timing out later.
  * Free threads visit the queues round-robin and process one ready batch at
    a time.

Threading: schedule() runs on request threads and appends under the lock.
At most num_batch_threads batches are processed at a time, outside the lock:
by the batch threads, or (run_on_caller_thread, the default) by a request
thread inside schedule() when its queue has a ready batch and a slot is free.
The latter is what an idle server does with each request: it runs it at once
on the thread that received it, with no thread hand-off; under load, tasks
queue up while the slots are busy and a batch thread takes them as one
batch. The process-batch callback must complete (or fail) every task of its
batch: the scheduler does not know what a task's result is.
"""

import collections
import dataclasses
import os
import threading
from typing import Callable, Generic, Optional

from absl import logging

from tensorflow_serving.batching import batch_scheduler
from tensorflow_serving.util import clock as clock_lib
from tensorflow_serving.util import status

TaskT = batch_scheduler.TaskT
Batch = batch_scheduler.Batch

# (task, first_output_task_size, max_execution_batch_size) -> pieces whose
# sizes add up to the task's size; the first piece has the given size (when
# it is > 0) and the others at most max_execution_batch_size.
SplitInputTaskFunc = Callable[[TaskT, int, int], list[TaskT]]
ProcessBatchCallback = Callable[[Batch], None]


def _num_schedulable_cpus() -> int:
  """CPUs this process may run on (upstream: port::MaxParallelism())."""
  try:
    return len(os.sched_getaffinity(0)) or 1
  except AttributeError:  # not Linux
    return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class SharedBatchSchedulerOptions:
  """Options of the shared thread pool (upstream's defaults).

  Attributes:
    thread_pool_name: names the batch threads (visible in thread dumps).
    num_batch_threads: threads that process batches; must be >= 1. Upstream's
      default is the machine's parallelism (the number of CPUs).
    clock: time source; tests pass a fake one.
    run_on_caller_thread: let schedule() process a ready batch of its queue
      on the calling thread when fewer than num_batch_threads batches are
      being processed, instead of handing it to a batch thread. Same
      batches and the same bound on concurrent batches, but no thread
      switch for the batch (in Python a hand-off costs about as much CPU as
      running a small model). False: only batch threads process batches.
  """

  thread_pool_name: str = "batch_threads"
  num_batch_threads: int = dataclasses.field(
      default_factory=_num_schedulable_cpus)
  clock: clock_lib.Clock = dataclasses.field(
      default_factory=clock_lib.RealClock)
  run_on_caller_thread: bool = True


@dataclasses.dataclass(frozen=True)
class QueueOptions:
  """Options of one queue (upstream's QueueOptions, with its defaults).

  Attributes:
    input_batch_size_limit: the largest task accepted (BatchingParameters
      max_batch_size). Without splitting it is also the largest batch.
    batch_timeout_micros: how long the open batch may wait for more tasks
      once it holds one; 0 means it is ready at once.
    max_enqueued_batches: queue bound in batches (open one included).
    enable_large_batch_splitting: split a task that does not fit the open
      batch across batches, instead of starting a new batch for it.
    split_input_task_func: how to split a task; required with splitting.
    max_execution_batch_size: the largest batch when splitting is enabled
      (ignored otherwise); must not exceed input_batch_size_limit.
  """

  input_batch_size_limit: int = 1000
  batch_timeout_micros: int = 0
  max_enqueued_batches: int = 10
  enable_large_batch_splitting: bool = False
  split_input_task_func: Optional[SplitInputTaskFunc] = None
  max_execution_batch_size: int = 1000

  @property
  def effective_max_execution_batch_size(self) -> int:
    if self.enable_large_batch_splitting:
      return self.max_execution_batch_size
    return self.input_batch_size_limit


def validate_queue_options(options: QueueOptions) -> QueueOptions:
  """Checks `options` with upstream's texts; returns them as the queue uses them.

  Like upstream, max_enqueued_batches == 0 without splitting is quietly
  treated as 1 (old configurations rely on it).

  Raises:
    ServingError: INVALID_ARGUMENT.
  """
  if (not options.enable_large_batch_splitting and
      options.max_enqueued_batches == 0):
    options = dataclasses.replace(options, max_enqueued_batches=1)
  if options.input_batch_size_limit <= 0:
    raise status.invalid_argument(
        "input_batch_size_limit must be positive; was "
        f"{options.input_batch_size_limit}")
  if options.batch_timeout_micros < 0:
    raise status.invalid_argument(
        "batch_timeout_micros must be non-negative; was "
        f"{options.batch_timeout_micros}")
  if options.max_enqueued_batches <= 0:
    raise status.invalid_argument(
        "max_enqueued_batches must be positive; was "
        f"{options.max_enqueued_batches}")
  if options.enable_large_batch_splitting:
    if options.split_input_task_func is None:
      raise status.invalid_argument(
          "split_input_task_func must be specified when "
          "enable_large_batch_splitting is true")
    if options.max_execution_batch_size <= 0:
      raise status.invalid_argument(
          "max_execution_batch_size must be positive; was "
          f"{options.max_execution_batch_size}")
    if options.input_batch_size_limit < options.max_execution_batch_size:
      raise status.invalid_argument(
          "When enable_large_batch_splitting is true, input_batch_size_limit "
          "must be greater than or equal to max_execution_batch_size; "
          f"input_batch_size_limit was {options.input_batch_size_limit}, "
          f"max_execution_batch_size was {options.max_execution_batch_size}")
  return options


class _Queue(batch_scheduler.BatchScheduler[TaskT]):
  """One queue of a SharedBatchScheduler; see the module docstring.

  All state is guarded by the owning scheduler's lock (`self._mu`), so that a
  batch thread's round-robin scan over all queues takes one lock. Methods
  named *_locked, and the public fields, are for the scheduler and must be
  used with that lock held. split_input_task_func also runs under it, so it
  should only slice (views, no copies).
  """

  def __init__(self, scheduler: "SharedBatchScheduler", mu: threading.Lock,
               clock: clock_lib.Clock, options: QueueOptions,
               process_batch_callback: ProcessBatchCallback) -> None:
    self._scheduler = scheduler
    self._mu = mu
    self._clock = clock
    self.options = options
    self._max_exec = options.effective_max_execution_batch_size
    self._process_batch_callback = process_batch_callback
    # Invariant: at least one batch; the last is open, the others closed.
    self.batches: collections.deque[Batch] = collections.deque(
        [Batch()])  # guarded by self._mu
    # When the first task entered the open batch (valid if it is non-empty).
    self._open_batch_start_micros = 0  # guarded by self._mu
    self.num_batches_being_processed = 0  # guarded by self._mu
    self.closed = False  # guarded by self._mu

  # --- BatchScheduler API (request threads) ---

  @property
  def max_task_size(self) -> int:
    return self.options.input_batch_size_limit

  def schedule(self, task: TaskT) -> None:
    """See BatchScheduler.schedule; may also process a batch (module doc)."""
    size = task.size
    if size > self.options.input_batch_size_limit:
      raise status.invalid_argument(
          f"Task size {size} is larger than maximum input batch size "
          f"{self.options.input_batch_size_limit}")
    with self._mu:
      if self.closed:
        raise status.unavailable(
            "The batch scheduling queue to which this task was submitted is "
            "closed")
      self.check_capacity_locked(size)
      open_batch = self.batches[-1]
      remaining = self._max_exec - open_batch.size
      if size <= remaining or not self.options.enable_large_batch_splitting:
        pieces = [task]
      else:
        pieces = self.options.split_input_task_func(task, remaining,
                                                    self._max_exec)
      was_empty = open_batch.empty
      for piece in pieces:
        if self.batches[-1].size + piece.size > self._max_exec:
          self.start_new_batch_locked()
          was_empty = True
        if self.batches[-1].empty:
          self._open_batch_start_micros = self._clock.monotonic_micros()
        self.batches[-1].add_task(piece)
      batch = self._scheduler._claim_for_caller_locked(self)  # pylint: disable=protected-access
      # Wake a batch thread if there is work it can take now, or if the open
      # batch just got its first task (the thread then waits for its timeout).
      open_batch = self.batches[-1]
      if len(self.batches) > 1 or (
          not open_batch.empty and
          (was_empty or self.is_open_batch_ready_locked())):
        self._scheduler._notify_work_locked()  # pylint: disable=protected-access
    if batch is not None:
      self._scheduler._run_batch(self, batch)  # pylint: disable=protected-access

  def num_enqueued_tasks(self) -> int:
    with self._mu:
      return sum(b.num_tasks for b in self.batches)

  def scheduling_capacity(self) -> int:
    with self._mu:
      return self.scheduling_capacity_locked()

  def close(self) -> None:
    """Refuses new tasks, flushes the open batch, waits until all are done."""
    self._scheduler._close_queue(self)  # pylint: disable=protected-access

  # --- internals (called with self._mu held) ---

  def scheduling_capacity_locked(self) -> int:
    free_batches = self.options.max_enqueued_batches - len(self.batches)
    return (free_batches * self._max_exec +
            (self._max_exec - self.batches[-1].size))

  def check_capacity_locked(self, size: int) -> None:
    if self.options.enable_large_batch_splitting:
      capacity = self.scheduling_capacity_locked()
      if size > capacity:
        raise status.unavailable(
            "The batch scheduling queue to which this task was submitted is "
            f"full; task size is {size} but scheduling capacity is only "
            f"{capacity} (num_enqueued_batches={len(self.batches)}, "
            f"max_enqueued_batches={self.options.max_enqueued_batches}, "
            f"open_batch_size={self.batches[-1].size}, "
            f"max_execution_batch_size={self._max_exec})")
      return
    if (self.batches[-1].size + size > self.options.input_batch_size_limit
        and len(self.batches) >= self.options.max_enqueued_batches):
      raise status.unavailable(
          "The batch scheduling queue to which this task was submitted is "
          f"full; currently {len(self.batches)} batches enqueued and "
          f"max_enqueued_batches is {self.options.max_enqueued_batches}")

  def start_new_batch_locked(self) -> None:
    self.batches[-1].close()
    self.batches.append(Batch())

  def open_batch_deadline_locked(self) -> Optional[int]:
    """When the open batch becomes ready by timeout; None if it is empty."""
    if self.batches[-1].empty:
      return None
    return self._open_batch_start_micros + self.options.batch_timeout_micros

  def is_open_batch_ready_locked(self) -> bool:
    open_batch = self.batches[-1]
    if open_batch.empty:
      return False
    return (self.closed or open_batch.size >= self._max_exec or
            self._clock.monotonic_micros() >=
            self.open_batch_deadline_locked())

  def take_batch_locked(self) -> Optional[Batch]:
    """Returns a closed batch to process now, or None."""
    if len(self.batches) == 1 and self.is_open_batch_ready_locked():
      self.start_new_batch_locked()
    if len(self.batches) < 2:
      return None
    self.num_batches_being_processed += 1
    return self.batches.popleft()

  def is_empty_locked(self) -> bool:
    return (self.num_batches_being_processed == 0 and
            len(self.batches) == 1 and self.batches[0].empty)

  def process(self, batch: Batch) -> None:
    """Runs the callback on a batch thread (without the lock)."""
    try:
      self._process_batch_callback(batch)
    except Exception:  # pylint: disable=broad-except
      # The callback owns its tasks' results; an escape here is a bug there.
      logging.exception("process-batch callback raised")


class SharedBatchScheduler:
  """A fixed set of batch threads shared by dynamically added queues.

  Lifecycle: create (threads start), add_queue() any number of times (e.g.
  once per model signature as models load), close each queue when its model
  unloads, stop() at server shutdown (closes what is still open and joins the
  threads).
  """

  Options = SharedBatchSchedulerOptions
  QueueOptions = QueueOptions

  def __init__(self,
               options: Optional[SharedBatchSchedulerOptions] = None) -> None:
    options = options or SharedBatchSchedulerOptions()
    if options.num_batch_threads < 1:
      raise status.invalid_argument(
          "num_batch_threads must be positive; was "
          f"{options.num_batch_threads}")
    self.options = options
    self._clock = options.clock
    self._mu = threading.Lock()
    # Batch threads wait here for work; request threads notify.
    self._work_cv = threading.Condition(self._mu)
    # close() waits here for its queue to drain; batch threads notify.
    self._empty_cv = threading.Condition(self._mu)
    self._queues: list[_Queue] = []  # guarded by self._mu
    self._next_queue = 0  # guarded by self._mu; round-robin position
    self._stopping = False  # guarded by self._mu
    # Batches being processed, by batch threads or callers; at most
    # num_batch_threads.
    self._num_active = 0  # guarded by self._mu
    self._threads = [
        threading.Thread(target=self._thread_logic,
                         name=f"{options.thread_pool_name}_{i}", daemon=True)
        for i in range(options.num_batch_threads)
    ]
    for thread in self._threads:
      thread.start()

  def add_queue(
      self, options: QueueOptions,
      process_batch_callback: ProcessBatchCallback
  ) -> batch_scheduler.BatchScheduler:
    """Adds a queue whose batches go to `process_batch_callback`.

    Raises:
      ServingError: INVALID_ARGUMENT for bad options (upstream's texts);
        UNAVAILABLE once the scheduler is stopping.
    """
    options = validate_queue_options(options)
    queue = _Queue(self, self._mu, self._clock, options,
                   process_batch_callback)
    with self._mu:
      if self._stopping:
        raise status.unavailable("The batch scheduler is stopping")
      self._queues.append(queue)
    return queue

  def num_queues(self) -> int:
    with self._mu:
      return len(self._queues)

  def stop(self) -> None:
    """Closes every queue (processing what they hold) and joins the threads."""
    with self._mu:
      self._stopping = True
      queues = list(self._queues)
    for queue in queues:
      queue.close()
    with self._mu:
      self._work_cv.notify_all()
    for thread in self._threads:
      thread.join()

  # --- internals ---

  def _notify_work_locked(self) -> None:
    self._work_cv.notify()

  def _close_queue(self, queue: _Queue) -> None:
    with self._mu:
      queue.closed = True
      # The open batch is now ready regardless of its timeout.
      self._work_cv.notify_all()
      while not queue.is_empty_locked():
        self._empty_cv.wait()
      if queue in self._queues:
        index = self._queues.index(queue)
        del self._queues[index]
        if index < self._next_queue:
          self._next_queue -= 1
        if self._next_queue >= len(self._queues):
          self._next_queue = 0

  def _next_batch_locked(self) -> tuple[Optional[_Queue], Optional[Batch]]:
    """Round-robin over the queues for a batch that is ready now."""
    num_queues = len(self._queues)
    for i in range(num_queues):
      index = (self._next_queue + i) % num_queues
      queue = self._queues[index]
      batch = queue.take_batch_locked()
      if batch is not None:
        self._next_queue = (index + 1) % num_queues
        return queue, batch
    return None, None

  def _wait_timeout_locked(self) -> Optional[int]:
    """Micros until the earliest open batch times out; None: nothing pending."""
    deadlines = [
        d for d in (q.open_batch_deadline_locked() for q in self._queues)
        if d is not None
    ]
    if not deadlines:
      return None
    return max(0, min(deadlines) - self._clock.monotonic_micros())

  def _claim_for_caller_locked(self, queue: _Queue) -> Optional[Batch]:
    """A ready batch of `queue` for the scheduling thread to run, or None."""
    if (not self.options.run_on_caller_thread or
        self._num_active >= self.options.num_batch_threads):
      return None
    batch = queue.take_batch_locked()
    if batch is not None:
      self._num_active += 1
    return batch

  def _run_batch(self, queue: _Queue, batch: Batch) -> None:
    """Processes a claimed batch (no lock held), then frees its slot."""
    queue.process(batch)
    with self._mu:
      self._num_active -= 1
      queue.num_batches_being_processed -= 1
      if queue.closed:
        self._empty_cv.notify_all()
      # A slot is free again: wake a batch thread if anything is waiting.
      if any(len(q.batches) > 1 or not q.batches[-1].empty
             for q in self._queues):
        self._work_cv.notify()

  def _thread_logic(self) -> None:
    while True:
      with self._mu:
        while True:
          if self._num_active < self.options.num_batch_threads:
            queue, batch = self._next_batch_locked()
            if batch is not None:
              self._num_active += 1
              break
            timeout = self._wait_timeout_locked()
          else:
            timeout = None  # _run_batch notifies when a slot frees up
          if self._stopping and not self._queues:
            return
          self._clock.wait(self._work_cv, timeout)
        # More work may be ready than this thread can take: pass it on.
        if (self._num_active < self.options.num_batch_threads and
            any(len(q.batches) > 1 for q in self._queues)):
          self._work_cv.notify()
      self._run_batch(queue, batch)
