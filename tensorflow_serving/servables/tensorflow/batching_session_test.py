"""Tests for BatchingSession: batched results equal unbatched ones.

The model is a numpy function (row-wise, like a real signature), so the tests
check the merging, padding and splitting exactly. Calls block until their
batch ran, so each call runs on its own thread; a gate in the model holds the
single batch thread while the test queues up the calls it wants batched.
"""

import threading
import time

from absl.testing import absltest
import numpy as np

from tensorflow_serving.batching import shared_batch_scheduler as sbs
from tensorflow_serving.util.test_util import fake_clock
from tensorflow_serving.servables.tensorflow import batching_session as bs
from tensorflow_serving.util import status

_WAIT = 10.0

# Small integers, so that every product and sum is exact in float32 and a
# batched result must equal the unbatched one bit for bit, whatever order the
# matrix multiply adds in.
_W = np.arange(-6, 6, dtype=np.float32).reshape(4, 3)


def _model(feeds):
  """Row-wise: y = x @ W + k; s = sum over x's row. Like a softmax layer."""
  x = feeds["x"]
  k = feeds.get("k")
  y = x @ _W
  if k is not None:
    y = y + k.reshape(-1, 1)
  return {"y": y, "s": x.sum(axis=1)}


class _GatedModel:
  """Wraps a model; records each batched call; can hold the first call."""

  def __init__(self, model=_model, fail_if=None):
    self._model = model
    self._fail_if = fail_if
    self.calls = []  # the merged feeds of each run
    self.entered = threading.Semaphore(0)
    self.gate = threading.Event()
    self.gate.set()

  def __call__(self, feeds):
    self.calls.append({k: np.array(v) for k, v in feeds.items()})
    self.entered.release()
    assert self.gate.wait(_WAIT)
    if self._fail_if is not None and self._fail_if(feeds):
      raise status.internal("model failed")
    return self._model(feeds)


class _Call(threading.Thread):
  """One caller of the session, on its own thread."""

  def __init__(self, session, feeds):
    super().__init__(daemon=True)
    self.session = session
    self.feeds = feeds
    self.result = None
    self.error = None
    self.start()

  def run(self):
    try:
      self.result = self.session(self.feeds)
    except Exception as e:  # pylint: disable=broad-except
      self.error = e

  def get(self):
    self.join(_WAIT)
    assert not self.is_alive()
    return self.result


class _DeadlineCall(_Call):
  """A caller whose call carries a deadline."""

  def __init__(self, session, feeds, deadline):
    self.deadline = deadline
    super().__init__(session, feeds)

  def run(self):
    try:
      self.result = self.session(self.feeds, self.deadline)
    except Exception as e:  # pylint: disable=broad-except
      self.error = e


def _rows(n, seed):
  rng = np.random.default_rng(seed)
  return rng.integers(-8, 9, size=(n, 4)).astype(np.float32)


class BatchingSessionTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.scheduler = sbs.SharedBatchScheduler(
        sbs.SharedBatchScheduler.Options(num_batch_threads=1,
                                         clock=fake_clock.FakeClock()))
    self.addCleanup(self.scheduler.stop)

  def _session(self, model, queue_options=None, options=None):
    session = bs.BatchingSession(
        model, self.scheduler, queue_options or sbs.QueueOptions(),
        options or bs.BatchingSessionOptions())
    self.addCleanup(session.close)
    return session

  def _hold_and_queue(self, session, model, feeds_list, blocker_feeds=None):
    """Runs a blocker call, queues feeds_list behind it, then releases."""
    model.gate.clear()
    blocker = _Call(session, blocker_feeds or {"x": _rows(1, 999)})
    self.assertTrue(model.entered.acquire(timeout=_WAIT))
    calls = []
    for feeds in feeds_list:
      calls.append(_Call(session, feeds))
      deadline = time.monotonic() + _WAIT
      while session.num_enqueued_calls() < len(calls):
        self.assertLess(time.monotonic(), deadline)
        time.sleep(0.001)
    model.gate.set()
    blocker.get()
    return calls

  def _assert_same_as_unbatched(self, call):
    expected = _model(call.feeds)
    self.assertIsNone(call.error)
    self.assertEqual(set(call.result), set(expected))
    for name in expected:
      np.testing.assert_array_equal(call.result[name], expected[name])

  def test_each_result_equals_its_unbatched_result(self):
    model = _GatedModel()
    session = self._session(model)
    feeds = [{"x": _rows(n, seed=n)} for n in (1, 3, 2, 5)]
    calls = self._hold_and_queue(session, model, feeds)
    for call in calls:
      call.get()
      self._assert_same_as_unbatched(call)
    # The four calls ran as one batch of 11 rows, after the blocker's.
    self.assertEqual([c["x"].shape[0] for c in model.calls], [1, 11])

  def test_many_concurrent_callers(self):
    scheduler = sbs.SharedBatchScheduler(
        sbs.SharedBatchScheduler.Options(num_batch_threads=2))
    self.addCleanup(scheduler.stop)
    session = bs.BatchingSession(
        _model, scheduler, sbs.QueueOptions(input_batch_size_limit=16,
                                            max_enqueued_batches=1000))
    self.addCleanup(session.close)
    calls = [_Call(session, {"x": _rows(1 + i % 4, seed=i),
                             "k": np.full(1 + i % 4, i, np.float32)})
             for i in range(64)]
    for call in calls:
      call.get()
      self._assert_same_as_unbatched(call)

  def test_pads_to_allowed_batch_size_with_first_row_of_last_call(self):
    model = _GatedModel()
    session = self._session(
        model, sbs.QueueOptions(input_batch_size_limit=8),
        bs.BatchingSessionOptions(allowed_batch_sizes=(2, 4, 8)))
    a, b = _rows(2, seed=1), _rows(3, seed=2)
    calls = self._hold_and_queue(session, model, [{"x": a}, {"x": b}])
    for call in calls:
      call.get()
      self._assert_same_as_unbatched(call)
    self.assertEqual(model.calls[0]["x"].shape, (2, 4))  # blocker 1 -> 2
    merged = model.calls[1]["x"]
    self.assertEqual(merged.shape, (8, 4))  # 5 rows -> 8
    np.testing.assert_array_equal(merged[:2], a)
    np.testing.assert_array_equal(merged[2:5], b)
    np.testing.assert_array_equal(merged[5:], np.repeat(b[:1], 3, axis=0))

  def test_pad_variable_length_inputs(self):
    def model(feeds):
      return {"out": feeds["t"] * 10}

    gated = _GatedModel(model)
    session = self._session(
        gated, options=bs.BatchingSessionOptions(
            pad_variable_length_inputs=True))
    short = np.array([[7, 1]], np.int32)
    long_ = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.int32)
    c1, c2 = self._hold_and_queue(
        session, gated, [{"t": short}, {"t": long_}],
        blocker_feeds={"t": np.zeros((1, 1), np.int32)})
    c1.get()
    c2.get()
    merged = gated.calls[1]["t"]
    np.testing.assert_array_equal(
        merged, [[7, 1, 7, 7], [1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(c1.result["out"], [[70, 10, 70, 70]])
    np.testing.assert_array_equal(c2.result["out"], long_ * 10)

  def test_mismatched_shapes_without_padding_run_separately(self):
    def model(feeds):
      return {"out": feeds["t"].sum(axis=1)}

    gated = _GatedModel(model)
    session = self._session(gated)
    calls = self._hold_and_queue(
        session, gated, [{"t": np.ones((1, 2), np.float32)},
                         {"t": np.ones((2, 3), np.float32)},
                         {"t": np.ones((1, 2), np.float32)}],
        blocker_feeds={"t": np.ones((1, 1), np.float32)})
    results = [c.get() for c in calls]
    np.testing.assert_array_equal(results[0]["out"], [2])
    np.testing.assert_array_equal(results[1]["out"], [3, 3])
    np.testing.assert_array_equal(results[2]["out"], [2])
    self.assertEqual(sorted(c["t"].shape for c in gated.calls[1:]),
                     [(2, 2), (2, 3)])

  def test_large_batch_splitting(self):
    model = _GatedModel()
    session = self._session(
        model, sbs.QueueOptions(input_batch_size_limit=10,
                                enable_large_batch_splitting=True,
                                max_execution_batch_size=3,
                                max_enqueued_batches=10))
    big, small = _rows(7, seed=7), _rows(1, seed=8)
    calls = self._hold_and_queue(session, model, [{"x": small}, {"x": big}])
    for call in calls:
      call.get()
      self._assert_same_as_unbatched(call)
    # small + 2 rows of big, then 3, then 2.
    self.assertEqual([c["x"].shape[0] for c in model.calls[1:]], [3, 3, 2])

  def test_failed_part_fails_the_whole_split_call(self):
    model = _GatedModel(fail_if=lambda feeds: feeds["x"].shape[0] == 2)
    session = self._session(
        model, sbs.QueueOptions(input_batch_size_limit=10,
                                enable_large_batch_splitting=True,
                                max_execution_batch_size=4))
    call = _Call(session, {"x": _rows(6, seed=1)})  # parts of 4 and 2
    call.get()
    self.assertIsInstance(call.error, status.ServingError)
    self.assertEqual(call.error.message, "model failed")

  def test_failing_batch_fails_only_its_own_calls(self):
    model = _GatedModel(fail_if=lambda feeds: (feeds["x"] > 100).any())
    session = self._session(
        model, sbs.QueueOptions(input_batch_size_limit=2,
                                max_enqueued_batches=10))
    poison = np.full((1, 4), 1000, np.float32)
    calls = self._hold_and_queue(session, model, [
        {"x": _rows(1, 1)}, {"x": _rows(1, 2)},   # batch A
        {"x": poison}, {"x": _rows(1, 3)},        # batch B fails
        {"x": _rows(2, 4)},                       # batch C
    ])
    for call in calls:
      call.get()
    for i in (0, 1, 4):
      self._assert_same_as_unbatched(calls[i])
    for i in (2, 3):
      self.assertIsNone(calls[i].result)
      self.assertEqual(calls[i].error.code, status.Code.INTERNAL)

  def test_full_queue_answers_unavailable_at_once(self):
    model = _GatedModel()
    session = self._session(
        model, sbs.QueueOptions(input_batch_size_limit=1,
                                max_enqueued_batches=2))
    model.gate.clear()
    blocker = _Call(session, {"x": _rows(1, 1)})
    self.assertTrue(model.entered.acquire(timeout=_WAIT))
    queued = self._queue_without_release(session, 2)
    with self.assertRaises(status.ServingError) as ctx:
      session({"x": _rows(1, 5)})
    self.assertEqual(ctx.exception.code, status.Code.UNAVAILABLE)
    self.assertIn("The batch scheduling queue to which this task was "
                  "submitted is full", ctx.exception.message)
    model.gate.set()
    blocker.get()
    for call in queued:
      call.get()
      self._assert_same_as_unbatched(call)

  def _queue_without_release(self, session, n):
    calls = []
    for i in range(n):
      calls.append(_Call(session, {"x": _rows(1, 100 + i)}))
      deadline = time.monotonic() + _WAIT
      while session.num_enqueued_calls() < i + 1:
        self.assertLess(time.monotonic(), deadline)
        time.sleep(0.001)
    return calls

  def test_unbatchable_inputs_are_refused_before_queueing(self):
    session = self._session(_GatedModel())
    cases = [
        ({}, "Batching Run() must have at least one input tensor"),
        ({"x": np.float32(1)},
         "Batching Run() input tensors must have at least one dimension"),
        ({"x": _rows(2, 1), "k": np.zeros(3, np.float32)},
         "Batching Run() input tensors must have equal 0th-dimension size"),
    ]
    for feeds, message in cases:
      with self.assertRaises(status.ServingError) as ctx:
        session(feeds)
      self.assertEqual(ctx.exception.code, status.Code.INVALID_ARGUMENT)
      self.assertEqual(ctx.exception.message, message)

  def test_call_larger_than_max_batch_size(self):
    session = self._session(_GatedModel(),
                            sbs.QueueOptions(input_batch_size_limit=2))
    with self.assertRaises(status.ServingError) as ctx:
      session({"x": _rows(3, 1)})
    self.assertEqual(ctx.exception.message,
                     "Task size 3 is larger than maximum input batch size 2")

  def test_scalar_output_fails_precondition(self):
    session = self._session(lambda feeds: {"total": np.float32(1)})
    with self.assertRaises(status.ServingError) as ctx:
      session({"x": _rows(1, 1)})
    self.assertEqual(ctx.exception.code, status.Code.FAILED_PRECONDITION)
    self.assertEqual(ctx.exception.message,
                     "Batched output tensor has 0 dimensions")

  def test_expired_call_is_dropped_before_its_batch_runs(self):
    model = _GatedModel()
    session = self._session(model)
    expired = {"x": _rows(2, seed=1)}
    kept = {"x": _rows(3, seed=2)}
    # The expired call's deadline passed while it waited (here: at once).
    model.gate.clear()
    blocker = _Call(session, {"x": _rows(1, 999)})
    self.assertTrue(model.entered.acquire(timeout=_WAIT))
    late = _DeadlineCall(session, expired, time.monotonic() - 1)
    on_time = _Call(session, kept)
    deadline = time.monotonic() + _WAIT
    while session.num_enqueued_calls() < 2:
      self.assertLess(time.monotonic(), deadline)
      time.sleep(0.001)
    model.gate.set()
    blocker.get()
    late.get()
    self.assertIsInstance(late.error, status.ServingError)
    self.assertEqual(late.error.code, status.Code.RESOURCE_EXHAUSTED)
    self.assertEqual(late.error.message,
                     "Run() timeout exceeded while waiting in batching queue")
    on_time.get()
    self._assert_same_as_unbatched(on_time)
    # The batch after the blocker's held only the call still on time.
    self.assertEqual([c["x"].shape[0] for c in model.calls], [1, 3])

  def test_batch_runs_with_the_latest_deadline_of_its_calls(self):
    seen = []
    gate = threading.Event()
    entered = threading.Semaphore(0)

    def model(feeds, deadline=None):
      seen.append((feeds["x"].shape[0], deadline))
      entered.release()
      assert gate.wait(_WAIT)
      return _model(feeds)

    session = self._session(model)
    blocker = _DeadlineCall(session, {"x": _rows(1, 9)}, None)
    self.assertTrue(entered.acquire(timeout=_WAIT))
    now = time.monotonic()
    calls = [_DeadlineCall(session, {"x": _rows(1, i)}, now + 100 + i)
             for i in range(3)]
    deadline = time.monotonic() + _WAIT
    while session.num_enqueued_calls() < 3:
      self.assertLess(time.monotonic(), deadline)
      time.sleep(0.001)
    gate.set()
    blocker.get()
    for call in calls:
      call.get()
      self.assertIsNone(call.error)
    # No deadline: none given; then the latest of the three.
    self.assertEqual(seen, [(1, None), (3, now + 102)])

  def test_closed_session_refuses_calls(self):
    session = bs.BatchingSession(_model, self.scheduler, sbs.QueueOptions())
    session.close()
    with self.assertRaises(status.ServingError) as ctx:
      session({"x": _rows(1, 1)})
    self.assertEqual(ctx.exception.code, status.Code.UNAVAILABLE)


class BatchingRunnerTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.scheduler = sbs.SharedBatchScheduler(
        sbs.SharedBatchScheduler.Options(num_batch_threads=2))
    self.addCleanup(self.scheduler.stop)
    self.runs = []

  def _bundle_run(self, feed_names, feeds, fetch_names):
    """Like SavedModelBundle.run: tensor names and arrays in, arrays out."""
    self.runs.append((feed_names, fetch_names, feeds[0].shape[0]))
    values = _model(dict(zip(("x",), feeds)))
    return [values[{"y:0": "y", "s:0": "s"}[n]] for n in fetch_names]

  def test_results_match_and_duplicate_fetches_are_kept(self):
    runner = bs.BatchingRunner(self._bundle_run, self.scheduler,
                               sbs.QueueOptions())
    self.addCleanup(runner.close)
    x = _rows(3, seed=3)
    out = runner(("x:0",), [x], ("s:0", "y:0", "s:0"))
    expected = _model({"x": x})
    self.assertLen(out, 3)
    np.testing.assert_array_equal(out[0], expected["s"])
    np.testing.assert_array_equal(out[1], expected["y"])
    np.testing.assert_array_equal(out[2], expected["s"])
    # The wrapped run was asked for each tensor once.
    self.assertEqual(self.runs, [(("x:0",), ("s:0", "y:0"), 3)])

  def test_one_queue_per_feed_fetch_set_and_bypass_beyond_the_cap(self):
    runner = bs.BatchingRunner(self._bundle_run, self.scheduler,
                               sbs.QueueOptions(input_batch_size_limit=4),
                               max_queues=2)
    self.addCleanup(runner.close)
    x = _rows(6, seed=1)  # larger than a batch: refused when batched
    for fetches in (("y:0",), ("s:0",)):
      with self.assertRaises(status.ServingError):
        runner(("x:0",), [x], fetches)
    self.assertEqual(self.scheduler.num_queues(), 2)
    # A third set is past the cap: run directly, unbatched.
    out = runner(("x:0",), [x], ("y:0", "s:0"))
    np.testing.assert_array_equal(out[0], _model({"x": x})["y"])
    self.assertEqual(self.scheduler.num_queues(), 2)

  def test_concurrent_callers(self):
    runner = bs.BatchingRunner(self._bundle_run, self.scheduler,
                               sbs.QueueOptions(input_batch_size_limit=32,
                                                max_enqueued_batches=100))
    self.addCleanup(runner.close)
    results = {}

    def call(i):
      x = _rows(1 + i % 3, seed=i)
      results[i] = (x, runner(("x:0",), [x], ("y:0",))[0])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
    for t in threads:
      t.start()
    for t in threads:
      t.join(_WAIT)
    self.assertLen(results, 40)
    for x, y in results.values():
      np.testing.assert_array_equal(y, _model({"x": x})["y"])

  def test_closed_runner_refuses_new_sets(self):
    runner = bs.BatchingRunner(self._bundle_run, self.scheduler,
                               sbs.QueueOptions())
    runner.close()
    with self.assertRaises(status.ServingError) as ctx:
      runner(("x:0",), [_rows(1, 1)], ("y:0",))
    self.assertEqual(ctx.exception.code, status.Code.UNAVAILABLE)


class HelpersTest(absltest.TestCase):

  def test_round_to_lowest_allowed_batch_size(self):
    self.assertEqual(bs.round_to_lowest_allowed_batch_size([], 5), 5)
    self.assertEqual(bs.round_to_lowest_allowed_batch_size([2, 4, 8], 1), 2)
    self.assertEqual(bs.round_to_lowest_allowed_batch_size([2, 4, 8], 4), 4)
    self.assertEqual(bs.round_to_lowest_allowed_batch_size([2, 4, 8], 5), 8)

  def test_validate_allowed_batch_sizes(self):
    bs.validate_allowed_batch_sizes([], 7)
    bs.validate_allowed_batch_sizes([1, 4, 7], 7)
    # As upstream's server: only the last entry is checked.
    bs.validate_allowed_batch_sizes([1, 8, 4], 4)
    with self.assertRaises(status.ServingError) as ctx:
      bs.validate_allowed_batch_sizes([2, 4], 8)
    self.assertEqual(
        ctx.exception.message,
        "Last entry in allowed_batch_sizes must match max_batch_size; last "
        "entry was 4; expected 8")

  def test_add_padding(self):
    t = np.array([[[1, 2]], [[3, 4]]], np.int64)  # shape [2, 1, 2]
    padded = bs.add_padding(t, [9, 2, 3])
    self.assertEqual(padded.shape, (2, 2, 3))
    np.testing.assert_array_equal(padded[1], [[3, 4, 1], [1, 1, 1]])
    self.assertIs(bs.add_padding(t, [2, 1, 2]), t)
    strings = np.array([[b"a"], [b"b"]], object)
    np.testing.assert_array_equal(
        bs.add_padding(strings, [2, 2]), [[b"a", b"a"], [b"b", b"a"]])
    with self.assertRaises(status.ServingError) as ctx:
      bs.add_padding(np.zeros((1, 0), np.float32), [1, 2])
    self.assertEqual(ctx.exception.message,
                     "Got empty tensor in batch of non-empty tensors.")
    with self.assertRaises(status.ServingError) as ctx:
      bs.add_padding(np.zeros([1] * 7), [1] * 7)
    self.assertEqual(ctx.exception.message,
                     "Only tensors with rank from 1 to 6 can be padded.")

  def test_split_outputs_checks_batch_dimension(self):
    with self.assertRaises(status.ServingError) as ctx:
      bs.split_outputs({"y": np.zeros((4, 2))}, [1, 2], padding_size=0)
    self.assertEqual(ctx.exception.code, status.Code.FAILED_PRECONDITION)
    parts = bs.split_outputs({"y": np.arange(8).reshape(4, 2)}, [1, 2], 1)
    np.testing.assert_array_equal(parts[0]["y"], [[0, 1]])
    np.testing.assert_array_equal(parts[1]["y"], [[2, 3], [4, 5]])


if __name__ == "__main__":
  absltest.main()
