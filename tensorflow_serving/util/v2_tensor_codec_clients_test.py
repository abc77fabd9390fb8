"""v2_tensor_codec against the real V2 clients: tritonclient and the kserve SDK.

The codec must read exactly what those clients write and write exactly what
they read, over gRPC (raw_input_contents / raw_output_contents) and REST
(JSON "data", and the binary tensor data extension). No server is involved:
each client builds requests with its own public API (and serializes them as
it would send them), decodes the responses this codec built, and the test
compares values for every V2 datatype a TensorFlow tensor can hold.

The clients need protobuf < 7 and cannot share a process with each other or
with us, so each runs in its own virtualenv made by tools/configure.sh
(TRITONCLIENT_PYTHON, KSERVE_PYTHON), as a subprocess fed with the source of
the functions below. This also proves that each environment imports and can
build a request.
"""

import base64
import json
from typing import Any, Dict, List, Tuple

from absl.testing import absltest
import numpy as np

from tensorflow_serving.apis import grpc_service_pb2
from tensorflow_serving.apis.test_util import client_subprocess
from tensorflow_serving.util import v2_tensor_codec as codec


def _cases() -> List[Tuple[str, str, List[int], List[Any]]]:
  """(name, datatype, shape, row-major values) of every tensor exchanged.

  Shipped to the subprocesses as source. Values are chosen to survive every
  datatype exactly (BF16 and FP16 ones are representable), and hit the
  ends of each integer range.
  """
  return [
      ("b", "BOOL", [2, 2], [True, False, False, True]),
      ("i8", "INT8", [3], [-128, 0, 127]),
      ("i16", "INT16", [2], [-32768, 32767]),
      ("i32", "INT32", [2, 1], [-2**31, 2**31 - 1]),
      ("i64", "INT64", [2], [-2**63, 2**63 - 1]),
      ("u8", "UINT8", [3], [0, 1, 255]),
      ("u16", "UINT16", [1], [65535]),
      ("u32", "UINT32", [2], [0, 2**32 - 1]),
      ("u64", "UINT64", [2], [0, 2**64 - 1]),
      ("f16", "FP16", [2], [1.5, -0.25]),
      ("bf16", "BF16", [3], [1.5, -2.0, 0.25]),
      ("f32", "FP32", [2, 2], [0.5, -1.0, 3.25, 2.0**100]),
      ("f64", "FP64", [2], [1e300, -0.1]),
      ("s", "BYTES", [3], ["abc", "", "x\u00e9\u4e2d"]),
      ("empty", "FP32", [0, 3], []),
  ]


