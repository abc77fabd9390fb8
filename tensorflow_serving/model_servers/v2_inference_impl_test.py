"""Tests of V2InferenceImpl with no transport: the V2 protocol's meaning.

A real ServerCore serves a SavedModel with a signature per V2 datatype
(test_util/dtypes_model, two versions and a label), half_plus_two and a
hashmap table; the tests call the impl as the gRPC and REST edges do and
compare each inference with a TF Serving Predict of the same input.
"""

import os
import time

from absl.testing import absltest
import numpy as np

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.model_servers import data_plane
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.model_servers import v2_inference_impl as impl_lib
from tensorflow_serving.model_servers.test_util import server_core_test_util
from tensorflow_serving.servables.hashmap import hashmap_source_adapter
from tensorflow_serving.servables.hashmap.test_util import hashmap_test_util
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter
from tensorflow_serving.servables.tensorflow.test_util import dtypes_model
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec
from tensorflow_serving.util import v2_tensor_codec as codec

Code = status.Code
TF = server_core_lib.TENSORFLOW_MODEL_PLATFORM


def _inputs(datatype: str) -> np.ndarray:
  """Three values of a datatype, ends of its range included."""
  dt = codec.datatype(datatype)
  if datatype == "BYTES":
    value = np.empty(3, dtype=object)
    value[:] = [b"a", b"", b"\xff\x00"]
    return value
  if datatype == "BOOL":
    return np.array([True, False, True])
  if dt.numpy_dtype.kind in "iu":
    info = np.iinfo(dt.numpy_dtype)
    return np.array([info.min, 0, info.max], dtype=dt.numpy_dtype)
  return np.array([1.5, -0.25, 0.0], dtype=dt.numpy_dtype)


def _request(inputs: dict, outputs=(), parameters=None, request_id=""):
  """An edge's decoder of a request with these inputs {name: array}."""
  tensors = [
      impl_lib.InferInput(name, codec.datatype_of_numpy_dtype(value.dtype),
                          value) for name, value in inputs.items()]
  request = impl_lib.InferRequest(id=request_id,
                                  parameters=parameters or {},
                                  inputs=tensors, outputs=list(outputs))
  return lambda servable: request


def _request_count(*labels: str) -> int:
  """request_count summed over the labels after `labels` (version, ...)."""
  return sum(cell.value() for names, cell in metrics.REQUEST_COUNT.cells()
             if names[:len(labels)] == labels)


def _latency_count(*labels: str) -> int:
  """How many latencies request_latency holds under labels starting so."""
  return sum(cell.snapshot()[2]
             for names, cell in metrics.REQUEST_LATENCY.cells()
             if names[:len(labels)] == labels)


