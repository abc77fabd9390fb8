r"""Exports the benchmark's MNIST-shaped models, without MNIST.

The benchmark needs models with the tutorial's signature but not the MNIST
data or the training. This writes them as TensorFlow 1 graphs, like
example/mnist_saved_model.py does, with fixed random weights:

  softmax (the default): what the tutorial's model costs, a 784x10 matmul,
      a bias add and a softmax. A run is a few microseconds, so a request's
      cost is almost all serving overhead.
  mlp: a model with real compute, 784-1024-1024-10 (two ReLU hidden layers,
      softmax output; about 1.9 M multiply-adds and 7 MB of weights per
      row). At one row a run streams all the weights for one row (about
      240 us on the development machine); at 64 rows it reuses them across
      the batch (about 25 us per row), which is what request batching is
      for (docs/performance.md, "Request batching").

Both have the same signatures:

  predict_images  (tensorflow/serving/predict)
      images: float [-1, 784] -> scores: float [-1, 10]
  serving_default: the same signature, so REST calls may omit its name.

  export_model [--model=softmax|mlp] [--version=1] EXPORT_BASE_DIR

writes EXPORT_BASE_DIR/<version>. The tutorial's own export
(mnist_saved_model) can be benchmarked instead by pointing the benchmark's
--model_base_path at it.
"""

import os
import sys
from typing import Sequence

from absl import app
from absl import flags

SIGNATURE = "predict_images"
INPUT = "images"
OUTPUT = "scores"
NUM_PIXELS = 784
NUM_CLASSES = 10
MLP_HIDDEN = (1024, 1024)
MODELS = ("softmax", "mlp")

_VERSION = flags.DEFINE_integer("version", 1, "Version directory to write.")
# Shared with benchmark.py (which serves this model when --model_base_path is
# not given), so that the two can be imported together.
MODEL = flags.DEFINE_enum(
    "model", "softmax", list(MODELS),
    "Which model: softmax (784->10, a few us per run) or mlp "
    "(784-1024-1024-10, real compute; the model to measure batching with).")


def export(export_base: str, version: int = 1, seed: int = 0,
           model: str = "softmax") -> str:
  """Writes `model` (one of MODELS) to export_base/version; returns that dir.

  Does nothing if the directory already holds a saved_model.pb, so repeated
  benchmark runs reuse one export.

  Raises:
    ValueError: an unknown model.
  """
  if model not in MODELS:
    raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  export_path = os.path.join(os.path.abspath(export_base), str(version))
  if os.path.exists(os.path.join(export_path, "saved_model.pb")):
    return export_path
  tf1 = tf.compat.v1
  rng = np.random.default_rng(seed)
  widths = (NUM_PIXELS,) + (MLP_HIDDEN if model == "mlp" else ()) + (
      NUM_CLASSES,)
  with tf.Graph().as_default(), tf1.Session() as sess:
    x = tf1.placeholder(tf.float32, shape=[None, NUM_PIXELS], name="x")
    h = x
    values = {}
    for i, (fan_in, fan_out) in enumerate(zip(widths, widths[1:])):
      last = i == len(widths) - 2
      # He initialisation keeps the ReLU activations' scale from layer to
      # layer; the values only matter in that they are not degenerate.
      scale = 0.05 if last else np.sqrt(2.0 / fan_in)
      suffix = "" if last else f"_{i}"
      # Zeros in the graph, the values fed at initialisation: the weights
      # then live only in the checkpoint, not also as graph constants.
      w = tf1.Variable(tf.zeros((fan_in, fan_out)), name="w" + suffix)
      b = tf1.Variable(tf.zeros((fan_out,)), name="b" + suffix)
      values[w] = rng.normal(0, scale, (fan_in, fan_out)).astype(np.float32)
      values[b] = rng.normal(0, 0.05, (fan_out,)).astype(np.float32)
      h = tf.matmul(h, w) + b
      if not last:
        h = tf.nn.relu(h)
    y = tf.nn.softmax(h, name="y")
    for variable, value in values.items():
      variable.load(value, sess)
    utils = tf1.saved_model.utils
    signature = tf1.saved_model.signature_def_utils.build_signature_def(
        inputs={INPUT: utils.build_tensor_info(x)},
        outputs={OUTPUT: utils.build_tensor_info(y)},
        method_name=tf1.saved_model.signature_constants.PREDICT_METHOD_NAME)
    staging = export_path + ".exporting"
    builder = tf1.saved_model.builder.SavedModelBuilder(staging)
    builder.add_meta_graph_and_variables(
        sess, [tf1.saved_model.tag_constants.SERVING],
        signature_def_map={
            SIGNATURE: signature,
            tf1.saved_model.signature_constants
            .DEFAULT_SERVING_SIGNATURE_DEF_KEY: signature,
        },
        strip_default_attrs=True)
    builder.save()
  # The server skips non-numeric names, so it never sees a partial export.
  os.rename(staging, export_path)
  return export_path


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2:
    print(__doc__, file=sys.stderr)
    sys.exit(2)
  print(export(argv[1], _VERSION.value, model=MODEL.value))


if __name__ == "__main__":
  app.run(main)