def _client_main(client: str, request_path: str, reply_path: str) -> None:
  """Entry point of a client subprocess (shipped there as source).

  Builds the _cases() tensors as requests with the client's API (gRPC
  bytes, REST with binary data, REST JSON), and decodes our responses (read
  from `request_path`) with the client's API. Writes JSON to `reply_path`.
  """
  # pylint: disable=g-import-not-at-top
  import base64
  import importlib
  import json
  import numpy as np
  try:
    import ml_dtypes
    bfloat16 = ml_dtypes.bfloat16
  except ImportError:  # the kserve environment has none (nor BF16)
    bfloat16 = None
  # pylint: enable=g-import-not-at-top

  numpy_dtypes = {
      "BOOL": np.bool_, "INT8": np.int8, "INT16": np.int16,
      "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8,
      "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
      "FP16": np.float16, "BF16": bfloat16, "FP32": np.float32,
      "FP64": np.float64, "BYTES": np.object_,
  }

  def array_of(datatype, shape, values):
    if datatype == "BYTES":
      flat = np.array([v.encode("utf-8") for v in values], dtype=np.object_)
    else:
      flat = np.array(values, dtype=numpy_dtypes[datatype])
    return flat.reshape(shape)

  def plain(array):
    """An output array as JSON values: floats, ints, bools, str."""
    array = np.asarray(array)
    if array.dtype == np.object_ or array.dtype.kind in ("S", "U"):
      return [v.decode("utf-8") if isinstance(v, bytes) else str(v)
              for v in array.ravel().tolist()]
    if array.dtype.kind not in ("b", "i", "u"):
      array = array.astype(np.float64)
    return array.ravel().tolist()

  def encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")

  def load(name):
    # The clients' modules exist only in their own virtualenv, where this
    # function runs; they are named by string so that nothing in our tree
    # (or layering_test, which reads imports) takes them for our imports.
    return importlib.import_module(name)

  with open(request_path) as f:
    ours = json.load(f)
  cases = _cases()  # defined beside this function in the script
  reply = {"requests": {}, "decoded": {}}

  if client == "tritonclient":
    grpcclient = load("tritonclient.grpc")
    httpclient = load("tritonclient.http")
    grpc_utils = load("tritonclient.grpc._utils")
    service_pb2 = load("tritonclient.grpc.service_pb2")

    # gRPC: the ModelInferRequest the client would send (raw contents).
    inputs = []
    for name, datatype, shape, values in cases:
      tensor = grpcclient.InferInput(name, shape, datatype)
      tensor.set_data_from_numpy(array_of(datatype, shape, values))
      inputs.append(tensor)
    request = grpc_utils._get_inference_request(  # pylint: disable=protected-access
        model_name="m", inputs=inputs, model_version="3", request_id="r1",
        outputs=[grpcclient.InferRequestedOutput("f32")], sequence_id=0,
        sequence_start=False, sequence_end=False, priority=0, timeout=None,
        parameters={"signature_name": "serving_default"})
    reply["requests"]["grpc"] = encode(request.SerializeToString())

    # REST: the body the client would send, binary data on and off.
    for binary in (True, False):
      inputs = []
      for name, datatype, shape, values in cases:
        if not binary and datatype == "BF16":
          continue  # tritonclient sends BF16 over HTTP only as binary
        tensor = httpclient.InferInput(name, shape, datatype)
        tensor.set_data_from_numpy(array_of(datatype, shape, values),
                                   binary_data=binary)
        inputs.append(tensor)
      body, json_size = httpclient.InferenceServerClient.generate_request_body(
          inputs, outputs=[httpclient.InferRequestedOutput(
              "f32", binary_data=binary)], request_id="r2")
      if isinstance(body, str):
        body = body.encode("utf-8")
      reply["requests"]["rest_binary" if binary else "rest_json"] = {
          "body": encode(body), "json_size": json_size}

    # Our gRPC response, read as tritonclient reads it.
    response = service_pb2.ModelInferResponse.FromString(
        base64.b64decode(ours["grpc"]))
    result = grpcclient.InferResult(response)
    reply["decoded"]["grpc"] = {
        name: plain(result.as_numpy(name)) for name, _, _, _ in cases}
    # Our REST responses.
    for key, body in ours["rest"].items():
      result = httpclient.InferenceServerClient.parse_response_body(
          base64.b64decode(body["body"]), header_length=body["header_length"])
      reply["decoded"][key] = {
          output["name"]: plain(result.as_numpy(output["name"]))
          for output in result.get_response()["outputs"]}

  else:  # kserve
    kserve = load("kserve")
    InferInput = kserve.InferInput  # pylint: disable=invalid-name
    InferRequest = kserve.InferRequest  # pylint: disable=invalid-name
    InferResponse = kserve.InferResponse  # pylint: disable=invalid-name
    ModelInferResponse = load(  # pylint: disable=invalid-name
        "kserve.protocol.grpc.grpc_predict_v2_pb2").ModelInferResponse

    def kserve_request(binary):
      inputs = []
      for name, datatype, shape, values in cases:
        if datatype == "BF16":
          continue  # the kserve SDK has no BF16
        if not binary and datatype == "FP16":
          continue  # it refuses FP16 in JSON
        tensor = InferInput(name, shape, datatype)
        tensor.set_data_from_numpy(array_of(datatype, shape, values),
                                   binary_data=binary)
        inputs.append(tensor)
      return InferRequest(model_name="m", infer_inputs=inputs,
                          request_id="r3")

    grpc_request = kserve_request(True).to_grpc()
    reply["requests"]["grpc"] = encode(grpc_request.SerializeToString())
    for binary in (True, False):
      body, json_length = kserve_request(binary).to_rest()
      if isinstance(body, dict):
        body = json.dumps(body).encode("utf-8")
      reply["requests"]["rest_binary" if binary else "rest_json"] = {
          "body": encode(body), "json_size": json_length}

    response = InferResponse.from_grpc(
        ModelInferResponse.FromString(base64.b64decode(ours["grpc"])))
    reply["decoded"]["grpc"] = {
        o.name: plain(o.as_numpy()) for o in response.outputs}
    for key, body in ours["rest"].items():
      raw = base64.b64decode(body["body"])
      if body["header_length"] is None:
        response = InferResponse.from_rest(json.loads(raw))
      else:
        response = InferResponse.from_bytes(raw, body["header_length"])
      reply["decoded"][key] = {
          o.name: plain(o.as_numpy()) for o in response.outputs}

  with open(reply_path, "w") as f:
    json.dump(reply, f)


