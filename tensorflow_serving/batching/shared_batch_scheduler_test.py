"""Tests for SharedBatchScheduler: batch formation, bounds, splitting, close.

Time is a FakeClock; the only real waiting is for batch threads to react to
events the test causes, bounded by _WAIT so a bug fails instead of hanging.
"""

import threading
from typing import Optional

from absl.testing import absltest

from tensorflow_serving.batching import batch_scheduler
from tensorflow_serving.batching import shared_batch_scheduler as sbs
from tensorflow_serving.util.test_util import fake_clock
from tensorflow_serving.util import status

_WAIT = 10.0  # seconds; generous upper bound for thread hand-offs


class _Task(batch_scheduler.BatchTask):

  def __init__(self, size: int, label: str = "", part: int = 0) -> None:
    self._size = size
    self.label = label
    self.part = part

  @property
  def size(self) -> int:
    return self._size

  def __repr__(self) -> str:
    return f"{self.label}:{self._size}"


def _split(task: _Task, first_size: int, max_size: int) -> list[_Task]:
  sizes = [first_size] if first_size > 0 else []
  left = task.size - first_size
  while left > 0:
    sizes.append(min(left, max_size))
    left -= sizes[-1]
  return [_Task(s, task.label, i) for i, s in enumerate(sizes)]


class _Recorder:
  """A process-batch callback that records batches and can hold a thread."""

  def __init__(self) -> None:
    self.mu = threading.Condition()
    self.batches: list[list[_Task]] = []  # guarded by self.mu
    self.entered = threading.Semaphore(0)
    self.gate: Optional[threading.Event] = None

  def __call__(self, batch: batch_scheduler.Batch) -> None:
    assert batch.closed
    self.entered.release()
    if self.gate is not None:
      assert self.gate.wait(_WAIT)
    with self.mu:
      self.batches.append(list(batch.tasks))
      self.mu.notify_all()

  def wait_for_batches(self, n: int) -> list[list[_Task]]:
    with self.mu:
      assert self.mu.wait_for(lambda: len(self.batches) >= n, _WAIT), (
          self.batches)
      return list(self.batches)

  def sizes(self) -> list[list[int]]:
    with self.mu:
      return [[t.size for t in b] for b in self.batches]


class SharedBatchSchedulerTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.clock = fake_clock.FakeClock()

  def _scheduler(self, threads: int = 1,
                 run_on_caller_thread: bool = False
                 ) -> sbs.SharedBatchScheduler:
    # Most tests hold the batch thread in the callback while they queue
    # tasks, so by default the test's own thread must never run a batch.
    scheduler = sbs.SharedBatchScheduler(
        sbs.SharedBatchScheduler.Options(
            num_batch_threads=threads, clock=self.clock,
            run_on_caller_thread=run_on_caller_thread))
    self.addCleanup(scheduler.stop)
    return scheduler

  def test_timeout_zero_takes_whatever_is_queued(self):
    scheduler = self._scheduler()
    rec = _Recorder()
    rec.gate = threading.Event()
    queue = scheduler.add_queue(
        sbs.QueueOptions(input_batch_size_limit=10), rec)
    queue.schedule(_Task(1, "a"))
    self.assertTrue(rec.entered.acquire(timeout=_WAIT))  # thread busy with a
    for label in "bcd":
      queue.schedule(_Task(2, label))
    self.assertEqual(queue.num_enqueued_tasks(), 3)
    rec.gate.set()
    batches = rec.wait_for_batches(2)
    self.assertEqual([[t.label for t in b] for b in batches],
                     [["a"], ["b", "c", "d"]])

  def test_full_batch_is_closed_and_next_one_opened(self):
    scheduler = self._scheduler()
    rec = _Recorder()
    rec.gate = threading.Event()
    queue = scheduler.add_queue(
        sbs.QueueOptions(input_batch_size_limit=4, max_enqueued_batches=5),
        rec)
    queue.schedule(_Task(1, "first"))
    self.assertTrue(rec.entered.acquire(timeout=_WAIT))
    for size in (3, 1, 2, 2, 4):
      queue.schedule(_Task(size))
    rec.gate.set()
    rec.wait_for_batches(4)
    self.assertEqual(rec.sizes(), [[1], [3, 1], [2, 2], [4]])

  def test_timeout_holds_open_batch_until_it_expires(self):
    scheduler = self._scheduler()
    rec = _Recorder()
    queue = scheduler.add_queue(
        sbs.QueueOptions(input_batch_size_limit=10,
                         batch_timeout_micros=1000), rec)
    queue.schedule(_Task(1))
    queue.schedule(_Task(2))
    self.clock.advance(999)
    self.assertEqual(queue.num_enqueued_tasks(), 2)
    self.clock.advance(1)
    rec.wait_for_batches(1)
    self.assertEqual(rec.sizes(), [[1, 2]])

  def test_full_batch_does_not_wait_for_timeout(self):
    scheduler = self._scheduler()
    rec = _Recorder()
    queue = scheduler.add_queue(
        sbs.QueueOptions(input_batch_size_limit=3,
                         batch_timeout_micros=10**9), rec)
    queue.schedule(_Task(1))
    queue.schedule(_Task(2))
    rec.wait_for_batches(1)
    self.assertEqual(rec.sizes(), [[1, 2]])

  def test_full_queue_is_refused_at_once(self):
    scheduler = self._scheduler()
    rec = _Recorder()
    rec.gate = threading.Event()
    queue = scheduler.add_queue(
        sbs.QueueOptions(input_batch_size_limit=2, max_enqueued_batches=2),
        rec)
    queue.schedule(_Task(1, "running"))
    self.assertTrue(rec.entered.acquire(timeout=_WAIT))
    queue.schedule(_Task(2, "closed"))   # fills batch 1
    queue.schedule(_Task(2, "open"))     # batch 2, the open one
    with self.assertRaises(status.ServingError) as ctx:
      queue.schedule(_Task(1, "refused"))
    self.assertEqual(ctx.exception.code, status.Code.UNAVAILABLE)
    self.assertEqual(
        ctx.exception.message,
        "The batch scheduling queue to which this task was submitted is full; "
        "currently 2 batches enqueued and max_enqueued_batches is 2")
    self.assertEqual(queue.scheduling_capacity(), 0)
    rec.gate.set()
    rec.wait_for_batches(3)
    self.assertNotIn("refused",
                     [t.label for b in rec.wait_for_batches(3) for t in b])
    # Once drained, the queue accepts again.
    queue.schedule(_Task(1, "later"))
    self.assertEqual(rec.wait_for_batches(4)[-1][0].label, "later")

  def test_task_larger_than_limit_is_invalid(self):
    scheduler = self._scheduler()
    queue = scheduler.add_queue(
        sbs.QueueOptions(input_batch_size_limit=8), _Recorder())
    with self.assertRaises(status.ServingError) as ctx:
      queue.schedule(_Task(9))
    self.assertEqual(ctx.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertEqual(ctx.exception.message,
                     "Task size 9 is larger than maximum input batch size 8")
    self.assertEqual(queue.max_task_size, 8)

  def test_large_batch_splitting_fills_open_batch_then_new_ones(self):
    scheduler = self._scheduler()
    rec = _Recorder()
    rec.gate = threading.Event()
    queue = scheduler.add_queue(
        sbs.QueueOptions(input_batch_size_limit=20,
                         enable_large_batch_splitting=True,
                         max_execution_batch_size=4,
                         max_enqueued_batches=4,
                         split_input_task_func=_split), rec)
    queue.schedule(_Task(1, "first"))
    self.assertTrue(rec.entered.acquire(timeout=_WAIT))
    queue.schedule(_Task(1, "small"))
    queue.schedule(_Task(9, "big"))   # 3 into the open batch, then 4 and 2
    rec.gate.set()
    batches = rec.wait_for_batches(4)
    self.assertEqual([[(t.label, t.size, t.part) for t in b] for b in batches],
                     [[("first", 1, 0)],
                      [("small", 1, 0), ("big", 3, 0)],
                      [("big", 4, 1)],
                      [("big", 2, 2)]])

  def test_splitting_refuses_task_beyond_capacity(self):
    scheduler = self._scheduler()
    rec = _Recorder()
    rec.gate = threading.Event()
    queue = scheduler.add_queue(
        sbs.QueueOptions(input_batch_size_limit=20,
                         enable_large_batch_splitting=True,
                         max_execution_batch_size=4,
                         max_enqueued_batches=2,
                         split_input_task_func=_split), rec)
    queue.schedule(_Task(1))
    self.assertTrue(rec.entered.acquire(timeout=_WAIT))
    queue.schedule(_Task(3))
    self.assertEqual(queue.scheduling_capacity(), 5)
    with self.assertRaises(status.ServingError) as ctx:
      queue.schedule(_Task(6))
    self.assertEqual(ctx.exception.code, status.Code.UNAVAILABLE)
    self.assertStartsWith(
        ctx.exception.message,
        "The batch scheduling queue to which this task was submitted is full; "
        "task size is 6 but scheduling capacity is only 5")
    queue.schedule(_Task(5))
    rec.gate.set()
    rec.wait_for_batches(3)
    self.assertEqual(rec.sizes(), [[1], [3, 1], [4]])

  def test_queues_are_separate_and_served_round_robin(self):
    scheduler = self._scheduler()
    rec_a, rec_b = _Recorder(), _Recorder()
    rec_a.gate = threading.Event()
    order = []

    def via(rec, name):
      def callback(batch):
        order.append(name)
        rec(batch)
      return callback

    options = sbs.QueueOptions(input_batch_size_limit=1,
                               max_enqueued_batches=5)
    qa = scheduler.add_queue(options, via(rec_a, "a"))
    qb = scheduler.add_queue(options, via(rec_b, "b"))
    self.assertEqual(scheduler.num_queues(), 2)
    qa.schedule(_Task(1, "a0"))
    self.assertTrue(rec_a.entered.acquire(timeout=_WAIT))
    qa.schedule(_Task(1, "a1"))
    qa.schedule(_Task(1, "a2"))
    qb.schedule(_Task(1, "b0"))
    qb.schedule(_Task(1, "b1"))
    rec_a.gate.set()
    rec_a.wait_for_batches(3)
    rec_b.wait_for_batches(2)
    self.assertEqual(order, ["a", "b", "a", "b", "a"])
    self.assertEqual([[t.label for t in b] for b in rec_a.batches],
                     [["a0"], ["a1"], ["a2"]])
    self.assertEqual([[t.label for t in b] for b in rec_b.batches],
                     [["b0"], ["b1"]])

  def test_close_flushes_open_batch_and_refuses_new_tasks(self):
    scheduler = self._scheduler()
    rec = _Recorder()
    queue = scheduler.add_queue(
        sbs.QueueOptions(input_batch_size_limit=10,
                         batch_timeout_micros=10**9), rec)
    queue.schedule(_Task(1))
    queue.schedule(_Task(1))
    queue.close()  # returns only once the batch was processed
    self.assertEqual(rec.sizes(), [[1, 1]])
    self.assertEqual(scheduler.num_queues(), 0)
    with self.assertRaises(status.ServingError) as ctx:
      queue.schedule(_Task(1))
    self.assertEqual(ctx.exception.code, status.Code.UNAVAILABLE)

  def test_raising_callback_does_not_stop_the_threads(self):
    scheduler = self._scheduler(run_on_caller_thread=True)
    calls = []

    def callback(batch):
      calls.append(batch.size)
      if len(calls) == 1:
        raise RuntimeError("boom")

    queue = scheduler.add_queue(sbs.QueueOptions(), callback)
    queue.schedule(_Task(1))
    queue.close()
    queue2 = scheduler.add_queue(sbs.QueueOptions(), callback)
    queue2.schedule(_Task(2))
    queue2.close()
    self.assertEqual(calls, [1, 2])

  def test_many_threads_process_everything_exactly_once(self):
    for caller_runs in (False, True):
      with self.subTest(run_on_caller_thread=caller_runs):
        scheduler = self._scheduler(threads=2,
                                    run_on_caller_thread=caller_runs)
        rec = _Recorder()
        active = [0, 0]  # now, most ever
        mu = threading.Lock()

        def callback(batch, rec=rec, active=active, mu=mu):
          with mu:
            active[0] += 1
            active[1] = max(active)
          rec(batch)
          with mu:
            active[0] -= 1

        queue = scheduler.add_queue(
            sbs.QueueOptions(input_batch_size_limit=7,
                             max_enqueued_batches=10**6), callback)
        producers = [
            threading.Thread(target=lambda p=p, q=queue: [
                q.schedule(_Task(1 + (i % 3), f"{p}-{i}")) for i in range(200)
            ]) for p in range(4)
        ]
        for t in producers:
          t.start()
        for t in producers:
          t.join()
        queue.close()
        labels = [t.label for b in rec.batches for t in b]
        self.assertLen(labels, 800)
        self.assertLen(set(labels), 800)
        self.assertTrue(all(sum(s) <= 7 for s in rec.sizes()))
        self.assertLessEqual(active[1], 2)

  def test_caller_runs_ready_batch_when_a_slot_is_free(self):
    scheduler = self._scheduler(threads=1, run_on_caller_thread=True)
    threads = []

    def callback(batch):
      threads.append((threading.current_thread(), batch.size))

    queue = scheduler.add_queue(sbs.QueueOptions(), callback)
    queue.schedule(_Task(3))  # processed before schedule() returns
    self.assertEqual(threads, [(threading.current_thread(), 3)])

  def test_caller_waits_in_queue_while_slots_are_busy(self):
    scheduler = self._scheduler(threads=1, run_on_caller_thread=True)
    rec = _Recorder()
    rec.gate = threading.Event()
    queue = scheduler.add_queue(
        sbs.QueueOptions(input_batch_size_limit=10), rec)
    first = threading.Thread(target=queue.schedule, args=(_Task(1, "a"),))
    first.start()  # runs its batch itself and blocks in the callback
    self.assertTrue(rec.entered.acquire(timeout=_WAIT))
    queue.schedule(_Task(2, "b"))  # the only slot is busy: just queued
    queue.schedule(_Task(3, "c"))
    self.assertEqual(queue.num_enqueued_tasks(), 2)
    rec.gate.set()
    first.join(_WAIT)
    # The freed slot goes to a batch thread, which takes both as one batch.
    self.assertEqual([[t.label for t in b] for b in rec.wait_for_batches(2)],
                     [["a"], ["b", "c"]])

  def test_caller_does_not_run_batches_that_wait_for_a_timeout(self):
    scheduler = self._scheduler(threads=1, run_on_caller_thread=True)
    rec = _Recorder()
    queue = scheduler.add_queue(
        sbs.QueueOptions(input_batch_size_limit=10,
                         batch_timeout_micros=100), rec)
    queue.schedule(_Task(1))
    self.assertEqual(queue.num_enqueued_tasks(), 1)
    self.clock.advance(100)
    self.assertEqual(rec.wait_for_batches(1), [rec.batches[0]])

  def test_stop_processes_pending_tasks(self):
    scheduler = sbs.SharedBatchScheduler(
        sbs.SharedBatchScheduler.Options(num_batch_threads=2,
                                         clock=self.clock))
    rec = _Recorder()
    queue = scheduler.add_queue(
        sbs.QueueOptions(batch_timeout_micros=10**9), rec)
    queue.schedule(_Task(3))
    scheduler.stop()
    self.assertEqual(rec.sizes(), [[3]])
    with self.assertRaises(status.ServingError):
      scheduler.add_queue(sbs.QueueOptions(), rec)


class OptionsTest(absltest.TestCase):

  def _assert_invalid(self, options, message):
    with self.assertRaises(status.ServingError) as ctx:
      sbs.validate_queue_options(options)
    self.assertEqual(ctx.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertEqual(ctx.exception.message, message)

  def test_defaults_match_upstream(self):
    options = sbs.QueueOptions()
    self.assertEqual(options.input_batch_size_limit, 1000)
    self.assertEqual(options.batch_timeout_micros, 0)
    self.assertEqual(options.max_enqueued_batches, 10)
    self.assertFalse(options.enable_large_batch_splitting)
    self.assertEqual(options.max_execution_batch_size, 1000)
    self.assertGreaterEqual(sbs.SharedBatchSchedulerOptions().num_batch_threads,
                            1)

  def test_validation_texts(self):
    self._assert_invalid(sbs.QueueOptions(input_batch_size_limit=0),
                         "input_batch_size_limit must be positive; was 0")
    self._assert_invalid(sbs.QueueOptions(batch_timeout_micros=-1),
                         "batch_timeout_micros must be non-negative; was -1")
    self._assert_invalid(
        sbs.QueueOptions(max_enqueued_batches=-3),
        "max_enqueued_batches must be positive; was -3")
    self._assert_invalid(
        sbs.QueueOptions(enable_large_batch_splitting=True),
        "split_input_task_func must be specified when "
        "enable_large_batch_splitting is true")
    with self.assertRaises(status.ServingError) as ctx:
      sbs.validate_queue_options(
          sbs.QueueOptions(input_batch_size_limit=10,
                           enable_large_batch_splitting=True,
                           max_execution_batch_size=20,
                           split_input_task_func=_split))
    self.assertStartsWith(
        ctx.exception.message,
        "When enable_large_batch_splitting is true, input_batch_size_limit "
        "must be greater than or equal to max_execution_batch_size")

  def test_zero_enqueued_batches_without_splitting_means_one(self):
    options = sbs.validate_queue_options(
        sbs.QueueOptions(max_enqueued_batches=0))
    self.assertEqual(options.max_enqueued_batches, 1)

  def test_num_batch_threads_must_be_positive(self):
    with self.assertRaises(status.ServingError) as ctx:
      sbs.SharedBatchScheduler(
          sbs.SharedBatchScheduler.Options(num_batch_threads=0))
    self.assertEqual(ctx.exception.message,
                     "num_batch_threads must be positive; was 0")


if __name__ == "__main__":
  absltest.main()
