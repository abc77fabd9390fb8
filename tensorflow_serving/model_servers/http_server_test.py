"""End-to-end tests of the REST API over real HTTP.

A real ServerCore loads real SavedModels (half_plus_two, exported by the
test, and a deliberately slow model); HttpRestServer serves them on a free
port and the tests talk to it with http.client.
"""

import base64
import gzip
import http.client
import json
import os
import socket
import tempfile
import threading

from absl.testing import absltest
import tensorflow as tf

from tensorflow_serving.config import monitoring_config_pb2
from tensorflow_serving.model_servers import data_plane
from tensorflow_serving.model_servers import http_server
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.model_servers.test_util import server_core_test_util
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import status

# Iterations that keep the slow model busy for ~0.4 s (far over its timeout).
_SLOW_ITERATIONS = 100000
_SHORT_TIMEOUT_MS = 100


def _write_slow_model(export_dir: str) -> None:
  """A TF1 SavedModel that counts to max(n) in a while loop."""
  with tf.Graph().as_default():
    n = tf.compat.v1.placeholder(tf.int32, [None], name="n")
    limit = tf.reduce_max(n)
    count = tf.while_loop(lambda i: i < limit, lambda i: i + 1,
                          [tf.constant(0)])
    count = tf.reshape(count, [1])
    with tf.compat.v1.Session() as sess:
      builder = tf.compat.v1.saved_model.Builder(export_dir)
      signature = tf.compat.v1.saved_model.predict_signature_def(
          inputs={"n": n}, outputs={"count": count})
      builder.add_meta_graph_and_variables(
          sess, ["serve"], signature_def_map={"serving_default": signature})
      builder.save()


def _serve_half_and_slow() -> server_core_lib.ServerCore:
  """A ServerCore serving half_plus_two ("half", version 123) and the slow
  model ("slow")."""
  base = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
  half_plus_two.write_tf1(os.path.join(base, "half", "123"))
  _write_slow_model(os.path.join(base, "slow", "1"))
  config = server_core_test_util.model_config(
      {"half": os.path.join(base, "half"),
       "slow": os.path.join(base, "slow")},
      platform=server_core_lib.TENSORFLOW_MODEL_PLATFORM)
  return server_core_lib.ServerCore.create(server_core_test_util.options(
      config, platform_source_adapters={
          server_core_lib.TENSORFLOW_MODEL_PLATFORM:
              saved_model_bundle_source_adapter.SavedModelBundleSourceAdapter
      }))


class HttpServerTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.core = _serve_half_and_slow()
    monitoring = monitoring_config_pb2.MonitoringConfig()
    monitoring.prometheus_config.enable = True
    cls.server = http_server.HttpRestServer(
        data_plane.DataPlane(cls.core), http_server.HttpRestServer.Options(
            num_threads=4, monitoring_config=monitoring, host="127.0.0.1"))
    cls.port = cls.server.start(0)
    # Same core, CORS on, a short timeout and a custom metrics path.
    monitoring.prometheus_config.path = "/custom/metrics"
    cls.cors_server = http_server.HttpRestServer(
        data_plane.DataPlane(cls.core), http_server.HttpRestServer.Options(
            num_threads=2, timeout_in_ms=_SHORT_TIMEOUT_MS,
            enable_cors_support=True, monitoring_config=monitoring,
            host="127.0.0.1"))
    cls.cors_port = cls.cors_server.start(0)
    # Same core, a short timeout, and every measured call run on the loop.
    cls.inline_server = http_server.HttpRestServer(
        data_plane.DataPlane(cls.core), http_server.HttpRestServer.Options(
            num_threads=2, timeout_in_ms=_SHORT_TIMEOUT_MS,
            inline_max_micros=600 * 1000000, host="127.0.0.1"))
    cls.inline_port = cls.inline_server.start(0)

  @classmethod
  def tearDownClass(cls):
    cls.server.stop()
    cls.cors_server.stop()
    cls.inline_server.stop()
    cls.core.stop()
    super().tearDownClass()

  def call(self, method, path, body=None, headers=None, port=None):
    conn = http.client.HTTPConnection("127.0.0.1", port or self.port,
                                      timeout=30)
    try:
      if isinstance(body, str):
        body = body.encode()
      conn.request(method, path, body=body, headers=headers or {})
      response = conn.getresponse()
      return response.status, dict(response.getheaders()), response.read()
    finally:
      conn.close()

  def call_json(self, method, path, body=None, headers=None, port=None):
    code, headers, data = self.call(method, path, body, headers, port)
    self.assertEqual(headers.get("Content-Type"), "application/json")
    return code, json.loads(data)

  def assertError(self, method, path, body, http_code, message, port=None):
    code, reply = self.call_json(method, path, body, port=port)
    self.assertEqual((code, reply), (http_code, {"error": message}))

  # ------------------------------------------------------------ status

  def test_model_status(self):
    expected = {"model_version_status": [{
        "version": "123", "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]}
    for path in ("/v1/models/half", "/v1/models/half/versions/123",
                 "/v1/models/half/labels/anything"):
      self.assertEqual(self.call_json("GET", path), (200, expected), path)

  def test_model_status_errors(self):
    self.assertError("GET", "/v1/models/half/versions/9", None, 404,
                     "Could not find version 9 of model half")
    self.assertError("GET", "/v1/models/nope", None, 404,
                     "Could not find any versions of model nope")
    # Without a name, only GET /v1/models itself is a call (the list).
    self.assertError("GET", "/v1/models/versions/1", None, 400,
                     "Missing model name in request.")

  def test_model_list(self):
    # Not in upstream (where it is a 400 "Missing model name in request.").
    available = {"error_code": "OK", "error_message": ""}
    code, reply = self.call_json("GET", "/v1/models")
    self.assertEqual(code, 200)
    self.assertEqual(reply, {"models": [
        {"name": "half",
         "model_version_status": [{"version": "123", "state": "AVAILABLE",
                                   "status": available}],
         "status": available},
        {"name": "slow",
         "model_version_status": [{"version": "1", "state": "AVAILABLE",
                                   "status": available}],
         "status": available},
    ]})
    # Each entry is what GET /v1/models/{name} says, plus name and status.
    self.assertEqual(
        self.call_json("GET", "/v1/models/half")[1]["model_version_status"],
        reply["models"][0]["model_version_status"])
    self.assertEqual(self.call("POST", "/v1/models", "{}")[0], 400)

  def test_model_metadata(self):
    code, reply = self.call_json("GET", "/v1/models/half/metadata")
    self.assertEqual(code, 200)
    self.assertEqual(reply["model_spec"],
                     {"name": "half", "version": "123", "signature_name": ""})
    signatures = reply["metadata"]["signature_def"]["signature_def"]
    self.assertContainsSubset(half_plus_two.SIGNATURES, signatures)
    x = signatures["serving_default"]["inputs"]["x"]
    self.assertEqual(x["dtype"], "DT_FLOAT")
    self.assertEqual(x["tensor_shape"]["dim"][0]["size"], "-1")
    self.assertEqual(signatures["serving_default"]["method_name"],
                     "tensorflow/serving/predict")

  # ------------------------------------------------------------ predict

  def test_predict_row_format(self):
    code, headers, data = self.call(
        "POST", "/v1/models/half:predict", '{"instances": [1.0, 2.0, 5.0]}')
    self.assertEqual(code, 200)
    self.assertEqual(headers["Content-Type"], "application/json")
    self.assertEqual(data.decode(),
                     '{\n    "predictions": [2.5, 3.0, 4.5\n    ]\n}')
    for path in ("/v1/models/half/versions/123:predict",
                 "/V1/MODELS/half:predict"):
      self.assertEqual(
          self.call_json("POST", path, '{"instances": [[4]]}'),
          (200, {"predictions": [[4.0]]}), path)

  def test_predict_columnar_format_and_named_outputs(self):
    body = json.dumps({"signature_name": "sum_and_diff",
                       "inputs": {"a": [1, 2], "b": [3, 5]}})
    self.assertEqual(
        self.call_json("POST", "/v1/models/half:predict", body),
        (200, {"outputs": {"sum": [4.0, 7.0], "diff": [-2.0, -3.0]}}))
    body = json.dumps({"signature_name": "sum_and_diff",
                       "instances": [{"a": 1, "b": 3}, {"a": 2, "b": 5}]})
    self.assertEqual(
        self.call_json("POST", "/v1/models/half:predict", body),
        (200, {"predictions": [{"sum": 4.0, "diff": -2.0},
                               {"sum": 7.0, "diff": -3.0}]}))

  def test_predict_b64_and_ints(self):
    body = json.dumps({"signature_name": "greet", "instances": [
        {"b64": base64.b64encode(b"bob").decode()}, "ann"]})
    self.assertEqual(self.call_json("POST", "/v1/models/half:predict", body),
                     (200, {"predictions": ["hi bob", "hi ann"]}))
    body = json.dumps({"signature_name": "int_plus_one", "inputs": [1, 41]})
    self.assertEqual(self.call_json("POST", "/v1/models/half:predict", body),
                     (200, {"outputs": [2, 42]}))

  def test_predict_nan_and_infinity(self):
    code, _, data = self.call("POST", "/v1/models/half:predict",
                              '{"instances": [NaN, Infinity, -Infinity]}')
    self.assertEqual(code, 200)
    self.assertEqual(data.decode(),
                     '{\n    "predictions": [NaN, Infinity, -Infinity\n'
                     "    ]\n}")

  def test_gzip_body_and_any_content_type(self):
    body = gzip.compress(b'{"instances": [2.0]}')
    self.assertEqual(
        self.call_json("POST", "/v1/models/half:predict", body,
                       {"Content-Encoding": "gzip",
                        "Content-Type": "application/x-www-form-urlencoded"}),
        (200, {"predictions": [3.0]}))
    code, reply = self.call_json("POST", "/v1/models/half:predict",
                                 b"not gzip", {"Content-Encoding": "gzip"})
    self.assertEqual(code, 400)
    self.assertIn("Failed to decompress", reply["error"])

  def test_predict_errors(self):
    self.assertError("POST", "/v1/models/nope:predict", '{"instances": [1]}',
                     404, "Servable not found for request: Latest(nope)")
    self.assertError("POST", "/v1/models/half/versions/7:predict",
                     '{"instances": [1]}', 404,
                     "Servable not found for request: Specific(half, 7)")
    self.assertError("POST", "/v1/models/half:predict", "", 400,
                     "JSON Parse error: The document is empty")
    self.assertError("POST", "/v1/models/half:predict", '{"instances": [1,',
                     400, "JSON Parse error: Invalid value. at offset: 17")
    self.assertError("POST", "/v1/models/half:predict", '{"signature": 1}',
                     400, "Missing 'inputs' or 'instances' key")
    self.assertError(
        "POST", "/v1/models/half:predict",
        '{"signature_name": "nope", "instances": [1]}', 400,
        'Serving signature name: "nope" not found in signature def')
    self.assertError(
        "POST", "/v1/models/half:predict", '{"instances": ["a"]}', 400,
        "Failed to process element: 0 of 'instances' list. Error: "
        'INVALID_ARGUMENT: JSON Value: "a" Type: String is not of expected '
        "type: float")
    self.assertError(
        "POST", "/v1/models/half:predict", '{"instances": [[1, 2], [3]]}',
        400, "Failed to process element: 1 of 'instances' list. Error: "
        "INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1")
    self.assertError(
        "POST", "/v1/models/half:predict",
        '{"signature_name": "greet", "instances": [{"b64": "%%%"}]}', 400,
        "Failed to process element: 0 of 'instances' list. Error: "
        "INVALID_ARGUMENT: Unable to base64 decode")
    self.assertError("POST", "/v1/models/half/labels/stable:predict",
                     '{"instances": [1]}', 400,
                     "Unrecognized servable version label: stable")

  def test_malformed_requests(self):
    self.assertError("PUT", "/v1/models/half", None, 400,
                     "Malformed request: PUT /v1/models/half")
    self.assertError("POST", "/v1/models/half:explain", "{}", 400,
                     "Malformed request: POST /v1/models/half:explain")
    self.assertError("GET", "/v1/models/half:predict", None, 400,
                     "Malformed request: GET /v1/models/half:predict")
    code, _, data = self.call("GET", "/healthz")
    self.assertEqual((code, data), (404, b""))

  # ------------------------------------------------------- classify/regress

  def test_classify_and_regress(self):
    body = json.dumps({"signature_name": "classify_x_to_y",
                       "examples": [{"x": 1.0}, {"x": 3.0}]})
    self.assertEqual(
        self.call_json("POST", "/v1/models/half:classify", body),
        (200, {"results": [[["", 2.5]], [["", 3.5]]]}))
    body = json.dumps({"signature_name": "regress_x_to_y",
                       "examples": [{"x": 1.0}, {"x": 3.0}]})
    code, headers, data = self.call("POST", "/v1/models/half:regress", body)
    self.assertEqual((code, data.decode()),
                     (200, '{\n    "results": [2.5, 3.5]\n}'))
    body = json.dumps({"signature_name": "regress_x_to_y2",
                       "context": {"x2": 1.0}, "examples": [{"x": 1.0}]})
    self.assertEqual(self.call_json("POST", "/v1/models/half:regress", body),
                     (200, {"results": [3.5]}))

  def test_classify_errors(self):
    self.assertError(
        "POST", "/v1/models/half:classify", '{"signature_name": "x"}', 400,
        'JSON Value: {\n    "signature_name": "x"\n} When method is '
        "classify, key 'examples' is expected and was not found")
    self.assertError(
        "POST", "/v1/models/half:regress",
        '{"signature_name": "nope", "examples": [{"x": 1.0}]}', 400,
        "No signature was found with the name: nope")

  # ------------------------------------------------------------ CORS

  def test_cors_headers_only_with_the_flag(self):
    cors = {"Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "POST, GET",
            "Access-Control-Allow-Headers": "Content-Type"}
    _, headers, _ = self.call("GET", "/v1/models/half", port=self.cors_port)
    self.assertDictContainsSubset(cors, headers)
    _, headers, _ = self.call("POST", "/v1/models/nope:predict", "{}",
                              port=self.cors_port)
    self.assertDictContainsSubset(cors, headers)
    _, headers, _ = self.call("GET", "/v1/models/half")
    self.assertNotIn("Access-Control-Allow-Origin", headers)

  def test_preflight(self):
    code, headers, _ = self.call(
        "OPTIONS", "/v1/models/half:predict",
        headers={"Origin": "https://example.com",
                 "Access-Control-Request-Method": "POST"},
        port=self.cors_port)
    self.assertEqual(code, 200)
    self.assertEqual(headers["Access-Control-Allow-Methods"], "POST, GET")
    code, headers, _ = self.call("OPTIONS", "/v1/models/half",
                                 headers={"Origin": "http://localhost:3000"})
    self.assertEqual(code, 200)
    self.assertNotIn("Access-Control-Allow-Origin", headers)
    self.assertError("OPTIONS", "/v1/models/half", None, 400,
                     "Origin header is missing in CORS preflight",
                     port=self.cors_port)

  # ------------------------------------------------------------ timeout

  def test_timeout_is_504(self):
    self.assertError(
        "POST", "/v1/models/slow:predict",
        json.dumps({"instances": [_SLOW_ITERATIONS]}), 504,
        "Deadline exceeded: the request took longer than "
        f"{_SHORT_TIMEOUT_MS} ms", port=self.cors_port)
    # The default server's 30 s limit lets a short run finish.
    self.assertEqual(
        self.call_json("POST", "/v1/models/slow:predict",
                       '{"instances": [10]}'),
        (200, {"predictions": [10]}))

  def test_timeout_is_504_for_a_call_run_on_the_loop(self):
    # The first call of a kind runs on the pool and is measured; after it,
    # calls of the same kind (path, body size class) run on the loop, where
    # the data plane's check after the call answers the late one.
    short, slow = '{"instances": [10]}', '{"instances": [%d]}' % (
        _SLOW_ITERATIONS)
    self.assertEqual(len(short).bit_length(), len(slow).bit_length())
    for _ in range(2):
      self.assertEqual(
          self.call_json("POST", "/v1/models/slow:predict", short,
                         port=self.inline_port),
          (200, {"predictions": [10]}))
    self.assertError(
        "POST", "/v1/models/slow:predict", slow, 504,
        "Deadline exceeded: the request took longer than "
        f"{_SHORT_TIMEOUT_MS} ms", port=self.inline_port)

  # ------------------------------------------------------------ metrics

  def test_prometheus_metrics_after_requests(self):
    for _ in range(3):
      self.call("POST", "/v1/models/half:predict", '{"instances": [1.0]}')
    self.call("POST", "/v1/models/missing:predict", '{"instances": [1.0]}')
    code, headers, data = self.call("GET", "/monitoring/prometheus/metrics")
    self.assertEqual(code, 200)
    self.assertStartsWith(headers["Content-Type"], "text/plain")
    text = data.decode()
    self.assertIn("# TYPE :tensorflow:serving:request_count counter", text)
    # Upstream's names and labels, with the version and signature that
    # answered (and API and entrypoint on request_count) added.
    self.assertRegex(
        text, r':tensorflow:serving:request_count\{API="predict",'
        r'entrypoint="REST",model_name="half",signature="serving_default",'
        r'status="OK",version="123"\} [1-9]')
    # A model the server does not have makes no series of its own.
    self.assertNotIn('"missing"', text)
    self.assertRegex(
        text, r':tensorflow:serving:request_count\{API="predict",'
        r'entrypoint="REST",model_name="__unknown__",signature="__unknown__",'
        r'status="NOT_FOUND",version="__unknown__"\} [1-9]')
    self.assertRegex(
        text, r':tensorflow:serving:request_latency_bucket\{API="predict",'
        r'entrypoint="REST",le="\+Inf",model_name="half",'
        r'signature="serving_default",version="123"\} [1-9]')
    self.assertRegex(
        text, r':tensorflow:serving:runtime_latency_count\{API="Predict",'
        r'model_name="half",runtime="TF1",signature="serving_default",'
        r'version="123"\} [1-9]')
    # Each version's state (30: AVAILABLE) and load time.
    self.assertIn("# TYPE :tensorflow:serving:model_version_state gauge", text)
    self.assertIn(':tensorflow:serving:model_version_state{model_name="half",'
                  'version="123"} 30.0', text)
    # (0 by this core's fake clock; model_status_e2e_test sees real ones.)
    self.assertIn(':tensorflow:serving:model_version_load_latency{'
                  'model_name="half",version="123"} 0.0', text)
    self.assertIn(":tensorflow:cc:saved_model:load_attempt_count{", text)
    # The path is the configured one, and only on that server.
    self.assertEqual(self.call("GET", "/custom/metrics",
                               port=self.cors_port)[0], 200)
    self.assertEqual(self.call("GET", "/monitoring/prometheus/metrics",
                               port=self.cors_port)[0], 404)


class HttpProtocolTest(absltest.TestCase):
  """HTTP/1.1 as clients speak it, over raw sockets."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.core = _serve_half_and_slow()
    cls.server = cls.start_server()
    cls.port = cls.server.port

  @classmethod
  def tearDownClass(cls):
    cls.server.stop()
    cls.core.stop()
    super().tearDownClass()

  @classmethod
  def start_server(cls):
    server = http_server.HttpRestServer(
        data_plane.DataPlane(cls.core),
        http_server.HttpRestServer.Options(num_threads=2, host="127.0.0.1"))
    server.start(0)
    return server

  def connect(self, port=None):
    sock = socket.create_connection(("127.0.0.1", port or self.port),
                                    timeout=30)
    self.addCleanup(sock.close)
    return sock

  def read_response(self, sock, buf=b""):
    """(status, headers, body, rest of the buffer) of one response."""
    while b"\r\n\r\n" not in buf:
      data = sock.recv(65536)
      self.assertTrue(data, "connection closed before a response")
      buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(buf) < length:
      data = sock.recv(65536)
      self.assertTrue(data, "connection closed inside a body")
      buf += data
    return code, headers, buf[:length], buf[length:]

  def assertClosed(self, sock):
    try:
      self.assertEqual(sock.recv(1), b"")
    except ConnectionResetError:
      pass  # Closed with unread bytes of ours: also closed.

  def test_pipelined_requests_are_answered_in_order(self):
    sock = self.connect()
    body = b'{"instances": [1.0]}'
    predict = (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    status_get = b"GET /v1/models/nope HTTP/1.1\r\nHost: x\r\n\r\n"
    sock.sendall(predict + status_get + predict)
    code, _, data, rest = self.read_response(sock)
    self.assertEqual((code, json.loads(data)), (200, {"predictions": [2.5]}))
    code, _, data, rest = self.read_response(sock, rest)
    self.assertEqual(code, 404)
    code, headers, data, rest = self.read_response(sock, rest)
    self.assertEqual((code, json.loads(data)), (200, {"predictions": [2.5]}))
    self.assertEqual(headers["content-type"], "application/json")
    self.assertIn("date", headers)
    self.assertEqual(rest, b"")

  def test_chunked_body(self):
    sock = self.connect()
    sock.sendall(b"POST /v1/models/half:predict?x=1 HTTP/1.1\r\nHost: x\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n"
                 b"5\r\n{\"ins\r\nf\r\ntances\": [3.0]}\r\n0\r\n\r\n")
    code, _, data, _ = self.read_response(sock)
    self.assertEqual((code, json.loads(data)), (200, {"predictions": [3.5]}))

  def test_expect_100_continue(self):
    sock = self.connect()
    body = b'{"instances": [5.0]}'
    sock.sendall(b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\n"
                 b"Expect: 100-continue\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body))
    code, _, _, rest = self.read_response(sock)
    self.assertEqual(code, 100)
    sock.sendall(body)
    code, _, data, _ = self.read_response(sock, rest)
    self.assertEqual((code, json.loads(data)), (200, {"predictions": [4.5]}))

  def test_http_1_0_closes_and_head_has_no_body(self):
    sock = self.connect()
    sock.sendall(b"GET /v1/models/half HTTP/1.0\r\n\r\n")
    code, headers, data, rest = self.read_response(sock)
    self.assertEqual(code, 200)
    self.assertEqual(headers["connection"], "close")
    self.assertIn(b"AVAILABLE", data)
    self.assertEqual(rest, b"")
    self.assertClosed(sock)
    sock = self.connect()
    sock.sendall(b"HEAD /v1/models/half HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"GET /v1/models/half HTTP/1.1\r\nHost: x\r\n"
                 b"Connection: close\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
      buf += sock.recv(65536)
    head, _, rest = buf.partition(b"\r\n\r\n")
    self.assertIn(b"HTTP/1.1 400 Bad Request", head)  # Not a /v1 verb.
    self.assertNotIn(b"Content-Length: 0\r\n", head)
    code, _, data, _ = self.read_response(sock, rest)
    self.assertEqual(code, 200)  # The HEAD answer carried no body.
    self.assertIn(b"AVAILABLE", data)
    self.assertClosed(sock)

  def test_malformed_request_is_400_and_closes(self):
    for request in (b"NOT HTTP AT ALL\r\n\r\n",
                    b"GET /v1/models/half HTTP/1.1\r\nContent-Length: x\r\n"
                    b"\r\n"):
      sock = self.connect()
      sock.sendall(request)
      code, _, _, _ = self.read_response(sock)
      self.assertEqual(code, 400)
      self.assertClosed(sock)
    # A request head over 1 MiB: 400, though the server closes before
    # reading the rest, so the client may see only the reset.
    sock = self.connect()
    try:
      sock.sendall(b"GET /v1/" + b"a" * (2 << 20) + b" HTTP/1.1\r\n\r\n")
      self.assertEqual(self.read_response(sock)[0], 400)
    except (ConnectionResetError, BrokenPipeError):
      pass
    self.assertClosed(sock)
    # The server still serves.
    sock = self.connect()
    sock.sendall(b"GET /v1/models/half HTTP/1.1\r\nHost: x\r\n\r\n")
    self.assertEqual(self.read_response(sock)[0], 200)

  def test_stop_answers_requests_in_flight(self):
    server = self.start_server()
    idle = self.connect(server.port)
    busy = self.connect(server.port)
    # Runs on the pool (never measured) for about 0.4 s.
    body = json.dumps({"instances": [_SLOW_ITERATIONS]}).encode()
    busy.sendall(b"POST /v1/models/slow:predict HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    # The request has reached the server once a later one on another
    # connection is answered (requests are read in arrival order).
    probe = self.connect(server.port)
    probe.sendall(b"GET /v1/models/half HTTP/1.1\r\nHost: x\r\n\r\n")
    self.assertEqual(self.read_response(probe)[0], 200)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    code, headers, data, _ = self.read_response(busy)
    self.assertEqual((code, json.loads(data)),
                     (200, {"predictions": [_SLOW_ITERATIONS]}))
    self.assertEqual(headers["connection"], "close")
    self.assertClosed(busy)
    self.assertClosed(idle)
    stopper.join()
    with self.assertRaises(OSError):
      socket.create_connection(("127.0.0.1", server.port), timeout=5)


  def test_draining_answers_new_requests_503_on_open_connections(self):
    server = self.start_server()
    kept = self.connect(server.port)
    kept.sendall(b"GET /v1/models/half HTTP/1.1\r\nHost: x\r\n\r\n")
    code, headers, _, _ = self.read_response(kept)
    self.assertEqual(code, 200)
    self.assertNotIn("connection", headers)  # Kept alive.
    busy = self.connect(server.port)
    body = json.dumps({"instances": [_SLOW_ITERATIONS]}).encode()
    busy.sendall(b"POST /v1/models/slow:predict HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    probe = self.connect(server.port)
    probe.sendall(b"GET /v1/models/half HTTP/1.1\r\nHost: x\r\n\r\n")
    self.assertEqual(self.read_response(probe)[0], 200)
    server.start_draining()
    # Two pipelined requests on the kept-alive connection: both refused
    # before any work, the last one closing the connection.
    predict = json.dumps({"instances": [[1.0]]}).encode()
    request = (b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(predict), predict))
    kept.sendall(request + request)
    code, headers, data, rest = self.read_response(kept)
    self.assertEqual(code, 503)
    self.assertEqual(json.loads(data),
                     {"error": "The model server is shutting down"})
    self.assertNotIn("connection", headers)
    code, headers, data, _ = self.read_response(kept, rest)
    self.assertEqual(code, 503)
    self.assertEqual(headers["connection"], "close")
    self.assertClosed(kept)
    # The request admitted before the drain is answered as usual.
    code, headers, data, _ = self.read_response(busy)
    self.assertEqual((code, json.loads(data)),
                     (200, {"predictions": [_SLOW_ITERATIONS]}))
    self.assertEqual(headers["connection"], "close")
    self.assertTrue(server.wait_for_in_flight(10))
    server.stop()
    with self.assertRaises(OSError):
      socket.create_connection(("127.0.0.1", server.port), timeout=5)

  def test_body_over_the_limit_is_413(self):
    server = http_server.HttpRestServer(
        data_plane.DataPlane(self.core),
        http_server.HttpRestServer.Options(num_threads=2, host="127.0.0.1",
                                           max_body_bytes=1000))
    server.start(0)
    self.addCleanup(server.stop)
    sock = self.connect(server.port)
    body = b" " * 1001
    sock.sendall(b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    code, headers, data, _ = self.read_response(sock)
    self.assertEqual(code, 413)
    self.assertIn("--rest_api_max_body_bytes", json.loads(data)["error"])
    self.assertEqual(headers["connection"], "close")
    # Chunked: counted as it arrives.
    sock = self.connect(server.port)
    sock.sendall(b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" +
                 b"258\r\n" + b" " * 600 + b"\r\n" +
                 b"258\r\n" + b" " * 600 + b"\r\n0\r\n\r\n")
    self.assertEqual(self.read_response(sock)[0], 413)
    # Within the limit, gzip inflating past it.
    packed = gzip.compress(b" " * 2000)
    sock = self.connect(server.port)
    sock.sendall(b"POST /v1/models/half:predict HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Encoding: gzip\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(packed), packed))
    code, _, data, _ = self.read_response(sock)
    self.assertEqual(code, 413)
    self.assertIn("once inflated", json.loads(data)["error"])


class MonitoringConfigTest(absltest.TestCase):

  def test_read_monitoring_config(self):
    path = self.create_tempfile(content=(
        'prometheus_config { enable: true path: "/m" }')).full_path
    config = http_server.read_monitoring_config(path)
    self.assertTrue(config.prometheus_config.enable)
    self.assertEqual(config.prometheus_config.path, "/m")
    # Upstream's ParseProtoTextFile texts (util/proto_util.h).
    bad = self.create_tempfile(content="prometheus_config { nope: 1 }")
    with self.assertRaises(status.ServingError) as cm:
      http_server.read_monitoring_config(bad.full_path)
    self.assertEqual(cm.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertStartsWith(
        cm.exception.message,
        f"Invalid protobuf file: '{bad.full_path}'. Error parsing text-format "
        "tensorflow.serving.MonitoringConfig: 1:21: ")
    with self.assertRaises(status.ServingError) as cm:
      http_server.read_monitoring_config("/nonexistent/monitoring.config")
    self.assertEqual(cm.exception.code, status.Code.NOT_FOUND)
    self.assertEqual(cm.exception.message,
                     "/nonexistent/monitoring.config; No such file or "
                     "directory")


class CallTimesTest(absltest.TestCase):

  def test_unmeasured_kinds_are_not_short(self):
    times = http_server.CallTimes(0.001)
    self.assertFalse(times.is_short("a"))
    times.record("a", 0.0002)
    self.assertTrue(times.is_short("a"))
    self.assertFalse(times.is_short("b"))

  def test_follows_the_fastest_runs_and_at_most_doubles(self):
    times = http_server.CallTimes(0.001)
    times.record("a", 0.0002)
    times.record("a", 0.0009)  # A preempted short call: estimate 0.0004.
    self.assertTrue(times.is_short("a"))
    times.record("a", 0.0009)  # 0.0008
    self.assertTrue(times.is_short("a"))
    times.record("a", 0.0015)  # 0.0016: slow calls reach the limit.
    self.assertFalse(times.is_short("a"))
    times.record("a", 0.0003)  # One fast run brings it back.
    self.assertTrue(times.is_short("a"))

  def test_one_very_slow_run_moves_a_kind_to_the_pool(self):
    times = http_server.CallTimes(0.001)
    times.record("a", 0.0001)
    times.record("a", 0.5)
    self.assertFalse(times.is_short("a"))

  def test_zero_limit_runs_nothing_inline(self):
    times = http_server.CallTimes(0.0)
    times.record("a", 0.0)
    self.assertFalse(times.is_short("a"))


class HttpStatusTest(absltest.TestCase):

  def test_upstream_mapping(self):
    expected = {
        "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
        "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
        "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
        "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400,
        "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503,
        "DATA_LOSS": 500, "UNAUTHENTICATED": 401}
    self.assertEqual(
        {code.name: http_server.to_http_status(code) for code in status.Code},
        expected)


if __name__ == "__main__":
  absltest.main()