class V2InferenceImplTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = half_plus_two.fresh_dir("v2_inference_impl_test")
    dtypes = os.path.join(cls.root, "dtypes")
    for version in (1, 2):
      dtypes_model.write(os.path.join(dtypes, str(version)))
    half = half_plus_two.write_versions(os.path.join(cls.root, "half"),
                                        half_plus_two.write_tf2, (3,))
    table = os.path.join(cls.root, "table")
    hashmap_test_util.write_version(table, 1, {"a": "1"})
    config = server_core_test_util.model_config({"table": table})
    models = config.model_config_list.config
    entry = models.add(name="dtypes", base_path=dtypes, model_platform=TF)
    entry.model_version_policy.all.SetInParent()
    entry.version_labels["stable"] = 1
    models.add(name="half", base_path=half, model_platform=TF)
    cls.core = server_core_lib.ServerCore.create(
        server_core_test_util.options(
            config,
            platform_source_adapters={
                server_core_test_util.HASHMAP_PLATFORM:
                    hashmap_source_adapter.HashmapSourceAdapter,
                TF: saved_model_bundle_source_adapter
                    .SavedModelBundleSourceAdapter,
            }))
    cls.plane = data_plane.DataPlane(cls.core)
    cls.impl = impl_lib.V2InferenceImpl(cls.core, cls.plane)

  @classmethod
  def tearDownClass(cls):
    cls.core.stop()
    super().tearDownClass()

  def context(self, api="ModelInfer", timeout=None):
    return data_plane.RequestContext.with_timeout("TEST", api, timeout)

  def assert_error(self, code, message, call, *args, **kwargs):
    with self.assertRaises(status.ServingError) as cm:
      call(*args, **kwargs)
    self.assertEqual((cm.exception.code, cm.exception.message),
                     (code, message))

  def infer(self, model, inputs, version="", **kwargs):
    return self.impl.infer(model, version, _request(inputs, **kwargs),
                           self.context())

  def predict(self, model, inputs, signature_name="", version=None):
    """The same input through TF Serving's Predict."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature_name
    if version is not None:
      request.model_spec.version.value = version
    for name, value in inputs.items():
      tensor_codec.ndarray_to_tensor_proto(value, request.inputs[name])
    response = self.plane.predict(request, self.context("Predict"))
    return {name: tensor_codec.tensor_proto_to_ndarray(tensor)
            for name, tensor in response.outputs.items()}

  def assert_same(self, actual, expected):
    self.assertEqual(actual.dtype, expected.dtype)
    self.assertEqual(actual.shape, expected.shape)
    if actual.dtype == object:
      self.assertEqual(actual.tolist(), expected.tolist())
    else:
      np.testing.assert_array_equal(actual, expected)

  # ----------------------------------------------------------------- infer

  def test_every_datatype_equals_predict(self):
    for signature, (datatype, _) in dtypes_model.DATATYPES.items():
      with self.subTest(datatype=datatype):
        inputs = {"x": _inputs(datatype)}
        result = self.infer("dtypes", inputs,
                            parameters={"signature_name": signature})
        self.assertEqual(result.model_version, "2")
        self.assertEqual([name for name, _ in result.outputs], ["y"])
        y = tensor_codec.tensor_proto_to_ndarray(result.outputs[0][1])
        self.assert_same(y, self.predict("dtypes", inputs, signature)["y"])
        self.assert_same(y, dtypes_model.expected(signature, inputs)["y"])

  def test_serving_default_outputs_id_and_order(self):
    inputs = {
        "f": np.array([[1, 2], [3, 4]], np.float32),
        "i": np.array([7, 8], np.int64),
        "s": np.array([b"x", b"y"], dtype=object),
    }
    result = self.infer("dtypes", inputs, request_id="r-1")
    self.assertEqual(result.id, "r-1")
    self.assertEqual(result.model_name, "dtypes")
    # Every output, sorted by name, equal to Predict's.
    self.assertEqual([n for n, _ in result.outputs],
                     ["bracketed", "doubled", "incremented", "row_sum"])
    expected = self.predict("dtypes", inputs)
    for name, tensor in result.outputs:
      self.assert_same(tensor_codec.tensor_proto_to_ndarray(tensor),
                       expected[name])
    # Requested outputs: only those, in the order asked.
    result = self.infer("dtypes", inputs, outputs=["row_sum", "doubled"])
    self.assertEqual([n for n, _ in result.outputs], ["row_sum", "doubled"])
    # Numeric outputs carry their bytes in tensor_content (the gRPC edge
    # passes them on as raw_output_contents).
    self.assertEqual(result.outputs[0][1].tensor_content,
                     np.array([3, 7], np.float32).tobytes())

  def test_versions_and_labels(self):
    inputs = {"x": np.array([1], np.int32)}
    params = {"signature_name": "int32"}
    self.assertEqual(self.infer("dtypes", inputs, "1",
                                parameters=params).model_version, "1")
    self.assertEqual(self.infer("dtypes", inputs, "stable",
                                parameters=params).model_version, "1")
    self.assertEqual(self.infer("dtypes", inputs, "",
                                parameters=params).model_version, "2")
    self.assert_error(Code.NOT_FOUND,
                      "Servable not found for request: Specific(dtypes, 9)",
                      self.infer, "dtypes", inputs, "9")
    self.assert_error(Code.INVALID_ARGUMENT,
                      "Unrecognized servable version label: nope",
                      self.infer, "dtypes", inputs, "nope")
    self.assert_error(Code.NOT_FOUND,
                      "Servable not found for request: Latest(nope)",
                      self.infer, "nope", inputs)

  def test_input_errors(self):
    fp64 = {"x": np.array([1.0], np.float64)}
    self.assert_error(
        Code.INVALID_ARGUMENT,
        "inference input 'x' data-type is 'FP64', but model 'half' expects "
        "'FP32'", self.infer, "half", fp64)
    self.assert_error(
        Code.INVALID_ARGUMENT,
        "unexpected inference input 'z' for model 'half'", self.infer,
        "half", {"z": np.array([1.0], np.float32)})
    with self.assertRaises(status.ServingError) as cm:
      self.infer("dtypes", {"f": np.ones((1, 2), np.float32)})
    self.assertEqual(cm.exception.code, Code.INVALID_ARGUMENT)
    self.assertIn("Missing but required: {i,s}", cm.exception.message)
    self.assert_error(
        Code.INVALID_ARGUMENT,
        'Serving signature name: "nope" not found in signature def',
        self.infer, "half", {"x": np.ones((1, 1), np.float32)},
        parameters={"signature_name": "nope"})
    self.assert_error(
        Code.INVALID_ARGUMENT, "parameter signature_name must be a string, "
        "got 3", self.infer, "half", {"x": np.ones((1, 1), np.float32)},
        parameters={"signature_name": 3})
    with self.assertRaises(status.ServingError) as cm:
      self.infer("half", {"x": np.ones((1, 1), np.float32)}, outputs=["z"])
    self.assertEqual(cm.exception.code, Code.INVALID_ARGUMENT)
    self.assertIn("output tensor alias not found in signature: z",
                  cm.exception.message)
    self.assert_error(Code.UNIMPLEMENTED,
                      "Servable table does not support this API", self.infer,
                      "table", {"x": np.ones((1, 1), np.float32)})

  def test_decoder_errors_are_counted_as_the_call(self):
    before = _request_count("half", "INVALID_ARGUMENT")

    def decode(unused_servable):
      raise status.invalid_argument("bad wire format")

    self.assert_error(Code.INVALID_ARGUMENT, "bad wire format",
                      self.impl.infer, "half", "", decode, self.context())
    self.assertEqual(_request_count("half", "INVALID_ARGUMENT"), before + 1)
    count = _latency_count("half", "ModelInfer", "TEST")
    self.infer("half", {"x": np.ones((1, 1), np.float32)})
    self.assertEqual(_latency_count("half", "ModelInfer", "TEST"), count + 1)

  # ------------------------------------------------- metadata, readiness

  def test_model_metadata(self):
    response = self.impl.model_metadata("dtypes", "", self.context(None))
    self.assertEqual(response.name, "dtypes")
    self.assertEqual(response.platform, "tensorflow_savedmodel")
    self.assertEqual(list(response.versions), ["1", "2"])
    self.assertEqual(
        [(t.name, t.datatype, list(t.shape)) for t in response.inputs],
        [("f", "FP32", [-1, 2]), ("i", "INT64", [-1]), ("s", "BYTES", [-1])])
    self.assertEqual(
        [(t.name, t.datatype, list(t.shape)) for t in response.outputs],
        [("bracketed", "BYTES", [-1]), ("doubled", "FP32", [-1, 2]),
         ("incremented", "INT64", [-1]), ("row_sum", "FP32", [-1])])
    self.assertEqual(
        self.impl.model_metadata("half", "3", self.context(None)).versions,
        ["3"])
    self.assert_error(Code.NOT_FOUND,
                      "Servable not found for request: Specific(half, 4)",
                      self.impl.model_metadata, "half", "4",
                      self.context(None))
    self.assert_error(Code.UNIMPLEMENTED,
                      "Servable table does not support this API",
                      self.impl.model_metadata, "table", "",
                      self.context(None))

  def test_readiness(self):
    self.assertTrue(self.impl.server_live())
    self.assertTrue(self.impl.server_ready())
    self.assertTrue(self.impl.model_ready("dtypes", ""))
    self.assertTrue(self.impl.model_ready("dtypes", "1"))
    self.assertTrue(self.impl.model_ready("dtypes", "stable"))
    self.assertTrue(self.impl.model_ready("table", ""))
    self.assertFalse(self.impl.model_ready("dtypes", "7"))
    self.assertFalse(self.impl.model_ready("dtypes", "nope"))
    self.assertFalse(self.impl.model_ready("nope", ""))
    self.assertFalse(self.impl.model_ready("", ""))
    metadata = self.impl.server_metadata()
    self.assertEqual(list(metadata.extensions),
                     ["binary_tensor_data", "model_repository"])

  def test_model_spec(self):
    self.assertEqual(impl_lib.model_spec("m", "").WhichOneof("version_choice"),
                     None)
    self.assertEqual(impl_lib.model_spec("m", "12").version.value, 12)
    self.assertEqual(impl_lib.model_spec("m", "v1").version_label, "v1")
    self.assertEqual(impl_lib.model_spec("m", "-1").version_label, "-1")
    self.assert_error(Code.INVALID_ARGUMENT,
                      "model version 99999999999999999999 is out of range",
                      impl_lib.model_spec, "m", "99999999999999999999")

  # ------------------------------------------------------------ repository

  def test_index_reports_what_get_model_status_reports(self):
    index = self.impl.repository_index()
    by_model = {}
    for entry in index.models:
      by_model.setdefault(entry.name, []).append(
          (entry.version, entry.state, entry.reason))
    self.assertEqual(by_model["dtypes"], [("1", "READY", ""),
                                          ("2", "READY", "")])
    for name in ("dtypes", "half", "table"):
      request = get_model_status_pb2.GetModelStatusRequest()
      request.model_spec.name = name
      model_status = self.plane.get_model_status(request, self.context(None))
      states = {str(v.version): get_model_status_pb2.ModelVersionStatus
                .State.Name(v.state) for v in model_status.model_version_status}
      self.assertEqual(
          states, {version: {"READY": "AVAILABLE"}[state]
                   for version, state, _ in by_model[name]})
    ready = self.impl.repository_index(ready_only=True)
    self.assertTrue(all(m.state == "READY" for m in ready.models))
    self.assert_error(Code.NOT_FOUND,
                      "unknown model repository 'other'; this server has one, "
                      "named ''", self.impl.repository_index, "other")

  def test_load_and_unload_parameters(self):
    context = self.context(None, timeout=30)
    load = self.impl.repository_model_load
    self.assert_error(
        Code.INVALID_ARGUMENT,
        "unexpected parameter(s) file:1/model.savedmodel for loading model "
        "'half'; accepted: base_path, model_platform, config",
        load, "", "half", {"file:1/model.savedmodel": b"x"}, context)
    self.assert_error(
        Code.INVALID_ARGUMENT, "parameter base_path must be a string, got 3",
        load, "", "half", {"base_path": 3}, context)
    self.assert_error(
        Code.INVALID_ARGUMENT,
        "unexpected key(s) max_batch_size in parameter config; accepted: "
        "base_path, model_platform", load, "", "half",
        {"config": '{"max_batch_size": 8}'}, context)
    self.assert_error(
        Code.NOT_FOUND, "Model other is not in the model configuration; give "
        "its base_path to add it", load, "", "other", {}, context)
    self.assert_error(Code.INVALID_ARGUMENT, "a model name is required", load,
                      "", "", {}, context)
    self.assert_error(
        Code.INVALID_ARGUMENT,
        "unexpected parameter(s) force for unloading model 'half'; accepted: "
        "unload_dependents", self.impl.repository_model_unload, "", "half",
        {"force": True}, context)
    # A new model by "config" (what tritonclient's load_model sends), then
    # unloaded and listed as such, then loaded back by name.
    base = half_plus_two.write_versions(os.path.join(self.root, "added"),
                                        half_plus_two.write_tf2, (5,))
    load("", "added", {"config": f'{{"base_path": "{base}"}}'}, context)
    self.assertTrue(self.impl.model_ready("added", "5"))
    self.assertTrue(self.impl.server_ready())
    self.impl.repository_model_unload("", "added",
                                      {"unload_dependents": False}, context)
    self.assertFalse(self.impl.model_ready("added", ""))
    entries = [(m.version, m.state, m.reason)
               for m in self.impl.repository_index().models
               if m.name == "added"]
    self.assertEqual(entries, [("5", "UNAVAILABLE", "unloaded")])
    load("", "added", {}, context)
    self.assertTrue(self.impl.model_ready("added", ""))
    self.impl.repository_model_unload("", "added", {}, context)

  def test_load_gives_up_at_the_deadline(self):
    context = data_plane.RequestContext(
        "TEST", None, deadline=time.monotonic() + 0.3)
    self.assertTrue(self.impl.server_ready())
    with self.assertRaises(status.ServingError) as cm:
      self.impl.repository_model_load(
          "", "empty", {"base_path": os.path.join(self.root, "empty")},
          context)
    self.assertEqual(cm.exception.code, Code.DEADLINE_EXCEEDED)
    self.assertFalse(self.impl.server_ready())
    entries = [(m.version, m.state) for m in
               self.impl.repository_index().models if m.name == "empty"]
    self.assertEqual(entries, [("", "UNAVAILABLE")])
    self.impl.repository_model_unload("", "empty", {}, self.context(None))
    self.assertTrue(self.impl.server_ready())


if __name__ == "__main__":
  absltest.main()
