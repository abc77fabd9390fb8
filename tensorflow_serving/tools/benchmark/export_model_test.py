"""Tests for export_model: both benchmark models load and answer as documented."""

import os

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from tensorflow_serving.tools.benchmark import export_model


def _run(export_dir: str, images: np.ndarray) -> tuple[str, np.ndarray]:
  """Runs predict_images in a TF1 session, as the server does.

  Returns:
    (the signature's method name, the scores).
  """
  with tf.Graph().as_default() as graph, tf.compat.v1.Session() as sess:
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], export_dir)
    signature = meta.signature_def[export_model.SIGNATURE]
    x = graph.get_tensor_by_name(signature.inputs[export_model.INPUT].name)
    y = graph.get_tensor_by_name(signature.outputs[export_model.OUTPUT].name)
    return signature.method_name, sess.run(y, {x: images})


class ExportModelTest(absltest.TestCase):

  def test_models_have_the_mnist_signature(self):
    images = np.random.default_rng(1).random((5, 784), dtype=np.float32)
    for model, num_variables in (("softmax", 2), ("mlp", 6)):
      with self.subTest(model=model):
        base = self.create_tempdir().full_path
        path = export_model.export(base, model=model)
        self.assertEqual(path, os.path.join(base, "1"))
        method, scores = _run(path, images)
        self.assertEqual(method, "tensorflow/serving/predict")
        self.assertEqual(scores.shape, (5, 10))
        np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
        # Not degenerate: different images get different scores.
        self.assertGreater(np.abs(scores[0] - scores[1]).max(), 1e-4)
        reader = tf.train.load_checkpoint(os.path.join(path, "variables",
                                                       "variables"))
        self.assertLen(reader.get_variable_to_shape_map(), num_variables)
        # The weights live in the checkpoint only, not also in the graph.
        self.assertLess(
            os.path.getsize(os.path.join(path, "saved_model.pb")), 100_000)

  def test_mlp_layers(self):
    path = export_model.export(self.create_tempdir().full_path, model="mlp")
    shapes = tf.train.load_checkpoint(
        os.path.join(path, "variables", "variables")).get_variable_to_shape_map()
    self.assertEqual(
        shapes, {"w_0": [784, 1024], "b_0": [1024], "w_1": [1024, 1024],
                 "b_1": [1024], "w": [1024, 10], "b": [10]})

  def test_existing_export_is_reused(self):
    base = self.create_tempdir().full_path
    path = export_model.export(base)
    stamp = os.path.getmtime(os.path.join(path, "saved_model.pb"))
    self.assertEqual(export_model.export(base, model="softmax"), path)
    self.assertEqual(os.path.getmtime(os.path.join(path, "saved_model.pb")),
                     stamp)

  def test_unknown_model(self):
    with self.assertRaisesRegex(ValueError, "unknown model"):
      export_model.export(self.create_tempdir().full_path, model="resnet")


if __name__ == "__main__":
  absltest.main()
