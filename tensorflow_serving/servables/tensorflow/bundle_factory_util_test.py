"""Tests for servables/tensorflow/bundle_factory_util.py."""

from absl.testing import absltest

from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.servables.tensorflow import bundle_factory_util
from tensorflow_serving.util import status


class SessionConfigTest(absltest.TestCase):

  def test_default_leaves_pools_to_tensorflow(self):
    config = bundle_factory_util.build_session_config()
    self.assertEqual(config.intra_op_parallelism_threads, 0)
    self.assertEqual(config.inter_op_parallelism_threads, 0)

  def test_session_parallelism_sets_both(self):
    config = bundle_factory_util.build_session_config(session_parallelism=3)
    self.assertEqual(config.intra_op_parallelism_threads, 3)
    self.assertEqual(config.inter_op_parallelism_threads, 3)

  def test_intra_and_inter_win_over_session_parallelism(self):
    config = bundle_factory_util.build_session_config(
        session_parallelism=3, intra_op_parallelism=2)
    self.assertEqual(config.intra_op_parallelism_threads, 2)
    self.assertEqual(config.inter_op_parallelism_threads, 0)
    config = bundle_factory_util.build_session_config(
        intra_op_parallelism=1, inter_op_parallelism=4)
    self.assertEqual(config.intra_op_parallelism_threads, 1)
    self.assertEqual(config.inter_op_parallelism_threads, 4)

  def test_all_three_is_an_error(self):
    with self.assertRaises(status.ServingError) as ctx:
      bundle_factory_util.build_session_config(1, 2, 3)
    self.assertEqual(ctx.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertIn("You cannot configure both", ctx.exception.message)

  def test_base_config_is_kept_and_not_mutated(self):
    base = config_pb2.ConfigProto(intra_op_parallelism_threads=5,
                                  allow_soft_placement=True)
    config = bundle_factory_util.build_session_config(
        inter_op_parallelism=2, base=base)
    self.assertTrue(config.allow_soft_placement)
    self.assertEqual(config.intra_op_parallelism_threads, 5)
    self.assertEqual(config.inter_op_parallelism_threads, 2)
    self.assertEqual(base.inter_op_parallelism_threads, 0)


if __name__ == "__main__":
  absltest.main()
