"""Fuzz tests of the REST JSON codec (util/json_tensor): ServingError or nothing.

Every body a client can send goes through json_tensor before anything else
sees it, so no body may make it raise anything but ServingError (which the
edge turns into 400 with upstream's text): any other exception is a bug (a
500 whose text is a Python traceback's, or worse). The bodies are generated
by hypothesis: arbitrary bytes; JSON documents built from the keys and
values the decoder looks at (instances, inputs, signature_name, b64,
examples, context; huge and fractional numbers, NaN and Infinity, deep and
ragged nesting, strings where numbers go); and those documents cut short or
with a byte changed, against signatures of every input dtype. Whatever
decodes must also encode back (make_json_from_tensors), and decode again to
the same tensors.

hypothesis rather than atheris: the decoder's branches are reached by the
structure of a JSON document, which a grammar-aware generator produces
directly (coverage guidance from random bytes spends most of its time
rediscovering JSON); hypothesis is already pinned, needs no instrumented
build, and with derandomize=True every run tries the same inputs, so CI
cannot flake. Inputs that once failed stay below as @example cases.
"""

import json
import math

from absl.testing import absltest
import hypothesis
from hypothesis import strategies as st
import numpy as np

from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.util import json_tensor
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec

DT = types_pb2

_SETTINGS = hypothesis.settings(
    max_examples=600, derandomize=True, deadline=None, database=None,
    suppress_health_check=list(hypothesis.HealthCheck))

# Signatures the bodies are decoded against: one per input dtype JSON can
# express, several inputs at once, one JSON cannot express, and none.
_SIGNATURES = (
    {"x": DT.DT_FLOAT},
    {"x": DT.DT_DOUBLE, "y": DT.DT_INT64},
    {"x": DT.DT_INT32, "s": DT.DT_STRING},
    {"x": DT.DT_INT8},
    {"x": DT.DT_UINT8, "b": DT.DT_BOOL},
    {"x": DT.DT_UINT64},
    {"x": DT.DT_UINT32, "y": DT.DT_INT16},
    {"x": DT.DT_HALF},
    {"x": DT.DT_BFLOAT16},
    {"s": DT.DT_STRING},
    {"b": DT.DT_BOOL},
    {"x": DT.DT_COMPLEX64},
    {},
)

_KEYS = ("instances", "inputs", "signature_name", "b64", "examples",
         "context", "x", "y", "s", "b", "")

_NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63,
                     2**64, -(2**63) - 1, 65504, 65520]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e40, max_value=1e40),
)

_LEAVES = st.one_of(st.none(), st.booleans(), _NUMBERS,
                    st.text(max_size=6),
                    st.builds(lambda s: {"b64": s},
                              st.text(alphabet="QUJDRA=+/_-!", max_size=8)))

_VALUES = st.recursive(
    _LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=3),
                        children, max_size=4)),
    max_leaves=24)


@st.composite
def _document(draw) -> bytes:
  """A JSON object with the keys the decoders look at, then maybe damaged."""
  members = draw(st.dictionaries(st.sampled_from(_KEYS), _VALUES,
                                 min_size=0, max_size=3))
  text = json.dumps(members, allow_nan=True)
  return _damage(draw, text.encode("utf-8", "surrogatepass"))


def _damage(draw, data: bytes) -> bytes:
  """Maybe cuts the body short, or changes or inserts one byte."""
  how = draw(st.integers(0, 9))
  if how == 0 and data:
    return data[:draw(st.integers(0, len(data) - 1))]
  if how == 1 and data:
    i = draw(st.integers(0, len(data) - 1))
    return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]
  if how == 2:
    i = draw(st.integers(0, len(data)))
    return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i:]
  return data


_STRING_LEAVES = st.one_of(
    st.text(max_size=6),
    st.builds(lambda s: {"b64": s},
              st.sampled_from(["", "aGk=", "aGk", "!!", "AAEC/w==", "_-8="])))


