"""End-to-end tests of the PredictionService over a real gRPC channel.

A real ServerCore loads half_plus_two SavedModels that the test exports
(TF1 with versions 1 and 7 and a label, TF2, Keras) through the real
SavedModelBundleSourceAdapter; clients call it with the official stubs. Every
round trip and error case is checked as a client sees it: status code and
details.
"""

import concurrent.futures
import os

import grpc
import numpy as np
import tensorflow as tf
from absl.testing import absltest
from absl.testing import parameterized
from google.protobuf import text_format

from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2
from tensorflow_serving.model_servers import data_plane
from tensorflow_serving.model_servers import prediction_service_impl
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter as adapter_lib
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.servables.tensorflow.test_util import requests
from tensorflow_serving.util import metrics

_CLASSIFY = "tensorflow/serving/classify"
_REGRESS = "tensorflow/serving/regress"
_MODELS = ("half_tf1", "half_tf2")


def _start_server(core, options):
  server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8))
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      prediction_service_impl.PredictionServiceImpl(
          data_plane.DataPlane(core), options), server)
  port = server.add_insecure_port("localhost:0")
  server.start()
  channel = grpc.insecure_channel(f"localhost:{port}")
  return server, channel, prediction_service_pb2_grpc.PredictionServiceStub(
      channel)


def _predict_request(model, signature_name="", version=None, label=None,
                     **inputs) -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  request.model_spec.signature_name = signature_name
  if version is not None:
    request.model_spec.version.value = version
  if label is not None:
    request.model_spec.version_label = label
  for alias, value in inputs.items():
    request.inputs[alias].CopyFrom(
        value if isinstance(value, tensor_pb2.TensorProto) else
        tf.make_tensor_proto(value))
  return request


def _x(*values) -> np.ndarray:
  return np.array([[v] for v in values], np.float32)


class PredictionServiceTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    base = half_plus_two.fresh_dir("prediction_service_test")
    paths = {
        "half_tf1": half_plus_two.write_versions(
            os.path.join(base, "half_tf1"), half_plus_two.write_tf1, (1, 7)),
        "half_tf2": half_plus_two.write_versions(
            os.path.join(base, "half_tf2"), half_plus_two.write_tf2, (3,)),
        "half_keras": half_plus_two.write_versions(
            os.path.join(base, "half_keras"), half_plus_two.write_keras),
    }
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(
        f"""model_config_list {{
          config {{
            name: "half_tf1" base_path: "{paths['half_tf1']}"
            model_platform: "tensorflow"
            model_version_policy {{ all {{}} }}
            version_labels {{ key: "stable" value: 1 }}
          }}
          config {{
            name: "half_tf2" base_path: "{paths['half_tf2']}"
            model_platform: "tensorflow"
          }}
          config {{
            name: "half_keras" base_path: "{paths['half_keras']}"
            model_platform: "tensorflow"
          }}
        }}""", config)
    cls.core = server_core_lib.ServerCore.create(
        server_core_lib.ServerCore.Options(
            model_server_config=config,
            platform_source_adapters={
                "tensorflow": adapter_lib.SavedModelBundleSourceAdapter
            },
            file_system_poll_wait_seconds=0,
            num_initial_load_threads=1,
            # The label names a version of the initial config, which is not
            # loaded yet when ServerCore checks the labels.
            allow_version_labels_for_unavailable_models=True))
    options = prediction_service_impl.PredictionServiceImpl.Options
    cls.server, cls.channel, cls.stub = _start_server(cls.core, options())
    (cls.content_server, cls.content_channel,
     cls.content_stub) = _start_server(
         cls.core, options(enable_serialization_as_tensor_content=True))

  @classmethod
  def tearDownClass(cls):
    for channel in (cls.channel, cls.content_channel):
      channel.close()
    for server in (cls.server, cls.content_server):
      server.stop(None)
    cls.core.stop()
    super().tearDownClass()

  def _assert_error(self, call, request, code, details=None, contains=()):
    with self.assertRaises(grpc.RpcError) as ctx:
      call(request, timeout=30)
    self.assertEqual(ctx.exception.code(), code, ctx.exception.details())
    if details is not None:
      self.assertEqual(ctx.exception.details(), details)
    for fragment in ([contains] if isinstance(contains, str) else contains):
      self.assertIn(fragment, ctx.exception.details())
    return ctx.exception.details()

  # ------------------------------------------------------------- Predict

  @parameterized.parameters(*_MODELS)
  def test_predict(self, model):
    response = self.stub.Predict(_predict_request(model, x=_x(1.0, 2.0)),
                                 timeout=30)
    self.assertEqual(response.model_spec.name, model)
    self.assertEqual(response.model_spec.signature_name, "serving_default")
    self.assertEqual(response.model_spec.version.value,
                     7 if model == "half_tf1" else 3)
    self.assertEqual(list(response.outputs["y"].float_val), [2.5, 3.0])
    self.assertEqual(response.outputs["y"].tensor_content, b"")

  def test_predict_keras_export(self):
    response = self.stub.Predict(_predict_request("half_keras", x=_x(6.0)),
                                 timeout=30)
    self.assertEqual(list(response.outputs["output_0"].float_val), [5.0])
    self.assertEqual(response.model_spec.version.value, 1)

  @parameterized.parameters(*_MODELS)
  def test_predict_tensor_content(self, model):
    response = self.content_stub.Predict(
        _predict_request(model, x=_x(2.0)), timeout=30)
    self.assertEmpty(response.outputs["y"].float_val)
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["y"]),
                                  [[3.0]])

  def test_versions_and_labels(self):
    for spec, version in (({}, 7), ({"version": 1}, 1), ({"version": 7}, 7),
                          ({"label": "stable"}, 1)):
      response = self.stub.Predict(
          _predict_request("half_tf1", x=_x(0.0), **spec), timeout=30)
      self.assertEqual(response.model_spec.version.value, version)

  @parameterized.parameters(*_MODELS)
  def test_string_int_and_multi_input_signatures(self, model):
    response = self.stub.Predict(
        _predict_request(model, "greet", name=np.array([b"ann"], object)),
        timeout=30)
    self.assertEqual(list(response.outputs["greeting"].string_val),
                     [b"hi ann"])
    response = self.stub.Predict(
        _predict_request(model, "int_plus_one", i=np.array([41], np.int64)),
        timeout=30)
    self.assertEqual(list(response.outputs["i_plus_one"].int64_val), [42])
    request = _predict_request(model, "sum_and_diff",
                               a=np.array([5.0], np.float32),
                               b=np.array([2.0], np.float32))
    request.output_filter.append("sum")
    response = self.stub.Predict(request, timeout=30)
    self.assertEqual(list(response.outputs), ["sum"])
    self.assertEqual(list(response.outputs["sum"].float_val), [7.0])

  def test_shape_not_checked_against_signature(self):
    # [-1,1] declared; a flat [3] tensor is fed as sent.
    response = self.stub.Predict(
        _predict_request("half_tf2", x=np.array([2.0, 3.0, 4.0], np.float32)),
        timeout=30)
    self.assertEqual(list(response.outputs["y"].float_val), [3.0, 3.5, 4.0])

  def test_unknown_model_version_label(self):
    code = grpc.StatusCode
    self._assert_error(self.stub.Predict, _predict_request("nope", x=_x(1)),
                       code.NOT_FOUND,
                       "Servable not found for request: Latest(nope)")
    self._assert_error(
        self.stub.Predict, _predict_request("half_tf1", version=99, x=_x(1)),
        code.NOT_FOUND, "Servable not found for request: Specific(half_tf1, 99)")
    self._assert_error(
        self.stub.Predict, _predict_request("half_tf1", label="beta", x=_x(1)),
        code.INVALID_ARGUMENT, "Unrecognized servable version label: beta")
    self._assert_error(self.stub.Predict, _predict_request("", x=_x(1)),
                       code.INVALID_ARGUMENT,
                       "ModelSpec has no name specified.")

  @parameterized.parameters(*_MODELS)
  def test_predict_errors(self, model):
    code = grpc.StatusCode
    self._assert_error(self.stub.Predict,
                       _predict_request(model, "nope", x=_x(1)),
                       code.FAILED_PRECONDITION,
                       'Serving signature key "nope" not found.')
    self._assert_error(
        self.stub.Predict,
        _predict_request(model, "sum_and_diff", a=np.zeros(1, np.float32)),
        code.INVALID_ARGUMENT,
        "input size does not match signature: 1!=2 len({a}) != len({a,b}). "
        "Sent extra: {}. Missing but required: {b}.")
    self._assert_error(
        self.stub.Predict, _predict_request(model, x=_x(1), z=_x(1)),
        code.INVALID_ARGUMENT,
        "input size does not match signature: 2!=1 len({x,z}) != len({x}). "
        "Sent extra: {z}. Missing but required: {}.")
    self._assert_error(self.stub.Predict, _predict_request(model, z=_x(1)),
                       code.INVALID_ARGUMENT,
                       contains="Signature input alias: x(feed name: ")
    request = _predict_request(model, x=_x(1))
    request.output_filter.append("nope")
    self._assert_error(
        self.stub.Predict, request, code.INVALID_ARGUMENT,
        "output tensor alias not found in signature: nope Outputs expected "
        "to be in the set {y}.")
    self._assert_error(
        self.stub.Predict,
        _predict_request(model, x=np.ones((1, 1), np.int32)),
        code.INVALID_ARGUMENT,
        "Expects arg[0] to be float but int32 is provided")
    # The second feed in sorted tensor-name order (a_in:0, b_in:0 in TF1;
    # TF2's placeholders sort the same way).
    self._assert_error(
        self.stub.Predict,
        _predict_request(model, "sum_and_diff", a=np.zeros(1, np.float32),
                         b=np.zeros(1, np.int64)),
        code.INVALID_ARGUMENT,
        "Expects arg[1] to be float but int64 is provided")
    malformed = tensor_pb2.TensorProto(dtype=1, tensor_content=b"\0" * 6)
    malformed.tensor_shape.dim.add().size = 1
    self._assert_error(self.stub.Predict, _predict_request(model, x=malformed),
                       code.INVALID_ARGUMENT,
                       contains="tensor parsing error: x: tensor_content has "
                       "6 bytes but shape [1] of DT_FLOAT needs 4")
    self._assert_error(
        self.stub.Predict,
        _predict_request(model, "sum_and_diff", a=np.zeros(2, np.float32),
                         b=np.zeros(3, np.float32)),
        code.INVALID_ARGUMENT, contains="Incompatible shapes")

  def test_long_error_is_truncated(self):
    details = self._assert_error(
        self.stub.Predict, _predict_request("half_tf1", x=_x(1),
                                            **{"z" * 2000: _x(1)}),
        grpc.StatusCode.INVALID_ARGUMENT)
    self.assertLen(details, 1024 + len("...TRUNCATED"))
    self.assertTrue(details.endswith("z...TRUNCATED"))

  def test_request_count_metric(self):
    ok = metrics.REQUEST_COUNT.get_cell("half_tf2", "OK", "Predict",
                                        metrics.GRPC, "3", "serving_default")
    # A model the server does not have is counted under the placeholder.
    not_found = metrics.REQUEST_COUNT.get_cell(
        metrics.UNKNOWN, "NOT_FOUND", "Predict", metrics.GRPC,
        metrics.UNKNOWN, metrics.UNKNOWN)
    ok_before, not_found_before = ok.value(), not_found.value()
    self.stub.Predict(_predict_request("half_tf2", x=_x(1)), timeout=30)
    with self.assertRaises(grpc.RpcError):
      self.stub.Predict(_predict_request("nope2", x=_x(1)), timeout=30)
    self.assertEqual(ok.value(), ok_before + 1)
    self.assertEqual(not_found.value(), not_found_before + 1)

  def test_concurrent_predicts(self):
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
      futures = [
          pool.submit(self.stub.Predict,
                      _predict_request(_MODELS[i % 2], x=_x(float(i))),
                      timeout=60) for i in range(64)
      ]
      for i, future in enumerate(futures):
        self.assertEqual(list(future.result().outputs["y"].float_val),
                         [0.5 * i + 2])

  # ---------------------------------------------------- Classify, Regress

  @parameterized.parameters(*_MODELS)
  def test_classify(self, model):
    response = self.stub.Classify(
        requests.classification_request("classify_x_to_y", 2.0, 4.0,
                                        model=model), timeout=30)
    self.assertEqual(response.model_spec.signature_name, "classify_x_to_y")
    self.assertEqual([(c.classes[0].label, c.classes[0].score)
                      for c in response.result.classifications],
                     [("", 3.0), ("", 4.0)])
    response = self.stub.Classify(
        requests.classification_request("classify_x_to_y_with_classes", 2.0,
                                        model=model), timeout=30)
    cls = response.result.classifications[0].classes[0]
    self.assertEqual((cls.label, cls.score), ("x=2.0", 3.0))

  @parameterized.parameters(*_MODELS)
  def test_regress(self, model):
    request = requests.regression_request("regress_x_to_y", model=model)
    request.input.CopyFrom(
        requests.example_input(None, 6.0, context={"x": 2.0}))
    response = self.stub.Regress(request, timeout=30)
    self.assertEqual([r.value for r in response.result.regressions],
                     [3.0, 5.0])
    self.assertEqual(response.model_spec.name, model)

  @parameterized.parameters(*_MODELS)
  def test_classify_regress_errors(self, model):
    code = grpc.StatusCode
    self._assert_error(
        self.stub.Classify,
        requests.classification_request("nope", 1.0, model=model),
        code.INVALID_ARGUMENT, "No signature was found with the name: nope")
    self._assert_error(
        self.stub.Classify,
        requests.classification_request("classify_x_to_y", model=model),
        code.INVALID_ARGUMENT, "Input is empty.")
    self._assert_error(
        self.stub.Regress,
        requests.regression_request("sum_and_diff", 1.0, model=model),
        code.INVALID_ARGUMENT, "Expected one input Tensor.")
    self._assert_error(
        self.stub.Regress,
        requests.regression_request("regress_x_to_y", 1.0, model="nope"),
        code.NOT_FOUND, "Servable not found for request: Latest(nope)")
    # tf.Example features of the wrong kind, missing or of the wrong length:
    # TensorFlow's ParseExample texts, which upstream passes on as they are.
    request = requests.classification_request("classify_x_to_y", model=model)
    request.input.example_list.examples.add().features.feature[
        "x"].int64_list.value.append(2)
    self._assert_error(
        self.stub.Classify, request, code.INVALID_ARGUMENT,
        contains="Name: <unknown>, Key: x, Index: 0.  Data types don't match. "
        "Data type: int64 but expected type: float")
    self._assert_error(
        self.stub.Regress,
        requests.regression_request("regress_x_to_y", None, model=model),
        code.INVALID_ARGUMENT,
        contains="Name: <unknown>, Feature: x (data type: float) is required "
        "but could not be found.")
    request = requests.regression_request("regress_x_to_y", model=model)
    request.input.example_list.examples.add().features.feature[
        "x"].float_list.value.extend([2.0, 3.0])
    self._assert_error(
        self.stub.Regress, request, code.INVALID_ARGUMENT,
        contains="Name: <unknown>, Key: x, Index: 0.  Number of float values "
        "!= expected.  Values size: 2 but output shape: [1]")

  # ------------------------------------------------------- MultiInference

  def test_multi_inference_tf1(self):
    response = self.stub.MultiInference(
        requests.multi_inference_request(
            [("regress_x_to_y", _REGRESS), ("regress_x_to_y2", _REGRESS),
             ("classify_x_to_y", _CLASSIFY)], 2.0, model="half_tf1"),
        timeout=30)
    self.assertLen(response.results, 3)
    self.assertEqual(
        response.results[0].regression_result.regressions[0].value, 3.0)
    self.assertEqual(
        response.results[1].regression_result.regressions[0].value, 4.0)
    self.assertEqual(
        response.results[2].classification_result.classifications[0]
        .classes[0].score, 3.0)
    self.assertEqual(response.results[2].model_spec.version.value, 7)
    self.assertEqual(response.results[2].model_spec.signature_name,
                     "classify_x_to_y")

  @parameterized.parameters(*_MODELS)
  def test_multi_inference_as_upstream(self, model):
    # Upstream's testMultiInference / testMultiInferenceTf2, over the wire.
    # In the TF2 export regress_x_to_y and classify_x_to_y take their
    # examples through different input tensors; both tasks still run.
    metadata = self.stub.GetModelMetadata(
        get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec={"name": model}, metadata_field=["signature_def"]),
        timeout=30)
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signature_defs)
    input_tensors = {
        signature_defs.signature_def[name].inputs["inputs"].name
        for name in ("regress_x_to_y", "classify_x_to_y")
    }
    self.assertLen(input_tensors, 1 if model == "half_tf1" else 2)

    request = requests.multi_inference_request(
        [("regress_x_to_y", _REGRESS), ("classify_x_to_y", _CLASSIFY)], 2.0,
        model=model)
    response = self.stub.MultiInference(request, timeout=30)
    self.assertLen(response.results, 2)
    self.assertEqual(
        response.results[0].regression_result.regressions[0].value, 3.0)
    self.assertEqual(
        response.results[1].classification_result.classifications[0]
        .classes[0].score, 3.0)
    for task, result in zip(request.tasks, response.results):
      self.assertEqual(result.model_spec.name, model)
      self.assertEqual(result.model_spec.signature_name,
                       task.model_spec.signature_name)
      self.assertEqual(result.model_spec.version.value,
                       7 if model == "half_tf1" else 3)

  def test_multi_inference_errors(self):
    code = grpc.StatusCode
    request = requests.multi_inference_request(
        [("regress_x_to_y", _REGRESS), ("regress_x_to_y2", _REGRESS)], 1.0,
        model="half_tf1")
    request.tasks[1].model_spec.name = "half_tf2"
    self._assert_error(
        self.stub.MultiInference, request, code.INVALID_ARGUMENT,
        "All ModelSpecs in a MultiInferenceRequest must access the same model "
        "name.")
    self._assert_error(
        self.stub.MultiInference,
        requests.multi_inference_request(
            [("serving_default", "tensorflow/serving/predict")], 1.0,
            model="half_tf1"), code.UNIMPLEMENTED,
        "Unsupported signature method_name: tensorflow/serving/predict")
    self._assert_error(
        self.stub.MultiInference,
        requests.multi_inference_request([("regress_x_to_y", _REGRESS)], 1.0,
                                         model="nope"), code.NOT_FOUND,
        "Servable not found for request: Latest(nope)")

  # ----------------------------------------------------- GetModelMetadata

  @parameterized.parameters(*_MODELS)
  def test_get_model_metadata(self, model):
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        metadata_field=["signature_def"])
    request.model_spec.name = model
    response = self.stub.GetModelMetadata(request, timeout=30)
    self.assertEqual(response.model_spec.name, model)
    self.assertEqual(response.model_spec.version.value,
                     7 if model == "half_tf1" else 3)
    self.assertFalse(response.model_spec.signature_name)
    signature_def_map = get_model_metadata_pb2.SignatureDefMap()
    self.assertTrue(
        response.metadata["signature_def"].Unpack(signature_def_map))
    for name in half_plus_two.SIGNATURES:
      self.assertIn(name, signature_def_map.signature_def)
    self.assertEqual(
        signature_def_map.signature_def["serving_default"].inputs["x"].dtype,
        1)

  def test_get_model_metadata_errors(self):
    code = grpc.StatusCode
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "nope"
    # Checked before the model is looked up, as upstream.
    self._assert_error(
        self.stub.GetModelMetadata, request, code.INVALID_ARGUMENT,
        "GetModelMetadataRequest must specify at least one metadata_field")
    request.metadata_field.append("signature_def")
    self._assert_error(self.stub.GetModelMetadata, request, code.NOT_FOUND,
                       "Servable not found for request: Latest(nope)")
    request.model_spec.name = "half_tf1"
    request.metadata_field.append("graph")
    self._assert_error(self.stub.GetModelMetadata, request,
                       code.INVALID_ARGUMENT,
                       "Metadata field graph is not supported")
    self._assert_error(
        self.stub.GetModelMetadata,
        get_model_metadata_pb2.GetModelMetadataRequest(
            metadata_field=["signature_def"]), code.INVALID_ARGUMENT,
        "Missing ModelSpec")


if __name__ == "__main__":
  absltest.main()
