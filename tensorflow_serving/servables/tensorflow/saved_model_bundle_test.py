"""Tests for servables/tensorflow/saved_model_bundle.py.

Loads the TF1, TF2 and Keras half_plus_two exports (written once for the
class) and runs them through the bundle's callables.
"""

import os
import time

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.servables.tensorflow import saved_model_bundle
from tensorflow_serving.servables.tensorflow.test_util import busy_model
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import status


class SavedModelBundleTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base = "bundle_test"
    cls.bundles = half_plus_two.load_test_bundles(
        cls.base, kinds=("tf1", "tf2", "keras"))

  @classmethod
  def tearDownClass(cls):
    for bundle in cls.bundles.values():
      bundle.close()
    super().tearDownClass()

  def _run_default(self, kind, x):
    bundle = self.bundles[kind]
    signature = bundle.signatures["serving_default"]
    feed = (signature.input_names[signature.input_aliases[0]],)
    fetch = (signature.output_names[signature.output_aliases[0]],)
    return bundle.run(feed, [x], fetch)[0]

  @parameterized.parameters("tf1", "tf2", "keras")
  def test_half_plus_two(self, kind):
    y = self._run_default(kind, np.array([[1.0], [4.0]], np.float32))
    np.testing.assert_allclose(y, [[2.5], [4.0]])

  @parameterized.parameters("tf1", "tf2", "keras")
  def test_runs_in_caller_thread_by_default(self, kind):
    bundle = self.bundles[kind]
    self.assertTrue(bundle.run_in_caller_thread)
    # The runs give the same answers that way.
    y = self._run_default(kind, np.array([[1.0], [4.0]], np.float32))
    np.testing.assert_allclose(y, [[2.5], [4.0]])

  @parameterized.parameters("tf1", "tf2")
  def test_feeds_are_not_checked_against_declared_shape(self, kind):
    # Declared [-1,1]; shape [3] goes through as upstream's C++ session does.
    y = self._run_default(kind, np.array([2.0, 3.0, 4.0], np.float32))
    np.testing.assert_allclose(y, [3.0, 3.5, 4.0])

  @parameterized.parameters("tf1", "tf2")
  def test_signatures_resolved(self, kind):
    signatures = self.bundles[kind].signatures
    for name in half_plus_two.SIGNATURES:
      self.assertIn(name, signatures)
    sum_and_diff = signatures["sum_and_diff"]
    self.assertEqual(sum_and_diff.input_aliases, ("a", "b"))
    self.assertEqual(sum_and_diff.output_aliases, ("diff", "sum"))
    self.assertEqual(sum_and_diff.input_dtypes["a"], 1)
    self.assertEqual(sum_and_diff.unsupported, "")

  def test_method_names(self):
    self.assertEqual(
        self.bundles["tf1"].signatures["classify_x_to_y"].method_name,
        "tensorflow/serving/classify")
    self.assertEqual(
        self.bundles["tf2"].signatures["classify_x_to_y"].method_name,
        "tensorflow/serving/predict")

  def test_repeated_fetches(self):
    bundle = self.bundles["tf1"]
    x = np.array([[2.0]], np.float32)
    first, second = bundle.run(("x:0",), [x], ("y:0", "y:0"))
    np.testing.assert_allclose(first, [[3.0]])
    np.testing.assert_allclose(second, [[3.0]])

  def test_tensorflow_error_keeps_code(self):
    with self.assertRaises(status.ServingError) as ctx:
      self._run_default("keras", np.array([1.0], np.float32))
    self.assertEqual(ctx.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertIn("not a matrix", ctx.exception.message)

  def test_unknown_tensor_name(self):
    with self.assertRaises(status.ServingError) as ctx:
      self.bundles["tf1"].run(("nope:0",), [np.zeros(1)], ("y:0",))
    self.assertEqual(ctx.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertIn("nope", ctx.exception.message)

  def test_callable_cache_is_bounded(self):
    bundle = self.bundles["tf1"]
    old_max = saved_model_bundle.MAX_CACHED_CALLABLES
    saved_model_bundle.MAX_CACHED_CALLABLES = len(bundle._runners)
    try:
      before = len(bundle._runners)
      out = bundle.run(("x:0",), [np.array([[0.0]], np.float32)],
                       ("y:0", "y2:0", "y:0"))
      self.assertEqual(len(bundle._runners), before)
      np.testing.assert_allclose(out[1], [[3.0]])
    finally:
      saved_model_bundle.MAX_CACHED_CALLABLES = old_max


class LoadErrorsTest(absltest.TestCase):

  def test_missing_saved_model(self):
    path = self.create_tempdir().full_path
    with self.assertRaises(status.ServingError) as ctx:
      saved_model_bundle.load_saved_model_bundle(path)
    self.assertEqual(ctx.exception.code, status.Code.NOT_FOUND)
    self.assertIn("Could not find SavedModel .pb or .pbtxt at supplied "
                  f"export directory path: {path}", ctx.exception.message)

  def test_unknown_tags(self):
    path = half_plus_two.write_tf1(
        os.path.join(self.create_tempdir().full_path, "1"))
    with self.assertRaises(status.ServingError) as ctx:
      saved_model_bundle.load_saved_model_bundle(path, ("tpu", "serve"))
    self.assertEqual(ctx.exception.code, status.Code.NOT_FOUND)
    self.assertIn("Could not find meta graph def matching supplied tags: "
                  "{ tpu serve }", ctx.exception.message)

  def test_corrupt_saved_model(self):
    path = self.create_tempdir().full_path
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
      f.write(b"\xff\xff not a proto")
    with self.assertRaises(status.ServingError) as ctx:
      saved_model_bundle.load_saved_model_bundle(path)
    self.assertNotEqual(ctx.exception.code, status.Code.OK)

  def test_session_config_is_used(self):
    path = half_plus_two.write_tf1(
        os.path.join(self.create_tempdir().full_path, "1"))
    config = config_pb2.ConfigProto(intra_op_parallelism_threads=1,
                                    inter_op_parallelism_threads=1)
    bundle = saved_model_bundle.load_saved_model_bundle(
        path, session_config=config)
    try:
      self.assertEqual(bundle.session._config, config)  # pylint: disable=protected-access
      # An inter-op pool was asked for: runs use it.
      self.assertFalse(bundle.run_in_caller_thread)
    finally:
      bundle.close()

  def test_runs_in_caller_thread_decision(self):
    decide = saved_model_bundle.runs_in_caller_thread
    self.assertTrue(decide(None))
    self.assertTrue(decide(config_pb2.ConfigProto()))
    self.assertTrue(decide(config_pb2.ConfigProto(
        intra_op_parallelism_threads=4)))
    self.assertTrue(decide(config_pb2.ConfigProto(
        inter_op_parallelism_threads=-1)))
    self.assertFalse(decide(config_pb2.ConfigProto(
        inter_op_parallelism_threads=2)))
    self.assertFalse(decide(config_pb2.ConfigProto(
        use_per_session_threads=True)))
    pools = config_pb2.ConfigProto()
    pools.session_inter_op_thread_pool.add(num_threads=2)
    self.assertFalse(decide(pools))


class RunPathTest(absltest.TestCase):
  """When a call with a deadline may run untimed (saved_model_bundle doc)."""

  def test_timed_until_proven_fast(self):
    path = saved_model_bundle._RunPath()  # pylint: disable=protected-access
    for _ in range(path.PROVEN_RUNS - 1):
      path.timed_run(0.0001)
      # Runs between fast and slow are no evidence either way, and a slow
      # timed run (it may have waited for a core) demotes nothing.
      path.timed_run(path.FAST_RUN_SECONDS)
      path.timed_run(10 * path.SLOW_RUN_SECONDS)
      path.untimed_run(path.FAST_RUN_SECONDS)
      self.assertTrue(path.timed(10.0))
    path.untimed_run(0.0001)
    self.assertFalse(path.timed(10.0))
    # A deadline closer than the margin is timed all the same.
    self.assertTrue(path.timed(path.MIN_UNTIMED_REMAINING_SECONDS / 2))

  def test_one_slow_untimed_run_makes_it_timed_for_good(self):
    path = saved_model_bundle._RunPath()  # pylint: disable=protected-access
    for _ in range(path.PROVEN_RUNS):
      path.timed_run(0.0001)
    path.untimed_run(path.SLOW_RUN_SECONDS)
    for _ in range(10 * path.PROVEN_RUNS):
      path.timed_run(0.0001)
      path.untimed_run(0.0001)
    self.assertTrue(path.timed(1000.0))


def _cpu_seconds() -> float:
  """This process's CPU time, every thread (TensorFlow's pools too)."""
  return time.process_time()


class DeadlineTest(parameterized.TestCase):
  """run(deadline=...) cuts the TensorFlow run off when the deadline passes."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    base = half_plus_two.fresh_dir("bundle_deadline")
    cls.busy_dir = busy_model.write(os.path.join(base, "busy", "1"))
    cls.half_dir = half_plus_two.write_tf1(os.path.join(base, "half", "1"))

  def load(self, path, session_config=None):
    bundle = saved_model_bundle.load_saved_model_bundle(
        path, session_config=session_config)
    self.addCleanup(bundle.close)
    return bundle

  def busy_run(self, bundle, seconds, deadline):
    return bundle.run(("seconds:0",), [np.array([seconds], np.float64)],
                      ("iterations:0",), deadline)

  @parameterized.named_parameters(
      ("caller_thread", None),
      ("inter_op_pool",
       config_pb2.ConfigProto(inter_op_parallelism_threads=2)))
  def test_a_60_s_run_stops_at_its_deadline(self, session_config):
    bundle = self.load(self.busy_dir, session_config)
    self.assertGreater(self.busy_run(bundle, 0.01, None)[0][0], 0)
    start = time.monotonic()
    with self.assertRaises(status.ServingError) as ctx:
      self.busy_run(bundle, 60.0, start + 0.3)
    self.assertEqual(ctx.exception.code, status.Code.DEADLINE_EXCEEDED)
    # Generous: the point is that it did not run for a minute.
    self.assertLess(time.monotonic() - start, 10.0)
    # Nothing keeps running after the call returned.
    cpu = _cpu_seconds()
    time.sleep(1.0)
    self.assertLess(_cpu_seconds() - cpu, 0.5)

  def test_a_deadline_already_passed_runs_nothing(self):
    bundle = self.load(self.busy_dir)
    with self.assertRaises(status.ServingError) as ctx:
      self.busy_run(bundle, 60.0, time.monotonic() - 1)
    self.assertEqual(ctx.exception.code, status.Code.DEADLINE_EXCEEDED)

  def test_a_run_within_its_deadline_answers(self):
    bundle = self.load(self.busy_dir)
    out = self.busy_run(bundle, 0.2, time.monotonic() + 30)
    self.assertGreater(out[0][0], 1)

  def test_timed_and_untimed_runs_answer_alike(self):
    bundle = self.load(self.half_dir)
    x = np.array([[1.0], [4.0]], np.float32)
    untimed_runs = 0
    # Timed at first; once proven fast (a few dozen runs, more when the
    # machine is busy), untimed.
    for _ in range(2000):
      y, y_again = bundle.run(("x:0",), [x], ("y:0", "y:0"),
                              time.monotonic() + 30)
      np.testing.assert_allclose(y, [[2.5], [4.0]])
      np.testing.assert_allclose(y_again, [[2.5], [4.0]])
      path = bundle._runners[(("x:0",), ("y:0", "y:0"))].path  # pylint: disable=protected-access
      if not path.timed(30.0):
        untimed_runs += 1
        if untimed_runs == 3:
          break
    # half_plus_two runs in microseconds: its callable is proven fast.
    self.assertEqual(untimed_runs, 3)
    # Strings go through the timed run too.
    greeting = bundle.run(("name_in:0",), [np.array([b"you"], object)],
                          ("greeting:0",), time.monotonic() + 30)[0]
    self.assertEqual(greeting.tolist(), [b"hi you"])

  def test_a_timed_run_reports_a_wrong_dtype_as_upstream(self):
    bundle = self.load(self.half_dir)
    with self.assertRaises(status.ServingError) as ctx:
      bundle.run(("x:0",), [np.array([[1]], np.int32)], ("y:0",),
                 time.monotonic() + 30)
    self.assertEqual(ctx.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertEqual(ctx.exception.message,
                     "Expects arg[0] to be float but int32 is provided")


if __name__ == "__main__":
  absltest.main()