_SMALL_INTS = st.integers(-128, 127)
# Values of the right kind for each input dtype (edge values included).
_RIGHT_LEAVES = {
    DT.DT_STRING: _STRING_LEAVES,
    DT.DT_BOOL: st.booleans(),
    DT.DT_INT8: _SMALL_INTS,
    DT.DT_UINT8: st.integers(0, 255),
    DT.DT_INT16: st.integers(-(2**15), 2**15 - 1),
    DT.DT_INT32: st.integers(-(2**31), 2**31 - 1),
    DT.DT_UINT32: st.integers(0, 2**32 - 1),
    DT.DT_INT64: st.integers(-(2**63), 2**63 - 1),
    DT.DT_UINT64: st.integers(0, 2**64 - 1),
    DT.DT_FLOAT: st.one_of(st.floats(width=32), _SMALL_INTS),
    DT.DT_DOUBLE: st.one_of(st.floats(), st.integers(-(2**53), 2**53)),
    DT.DT_HALF: st.one_of(st.floats(width=16), _SMALL_INTS),
    DT.DT_BFLOAT16: st.one_of(st.floats(width=16), _SMALL_INTS),
}


@st.composite
def _tensor_value(draw, dtype, batch):
  """A nested list for one input: mostly of the right kind, sometimes not."""
  dims = [batch] + draw(st.lists(st.integers(0, 3), max_size=2))
  leaves = _RIGHT_LEAVES.get(dtype, _NUMBERS)
  wrong = draw(st.integers(0, 19)) == 0

  def build(level):
    if level == len(dims):
      return draw(_LEAVES if wrong else leaves)
    size = dims[level]
    if wrong and draw(st.integers(0, 3)) == 0:
      size = max(0, size + draw(st.integers(-1, 1)))  # A ragged list.
    return [build(level + 1) for _ in range(size)]

  return build(0)


@st.composite
def _predict_body(draw, dtypes) -> bytes:
  """A predict body shaped for the signature, maybe with wrong parts."""
  names = sorted(dtypes) or ["x"]
  batch = draw(st.integers(1, 3))
  members = {}
  if draw(st.integers(0, 4)) == 0:
    members["signature_name"] = draw(st.sampled_from(["", "serving_default",
                                                      7]))
  if draw(st.booleans()):
    if len(names) == 1 and draw(st.booleans()):
      members["instances"] = draw(_tensor_value(dtypes.get(names[0]), batch))
    else:
      members["instances"] = [
          {name: (draw(_tensor_value(dtypes.get(name), 1)) or [[]])[0]
           for name in names}
          for _ in range(batch)]
  elif len(names) == 1 and draw(st.booleans()):
    members["inputs"] = draw(_tensor_value(dtypes.get(names[0]), batch))
  else:
    members["inputs"] = {name: draw(_tensor_value(dtypes.get(name), batch))
                         for name in names}
  data = json.dumps(members, allow_nan=True).encode("utf-8", "surrogatepass")
  return _damage(draw, data) if draw(st.integers(0, 4)) == 0 else data


_BODIES = st.one_of(_document(), st.binary(max_size=64),
                    st.text(max_size=40).map(lambda t: t.encode(
                        "utf-8", "surrogatepass")))


def _infos(dtypes):
  return {name: meta_graph_pb2.TensorInfo(dtype=dtype)
          for name, dtype in dtypes.items()}


def _decode(body, dtypes):
  """(format, request) or the ServingError."""
  request = predict_pb2.PredictRequest()
  infos = _infos(dtypes)
  try:
    request_format = json_tensor.fill_predict_request_from_json(
        body, lambda name: infos, request)
  except status.ServingError as e:
    return e
  return request_format, request


def _same_tensors(test, first, second):
  test.assertEqual(sorted(first), sorted(second))
  for name in first:
    a = tensor_codec.tensor_proto_to_ndarray(first[name])
    b = tensor_codec.tensor_proto_to_ndarray(second[name])
    test.assertEqual(a.dtype, b.dtype, name)
    test.assertEqual(a.shape, b.shape, name)
    if a.dtype.kind in "fc":
      np.testing.assert_array_equal(a, b)
    elif a.dtype == object:
      # A string output that is not UTF-8 is written with U+FFFD
      # (docs/differences_from_upstream.md).
      test.assertEqual(
          [v.decode("utf-8", "replace").encode() for v in a.ravel()],
          list(b.ravel()), name)
    else:
      test.assertEqual(a.tolist(), b.tolist(), name)


