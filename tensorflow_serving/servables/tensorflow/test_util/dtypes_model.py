"""Exports a TF2 SavedModel with a signature for every V2 datatype, for tests.

The V2 protocol (and TF Serving's Predict) must carry every dtype a
TensorFlow tensor can hold both ways; this model gives each one a
signature that computes something, so a value that went through the wrong
conversion shows:

  <datatype>        x: <dtype> [-1] -> y: <dtype> [-1]   (one per DATATYPES
                    key, e.g. "fp32", "uint64", "bytes")
      BOOL: not x; integers: x + 1 (wrapping); floats: x * 2;
      BYTES: "<" + x + ">"
  serving_default   f: float32 [-1, 2], i: int64 [-1], s: string [-1]
                    -> doubled = 2 f, incremented = i + 1, bracketed = <s>,
                       row_sum = sum of f's rows (float32 [-1])

expected() computes each signature's result with numpy, as a test's
independent reference.
"""

import numpy as np
import tensorflow as tf

# Signature name -> (V2 datatype, TensorFlow dtype).
DATATYPES = {
    "bool": ("BOOL", tf.bool),
    "int8": ("INT8", tf.int8),
    "int16": ("INT16", tf.int16),
    "int32": ("INT32", tf.int32),
    "int64": ("INT64", tf.int64),
    "uint8": ("UINT8", tf.uint8),
    "uint16": ("UINT16", tf.uint16),
    "uint32": ("UINT32", tf.uint32),
    "uint64": ("UINT64", tf.uint64),
    "fp16": ("FP16", tf.float16),
    "bf16": ("BF16", tf.bfloat16),
    "fp32": ("FP32", tf.float32),
    "fp64": ("FP64", tf.float64),
    "bytes": ("BYTES", tf.string),
}


def _compute(dtype: tf.DType, x: tf.Tensor) -> tf.Tensor:
  if dtype == tf.bool:
    return tf.logical_not(x)
  if dtype == tf.string:
    return tf.strings.join(["<", x, ">"])
  if dtype.is_floating:
    return x * tf.constant(2, dtype)
  return x + tf.constant(1, dtype)


def _signature(dtype: tf.DType):

  @tf.function(input_signature=[tf.TensorSpec([None], dtype, "x")])
  def run(x):
    return {"y": _compute(dtype, x)}

  return run


@tf.function(input_signature=[
    tf.TensorSpec([None, 2], tf.float32, "f"),
    tf.TensorSpec([None], tf.int64, "i"),
    tf.TensorSpec([None], tf.string, "s"),
])
def _serving_default(f, i, s):
  return {
      "doubled": f * 2.0,
      "incremented": i + 1,
      "bracketed": tf.strings.join(["<", s, ">"]),
      "row_sum": tf.reduce_sum(f, axis=1),
  }


def write(export_dir: str) -> str:
  """Writes the model to export_dir (a version directory); returns it."""
  module = tf.Module()
  signatures = {"serving_default": _serving_default}
  for name, (_, dtype) in DATATYPES.items():
    signatures[name] = _signature(dtype)
  tf.saved_model.save(module, export_dir, signatures=signatures)
  return export_dir


def expected(signature_name: str, inputs: dict) -> dict:
  """What the signature returns for numpy inputs, computed with numpy."""
  if signature_name == "serving_default":
    f = np.asarray(inputs["f"], np.float32)
    return {
        "doubled": f * np.float32(2),
        "incremented": np.asarray(inputs["i"], np.int64) + 1,
        "bracketed": np.array([b"<" + v + b">" for v in inputs["s"]],
                              dtype=object),
        "row_sum": f.sum(axis=1, dtype=np.float32),
    }
  x = np.asarray(inputs["x"])
  if x.dtype == np.bool_:
    return {"y": np.logical_not(x)}
  if x.dtype == object:
    return {"y": np.array([b"<" + v + b">" for v in x], dtype=object)}
  if x.dtype.kind in "iu":
    with np.errstate(over="ignore"):
      return {"y": (x + x.dtype.type(1)).astype(x.dtype)}
  return {"y": (x * x.dtype.type(2)).astype(x.dtype)}
