"""Tests for batching_parameters_util: defaults, validation, file reading."""

import os

from absl.testing import absltest
import numpy as np

from tensorflow_serving.batching import shared_batch_scheduler as sbs
from tensorflow_serving.servables.tensorflow import batching_parameters_util as bpu
from tensorflow_serving.util import status


class BatchingParametersUtilTest(absltest.TestCase):

  def test_defaults_without_a_file(self):
    params = bpu.default_batching_parameters()
    self.assertEqual(params.thread_pool_name.value,
                     "model_server_batch_threads")
    sched = bpu.scheduler_options(params)
    self.assertEqual(sched.thread_pool_name, "model_server_batch_threads")
    self.assertEqual(sched.num_batch_threads, len(os.sched_getaffinity(0)))
    queue = bpu.queue_options(params)
    self.assertEqual(queue.input_batch_size_limit, 1000)
    self.assertEqual(queue.batch_timeout_micros, 0)
    self.assertEqual(queue.max_enqueued_batches, 10)
    self.assertFalse(queue.enable_large_batch_splitting)
    self.assertEqual(queue.max_execution_batch_size, 1000)
    session = bpu.session_options(params)
    self.assertEqual(session.allowed_batch_sizes, ())
    self.assertFalse(session.pad_variable_length_inputs)

  def test_every_field_is_read(self):
    params = bpu.parse_batching_parameters("""
        max_batch_size { value: 128 }
        batch_timeout_micros { value: 500 }
        max_enqueued_batches { value: 1000000 }
        num_batch_threads { value: 8 }
        thread_pool_name { value: "pool" }
        allowed_batch_sizes: [32, 64, 128]
        pad_variable_length_inputs: true
        enable_large_batch_splitting { value: true }
        max_execution_batch_size { value: 64 }
    """)
    sched = bpu.scheduler_options(params)
    self.assertEqual((sched.num_batch_threads, sched.thread_pool_name),
                     (8, "pool"))
    queue = bpu.queue_options(params)
    self.assertEqual(
        (queue.input_batch_size_limit, queue.batch_timeout_micros,
         queue.max_enqueued_batches, queue.enable_large_batch_splitting,
         queue.max_execution_batch_size),
        (128, 500, 1000000, True, 64))
    session = bpu.session_options(params)
    self.assertEqual(session.allowed_batch_sizes, (32, 64, 128))
    self.assertTrue(session.pad_variable_length_inputs)
    bpu.validate_batching_parameters(params)

  def test_execution_size_defaults_to_max_batch_size_when_splitting(self):
    params = bpu.parse_batching_parameters(
        "max_batch_size { value: 40 } "
        "enable_large_batch_splitting { value: true }")
    self.assertEqual(bpu.queue_options(params).max_execution_batch_size, 40)
    params = bpu.parse_batching_parameters(
        "max_execution_batch_size { value: 7 }")
    self.assertEqual(bpu.queue_options(params).max_execution_batch_size, 1000,
                     "ignored without enable_large_batch_splitting")

  def _assert_invalid(self, text, message):
    params = bpu.parse_batching_parameters(text)
    with self.assertRaises(status.ServingError) as ctx:
      bpu.create_batch_scheduler(params)
    self.assertEqual(ctx.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertEqual(ctx.exception.message, message)

  def test_request_threads_warning(self):
    params = bpu.parse_batching_parameters(
        "max_batch_size { value: 128 } "
        "enable_large_batch_splitting { value: true } "
        "max_execution_batch_size { value: 64 }")
    # Enough threads for the largest batch that runs (64 rows): no warning.
    self.assertEqual(bpu.request_threads_warning(params, 64), "")
    warning = bpu.request_threads_warning(params, 4)
    self.assertIn("--grpc_max_threads=4 lets at most 4 requests", warning)
    self.assertIn("largest batch (64 rows)", warning)
    # Without splitting the largest batch is max_batch_size.
    self.assertIn(
        "(1000 rows)",
        bpu.request_threads_warning(bpu.default_batching_parameters(), 999,
                                    flag="--rest_api_num_threads"))

  def test_validation_errors(self):
    self._assert_invalid(
        "max_batch_size { value: 8 } allowed_batch_sizes: [2, 4]",
        "Last entry in allowed_batch_sizes must match max_batch_size; last "
        "entry was 4; expected 8")
    self._assert_invalid(
        "allowed_batch_sizes: [2, 4]",
        "Last entry in allowed_batch_sizes must match max_batch_size; last "
        "entry was 4; expected 1000")
    # Upstream's server checks only the last entry: this one is accepted.
    bpu.validate_batching_parameters(bpu.parse_batching_parameters(
        "max_batch_size { value: 8 } allowed_batch_sizes: [4, 2, 8]"))
    self._assert_invalid("num_batch_threads { value: 0 }",
                         "num_batch_threads must be positive; was 0")
    self._assert_invalid("max_batch_size { value: 0 }",
                         "input_batch_size_limit must be positive; was 0")
    self._assert_invalid("batch_timeout_micros { value: -5 }",
                         "batch_timeout_micros must be non-negative; was -5")

  def test_read_file(self):
    path = self.create_tempfile(
        content="max_batch_size { value: 16 }\n").full_path
    params = bpu.read_batching_parameters_file(path)
    self.assertEqual(params.max_batch_size.value, 16)

  def test_unparsable_file_is_invalid_argument(self):
    # Upstream's ParseProtoTextFile text, with the parser's line and column.
    path = self.create_tempfile(content="max_batch_size: {{ 16\n").full_path
    with self.assertRaises(status.ServingError) as ctx:
      bpu.read_batching_parameters_file(path)
    self.assertEqual(ctx.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertStartsWith(
        ctx.exception.message,
        f"Invalid protobuf file: '{path}'. Error parsing text-format "
        "tensorflow.serving.BatchingParameters: 1:")

  def test_missing_file(self):
    with self.assertRaises(status.ServingError) as ctx:
      bpu.read_batching_parameters_file("/nonexistent/batching.pbtxt")
    self.assertEqual(ctx.exception.code, status.Code.NOT_FOUND)
    self.assertEqual(ctx.exception.message,
                     "/nonexistent/batching.pbtxt; No such file or directory")

  def test_create_scheduler_and_wrap(self):
    params = bpu.parse_batching_parameters(
        "max_batch_size { value: 4 } num_batch_threads { value: 1 } "
        "allowed_batch_sizes: [2, 4]")
    scheduler = bpu.create_batch_scheduler(params)
    self.addCleanup(scheduler.stop)
    self.assertIsInstance(scheduler, sbs.SharedBatchScheduler)
    seen = []

    def run(feed_names, feeds, fetch_names):
      del feed_names, fetch_names  # One input, one output.
      seen.append(feeds[0].shape)
      return [feeds[0] * 2]

    batched = bpu.wrap_bundle_run_for_batching(run, scheduler, params)
    out, = batched(("x",), [np.array([[1.0, 2.0]], np.float32)], ("y",))
    np.testing.assert_array_equal(out, [[2.0, 4.0]])
    self.assertEqual(seen, [(2, 2)])  # padded to the allowed size 2
    batched.close()


if __name__ == "__main__":
  absltest.main()