class PredictFuzzTest(absltest.TestCase):

  @_SETTINGS
  @hypothesis.given(_BODIES, st.sampled_from(_SIGNATURES))
  # A signature name that is not UTF-8 (raw byte; lone surrogate escape).
  @hypothesis.example(
      b'{"signature_name": "\x80erving_default", "inputs": {"x": [null]}}',
      {"x": DT.DT_FLOAT})
  @hypothesis.example(b'{"signature_name": "\\ud800", "instances": [1.0]}',
                      {"x": DT.DT_FLOAT})
  def test_any_body(self, body, dtypes):
    self.check(body, dtypes)

  @_SETTINGS
  @hypothesis.given(st.data(), st.sampled_from(_SIGNATURES))
  def test_bodies_shaped_for_the_signature(self, data, dtypes):
    self.check(data.draw(_predict_body(dtypes)), dtypes)

  def check(self, body, dtypes):
    """Decodes; what decodes encodes back and decodes to the same tensors."""
    outcome = _decode(body, dtypes)
    if isinstance(outcome, status.ServingError):
      return
    request_format, request = outcome
    try:
      reply = json_tensor.make_json_from_tensors(request.inputs,
                                                 request_format)
    except status.ServingError:
      return
    # The reply is JSON (NaN and Infinity as bare tokens, as upstream).
    decoded = json.loads(reply)
    self.assertIsInstance(decoded, dict)
    # Encoded as a request again, it decodes to the same tensors.
    key = ("instances" if request_format ==
           json_tensor.JsonPredictRequestFormat.ROW else "inputs")
    again = {key: decoded["predictions" if key == "instances" else
                          "outputs"]}
    if request.model_spec.signature_name:
      again["signature_name"] = request.model_spec.signature_name
    outcome = _decode(json.dumps(again, allow_nan=True).encode(), dtypes)
    if isinstance(outcome, status.ServingError):
      # Allowed, as upstream: a float32 next to FLT_MAX is written with nine
      # digits (3.40282347e+38), which reads back as a double just beyond
      # FLT_MAX, which a float input refuses; and a batch the row format
      # cannot express the same way.
      return
    _same_tensors(self, request.inputs, outcome[1].inputs)


class ClassifyRegressFuzzTest(absltest.TestCase):

  @_SETTINGS
  @hypothesis.given(_BODIES)
  def test_only_serving_errors(self, body):
    for request in (classification_pb2.ClassificationRequest(),
                    regression_pb2.RegressionRequest()):
      fill = (json_tensor.fill_classification_request_from_json
              if isinstance(request, classification_pb2.ClassificationRequest)
              else json_tensor.fill_regression_request_from_json)
      try:
        fill(body, request)
      except status.ServingError:
        pass


class EncodeFuzzTest(absltest.TestCase):
  """Model outputs of any dtype and shape encode, or fail with ServingError."""

  @_SETTINGS
  @hypothesis.given(
      st.sampled_from([np.float32, np.float64, np.float16, np.int8, np.int32,
                       np.int64, np.uint8, np.uint64, np.bool_, np.complex64,
                       object]),
      st.lists(st.integers(0, 3), max_size=3),
      st.integers(1, 3), st.booleans(), st.data())
  def test_outputs_encode(self, dtype, shape, outputs, row, data):
    tensors = {}
    for i in range(outputs):
      count = math.prod(shape)
      if dtype is object:
        values = data.draw(st.lists(st.binary(max_size=4), min_size=count,
                                    max_size=count))
        array = np.empty(count, dtype=object)
        array[:] = values
      else:
        raw = data.draw(st.binary(min_size=count * np.dtype(dtype).itemsize,
                                  max_size=count * np.dtype(dtype).itemsize))
        array = np.frombuffer(raw, dtype=dtype).copy()
        if dtype is np.bool_:
          array = array.astype(bool)
      tensors[f"out{i}"] = tensor_codec.ndarray_to_tensor_proto(
          array.reshape(shape))
    request_format = (json_tensor.JsonPredictRequestFormat.ROW if row else
                      json_tensor.JsonPredictRequestFormat.COLUMNAR)
    try:
      reply = json_tensor.make_json_from_tensors(tensors, request_format)
    except status.ServingError:
      return
    json.loads(reply)


if __name__ == "__main__":
  absltest.main()
