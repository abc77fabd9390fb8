"""Exports a SavedModel whose run keeps a core busy for as long as asked.

For the deadline tests: a run that only ends when TensorFlow cancels it or
its time is up, burning CPU all along (unlike a sleep), so that a test can
see from the server's CPU time whether the work stopped.

  serving_default  predict  seconds: float64 [-1] -> iterations: int64 [-1]

The run is a tf.while_loop that spins until max(seconds) have passed since
it started (tf.timestamp()); each output row is the number of iterations.
A while loop checks the step's cancellation on every iteration, so a run
whose RunOptions timeout passes stops within microseconds.
"""

import tensorflow as tf


def write(export_dir: str) -> str:
  """Writes the model (TF1 SavedModelBuilder) to export_dir; returns it."""
  with tf.Graph().as_default():
    seconds = tf.compat.v1.placeholder(tf.float64, [None], name="seconds")
    start = tf.timestamp()
    limit = tf.reduce_max(seconds)

    def cond(i, acc):
      del acc
      return tf.logical_or(tf.equal(i, 0), tf.timestamp() - start < limit)

    def body(i, acc):
      return i + 1, acc + tf.sin(tf.cast(i, tf.float64))

    iterations, _ = tf.while_loop(
        cond, body, (tf.constant(0, tf.int64), tf.constant(0.0, tf.float64)))
    out = tf.fill(tf.shape(seconds), iterations, name="iterations")
    with tf.compat.v1.Session() as session:
      builder = tf.compat.v1.saved_model.Builder(export_dir)
      builder.add_meta_graph_and_variables(
          session, ["serve"], signature_def_map={
              "serving_default":
                  tf.compat.v1.saved_model.predict_signature_def(
                      inputs={"seconds": seconds},
                      outputs={"iterations": out})
          })
      builder.save()
  return export_dir
