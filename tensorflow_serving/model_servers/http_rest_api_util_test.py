"""Tests for the REST URL parsing, ModelSpecs and status/metadata JSON."""

import gzip
import json
import zlib

from absl.testing import absltest

from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.model_servers import http_rest_api_util as util
from tensorflow_serving.util import memory_budget
from tensorflow_serving.util import status


class ParseModelInfoTest(absltest.TestCase):

  def test_predict_urls(self):
    info = util.parse_model_info("POST", "/v1/models/mnist:predict")
    self.assertEqual(info, util.ModelInfo(True, "mnist", None, None,
                                          "predict", ""))
    info = util.parse_model_info("POST", "/v1/models/m/versions/12:classify")
    self.assertEqual((info.version, info.method), (12, "classify"))
    info = util.parse_model_info("POST", "/v1/models/m%20x/labels/a%2Fb:regress")
    self.assertEqual((info.model_name, info.label), ("m x", "a/b"))

  def test_status_urls(self):
    info = util.parse_model_info("GET", "/v1/models/m/labels/stable/metadata")
    self.assertEqual((info.matched, info.label, info.subresource),
                     (True, "stable", "metadata"))
    info = util.parse_model_info("GET", "/v1/models")
    self.assertEqual((info.matched, info.model_name), (True, ""))

  def test_mismatches(self):
    self.assertFalse(util.parse_model_info("GET", "/v1/models/m:predict")
                     .matched)
    self.assertFalse(util.parse_model_info("POST", "/v1/models/m").matched)
    self.assertFalse(util.parse_model_info("DELETE", "/v1/models/m").matched)
    self.assertFalse(util.parse_model_info(
        "POST", "/v1/models/m/versions/1/labels/x:predict").matched)

  def test_version_overflow(self):
    with self.assertRaisesRegex(
        status.ServingError,
        "Failed to convert version: 99999999999999999999 to numeric."):
      util.parse_model_info("POST",
                            "/v1/models/m/versions/99999999999999999999:predict")

  def test_fill_model_spec(self):
    spec = model_pb2.ModelSpec()
    util.fill_model_spec(spec, util.ModelInfo(True, "m", 3, None))
    self.assertEqual((spec.name, spec.version.value), ("m", 3))
    spec = model_pb2.ModelSpec()
    util.fill_model_spec(spec, util.ModelInfo(True, "m", None, "canary"))
    self.assertEqual(spec.version_label, "canary")
    with self.assertRaisesRegex(
        status.ServingError,
        r"Both model version \(3\) and model version label \(x\) cannot be "
        "supplied."):
      util.fill_model_spec(model_pb2.ModelSpec(),
                           util.ModelInfo(True, "m", 3, "x"))


class JsonTest(absltest.TestCase):

  def test_status_prints_every_field(self):
    response = get_model_status_pb2.GetModelStatusResponse()
    version = response.model_version_status.add()
    version.version = 123
    version.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    self.assertEqual(json.loads(util.model_status_to_json(response)), {
        "model_version_status": [{
            "version": "123", "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]})

  def test_metadata_unpacks_the_any(self):
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    signature = signature_map.signature_def["serving_default"]
    signature.method_name = "tensorflow/serving/predict"
    signature.inputs["x"].CopyFrom(meta_graph_pb2.TensorInfo(name="x:0",
                                                             dtype=1))
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = "m"
    response.model_spec.version.value = 7
    response.metadata["signature_def"].Pack(signature_map)
    reply = json.loads(util.model_metadata_to_json(response))
    self.assertEqual(reply["model_spec"],
                     {"name": "m", "version": "7", "signature_name": ""})
    inner = reply["metadata"]["signature_def"]["signature_def"]
    self.assertEqual(inner["serving_default"]["inputs"]["x"]["dtype"],
                     "DT_FLOAT")
    self.assertNotIn("@type", json.dumps(reply))
    with self.assertRaisesRegex(status.ServingError, "signature_def"):
      util.model_metadata_to_json(
          get_model_metadata_pb2.GetModelMetadataResponse())


class ReadBodyTest(absltest.TestCase):

  def test_plain_and_compressed_bodies(self):
    data = b'{"instances": [1.0]}' * 1000
    self.assertEqual(util.read_body(data, ""), data)
    self.assertEqual(util.read_body(gzip.compress(data), "gzip"), data)
    self.assertEqual(util.read_body(zlib.compress(data), "deflate"), data)
    with self.assertRaises(status.ServingError) as e:
      util.read_body(data, "br")
    self.assertEqual(e.exception.code, status.Code.UNIMPLEMENTED)
    with self.assertRaises(status.ServingError) as e:
      util.read_body(b"not gzip at all, not at all", "gzip")
    self.assertEqual(e.exception.code, status.Code.INVALID_ARGUMENT)

  def test_inflating_past_the_limit_is_too_large(self):
    limit = 3 << 20
    bomb = gzip.compress(b" " * (limit + (1 << 20)))
    liar = bomb[:-4] + (10).to_bytes(4, "little")
    deflated = zlib.compress(b" " * (limit + (1 << 20)))
    for body, encoding in ((bomb, "gzip"), (liar, "gzip"),
                           (deflated, "deflate")):
      with self.assertRaises(util.BodyTooLargeError) as e:
        util.read_body(body, encoding, util.BodyBudget(None, limit))
      self.assertEqual(e.exception.code, status.Code.RESOURCE_EXHAUSTED)
      self.assertIn("--rest_api_max_body_bytes", e.exception.message)
    # At the limit exactly: fine.
    body = b" " * limit
    self.assertEqual(util.read_body(gzip.compress(body), "gzip",
                                    util.BodyBudget(None, limit)), body)

  def test_inflating_and_decoding_are_charged(self):
    budget = memory_budget.MemoryBudget(64 << 20)
    data = b" " * (2 << 20)
    body_budget = util.BodyBudget(budget)
    util.read_body(gzip.compress(data), "gzip", body_budget)
    # The inflated body, then DECODE_FACTOR times it for decoding.
    self.assertGreaterEqual(body_budget.charged,
                            (1 + memory_budget.DECODE_FACTOR) * len(data))
    self.assertEqual(budget.in_use, body_budget.charged)
    body_budget.release()
    self.assertEqual(budget.in_use, 0)

  def test_small_bodies_are_not_charged(self):
    budget = memory_budget.MemoryBudget(64 << 20)
    body_budget = util.BodyBudget(budget)
    util.read_body(b'{"instances": [1]}', "", body_budget)
    self.assertEqual(budget.in_use, 0)

  def test_a_full_budget_refuses_without_inflating(self):
    budget = memory_budget.MemoryBudget(8 << 20)
    held = budget.acquire(8 << 20, 0)
    body_budget = util.BodyBudget(budget, wait_seconds=0.01)
    with self.assertRaises(status.ServingError) as e:
      util.read_body(gzip.compress(b" " * (4 << 20)), "gzip", body_budget)
    self.assertEqual(e.exception.code, status.Code.RESOURCE_EXHAUSTED)
    self.assertNotIsInstance(e.exception, util.BodyTooLargeError)
    self.assertIn("--request_memory_budget_bytes", e.exception.message)
    body_budget.release()
    held.release()
    self.assertEqual(budget.in_use, 0)


if __name__ == "__main__":
  absltest.main()
