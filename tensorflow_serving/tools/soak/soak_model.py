"""The soak's model: y = 0.5 x + 2 behind Predict, Classify and Regress.

A SavedModel written with tf.saved_model.save: serving_default (input x,
float [batch, 1] -> y), classify_x_to_y (serialized tf.Examples with a
float feature x -> scores) and regress_x_to_y (the same -> outputs), so
that the soak can send every API a real model answers.
"""

import tensorflow as tf


class _HalfPlusTwo(tf.Module):

  @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32,
                                              name="x")])
  def predict(self, x):
    return {"y": 0.5 * x + 2.0}

  @staticmethod
  def _x(inputs):
    return tf.io.parse_example(
        inputs, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                              name="inputs")])
  def classify(self, inputs):
    return {"scores": 0.5 * self._x(inputs) + 2.0}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                              name="inputs")])
  def regress(self, inputs):
    return {"outputs": 0.5 * self._x(inputs) + 2.0}


def write(export_dir: str) -> str:
  """Writes the model to export_dir (a version directory); returns it."""
  module = _HalfPlusTwo()
  tf.saved_model.save(module, export_dir, signatures={
      "serving_default": module.predict,
      "classify_x_to_y": module.classify,
      "regress_x_to_y": module.regress,
  })
  return export_dir