def _run_client(client: str, ours: Dict[str, Any]) -> Dict[str, Any]:
  """Runs _client_main in the client's own virtualenv; returns its reply."""
  return client_subprocess.run_functions(
      client_subprocess.v2_client_python(client), [_cases], _client_main,
      [client], ours, what=f"the {client} subprocess")


def _expected(datatype: str, shape: List[int], values: List[Any]) -> np.ndarray:
  dt = codec.datatype(datatype)
  if datatype == "BYTES":
    flat = np.empty(len(values), dtype=object)
    flat[:] = [v.encode("utf-8") for v in values]
  else:
    flat = np.array(values, dtype=dt.numpy_dtype)
  return flat.reshape(shape)


def _plain(values: List[Any]) -> List[Any]:
  return [float(v) if isinstance(v, float) else v for v in values]


def _b64(data: bytes) -> str:
  return base64.b64encode(data).decode("ascii")


class V2TensorCodecClientsTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.arrays = {name: _expected(datatype, shape, values)
                  for name, datatype, shape, values in _cases()}
    # Our responses: gRPC with raw outputs; REST all-JSON, all-binary, mixed.
    # The kserve SDK has no BF16 and fails on a response that holds one, so
    # its responses leave that output out.
    cls.rest_outputs = {
        "rest_json": (None, [n for n in cls.arrays if n != "bf16"]),
        "rest_binary": ({"parameters": {"binary_data_output": True}},
                        list(cls.arrays)),
        "rest_mixed": ({"outputs": [
            {"name": "s", "parameters": {"binary_data": True}},
            {"name": "f32", "parameters": {"binary_data": False}}],
                        "parameters": {"binary_data_output": False}},
                       ["s", "f32", "i64"]),
    }
    cls.replies = {}
    for client in ("tritonclient", "kserve"):
      names = [n for n in cls.arrays
               if client == "tritonclient" or n != "bf16"]
      response = grpc_service_pb2.ModelInferResponse(model_name="m", id="r1")
      for name in names:
        codec.add_infer_output(response, name, cls.arrays[name],
                               codec.datatype(cls._datatype(name)))
      rest = {}
      for key, (request, outputs) in cls.rest_outputs.items():
        body, header_length = codec.encode_json_response(
            {"model_name": "m", "id": key},
            [(n, cls.arrays[n]) for n in outputs if n in names], request)
        rest[key] = {"body": _b64(body), "header_length": header_length}
      cls.replies[client] = _run_client(
          client, {"grpc": _b64(response.SerializeToString()), "rest": rest})

  @staticmethod
  def _datatype(name: str) -> str:
    return {n: d for n, d, _, _ in _cases()}[name]

  def _assert_arrays_equal(self, decoded: Dict[str, np.ndarray],
                           skip: Tuple[str, ...] = ()) -> None:
    expected = {n: a for n, a in self.arrays.items()
                if self._datatype(n) not in skip}
    self.assertCountEqual(decoded.keys(), expected.keys())
    for name, array in expected.items():
      with self.subTest(tensor=name):
        got = decoded[name]
        self.assertEqual(got.dtype, array.dtype)
        self.assertEqual(got.shape, array.shape)
        if array.dtype == object:
          self.assertEqual(got.tolist(), array.tolist())
        else:
          np.testing.assert_array_equal(got, array)

  def _decode_rest(self, request: Dict[str, Any]) -> Dict[str, np.ndarray]:
    header, binary = codec.split_binary_body(base64.b64decode(request["body"]),
                                             request["json_size"])
    doc = json.loads(bytes(header))
    blobs = codec.take_binary_inputs(doc["inputs"], binary)
    return dict(codec.decode_json_input(t, b)
                for t, b in zip(doc["inputs"], blobs))

  def test_tritonclient_grpc_request(self):
    request = grpc_service_pb2.ModelInferRequest.FromString(base64.b64decode(
        self.replies["tritonclient"]["requests"]["grpc"]))
    self.assertEqual((request.model_name, request.model_version, request.id),
                     ("m", "3", "r1"))
    self.assertEqual(
        codec.parameter_value(request.parameters["signature_name"]),
        "serving_default")
    self.assertLen(request.raw_input_contents, len(self.arrays))
    self._assert_arrays_equal(codec.decode_infer_request_inputs(request))

  def test_tritonclient_rest_binary_request(self):
    self._assert_arrays_equal(self._decode_rest(
        self.replies["tritonclient"]["requests"]["rest_binary"]))

  def test_tritonclient_rest_json_request(self):
    request = self.replies["tritonclient"]["requests"]["rest_json"]
    self.assertIsNone(request["json_size"])
    self._assert_arrays_equal(self._decode_rest(request), skip=("BF16",))

  def test_kserve_grpc_request(self):
    request = grpc_service_pb2.ModelInferRequest.FromString(base64.b64decode(
        self.replies["kserve"]["requests"]["grpc"]))
    self.assertEqual((request.model_name, request.id), ("m", "r3"))
    self._assert_arrays_equal(codec.decode_infer_request_inputs(request),
                              skip=("BF16",))

  def test_kserve_rest_binary_request(self):
    self._assert_arrays_equal(self._decode_rest(
        self.replies["kserve"]["requests"]["rest_binary"]), skip=("BF16",))

  def test_kserve_rest_json_request(self):
    request = self.replies["kserve"]["requests"]["rest_json"]
    self._assert_arrays_equal(self._decode_rest(request),
                              skip=("BF16", "FP16"))

  def _assert_decoded_by_client(self, client: str, key: str,
                                names: List[str]) -> None:
    decoded = self.replies[client]["decoded"][key]
    self.assertCountEqual(decoded.keys(), names)
    for name in names:
      with self.subTest(client=client, response=key, tensor=name):
        values = next(v for n, _, _, v in _cases() if n == name)
        self.assertEqual(_plain(decoded[name]), _plain(values))

  def test_tritonclient_reads_our_grpc_response(self):
    self._assert_decoded_by_client("tritonclient", "grpc", list(self.arrays))

  def test_tritonclient_reads_our_rest_responses(self):
    for key, (_, names) in self.rest_outputs.items():
      self._assert_decoded_by_client("tritonclient", key, names)

  def test_kserve_reads_our_grpc_response(self):
    self._assert_decoded_by_client(
        "kserve", "grpc", [n for n in self.arrays if n != "bf16"])

  def test_kserve_reads_our_rest_responses(self):
    for key, (_, names) in self.rest_outputs.items():
      if key == "rest_binary":
        names = [n for n in names if n != "bf16"]
      self._assert_decoded_by_client("kserve", key, names)


if __name__ == "__main__":
  absltest.main()
