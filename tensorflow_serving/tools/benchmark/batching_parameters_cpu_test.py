"""The shipped CPU batching parameters are valid and fit their flags."""

import os

from absl.testing import absltest

from tensorflow_serving.servables.tensorflow import batching_parameters_util

_PATH = os.path.join(os.path.dirname(__file__), "batching_parameters_cpu.pbtxt")


class BatchingParametersCpuTest(absltest.TestCase):

  def test_valid_and_filled_by_the_documented_flags(self):
    params = batching_parameters_util.read_batching_parameters_file(_PATH)
    batching_parameters_util.validate_batching_parameters(params)
    options = batching_parameters_util.queue_options(params)
    self.assertEqual(options.effective_max_execution_batch_size, 64)
    # Online serving: no more queued batches than batch threads.
    self.assertEqual(options.max_enqueued_batches,
                     batching_parameters_util.scheduler_options(
                         params).num_batch_threads)
    # The file's header says --grpc_max_threads=64: enough for a full batch.
    self.assertEqual(
        batching_parameters_util.request_threads_warning(params, 64), "")
    self.assertNotEqual(
        batching_parameters_util.request_threads_warning(params, 4), "")


if __name__ == "__main__":
  absltest.main()
