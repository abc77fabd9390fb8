"""--rest_api_ssl_config_file: HTTPS on the REST port, over real sockets.

An in-process Server with TLS on both ports (--ssl_config_file and
--rest_api_ssl_config_file), certificates made by the test: /v1 predict, the
Prometheus page and the V2 health endpoint answer over HTTPS; plain HTTP on
the port fails and the server keeps serving; with client_verify, a client
without a certificate, or with one from another CA, is refused and one
signed by custom_ca is served; gRPC keeps working beside it; a bad file is
a clear start-up error.
"""

import http.client
import json
import os
import socket
import ssl
import warnings

from absl.testing import absltest
import grpc
import numpy as np

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import server as server_lib
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.model_servers.test_util import test_certs
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import tensor_codec

Options = server_lib.Server.Options
_PREDICT_BODY = json.dumps({"instances": [[2.0], [4.0]]}).encode()
# What a refused TLS client sees, depending on when the server's alert lands
# (TLS 1.3 checks the client certificate after the client's handshake).
_REFUSED = (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)


class RestTlsTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base = half_plus_two.write_versions(
        half_plus_two.fresh_dir("rest_tls"), half_plus_two.write_tf1)
    cls.cert_dir = os.path.join(
        os.environ.get("TEST_TMPDIR", "/tmp"), "rest_tls_certs")
    os.makedirs(cls.cert_dir, exist_ok=True)
    cls.certs = test_certs.make_certs(cls.cert_dir)
    cls.servers = {}

  @classmethod
  def tearDownClass(cls):
    for server in cls.servers.values():
      server.stop()
    super().tearDownClass()

  def write(self, name: str, text: str) -> str:
    path = os.path.join(self.create_tempdir().full_path, name)
    with open(path, "w") as f:
      f.write(text)
    return path

  def server(self, client_verify: bool) -> server_lib.Server:
    """One server per client_verify, shared by the tests of the class."""
    if client_verify not in self.servers:
      ssl_config = self.write("ssl.conf",
                              self.certs.ssl_config_text(client_verify))
      server = server_lib.Server()
      server.build_and_start(Options(
          port=model_server_process.free_port(),
          rest_api_port=model_server_process.free_port(),
          model_name="half", model_base_path=self.base,
          ssl_config_file=ssl_config, rest_api_ssl_config_file=ssl_config,
          monitoring_config_file=self.write(
              "monitoring.conf", "prometheus_config { enable: true }")))
      self.servers[client_verify] = server
    return self.servers[client_verify]

  def context(self, client: str = "") -> ssl.SSLContext:
    """A client TLS context trusting the test CA, with `client`'s cert."""
    context = ssl.create_default_context(
        cafile=os.path.join(self.cert_dir, "test_ca.pem"))
    if client:
      context.load_cert_chain(os.path.join(self.cert_dir, f"{client}.pem"),
                              os.path.join(self.cert_dir, f"{client}.key"))
    return context

  def https(self, server: server_lib.Server, method: str, path: str,
            body: bytes = None, client: str = "") -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("localhost", server.rest_port,
                                       context=self.context(client),
                                       timeout=30)
    try:
      conn.request(method, path, body=body)
      response = conn.getresponse()
      return response.status, response.read()
    finally:
      conn.close()

  def assert_serves_https(self, server: server_lib.Server, client: str = ""):
    status, body = self.https(server, "POST", "/v1/models/half:predict",
                              _PREDICT_BODY, client)
    self.assertEqual(status, 200, body)
    self.assertEqual(json.loads(body), {"predictions": [[3.0], [4.0]]})
    status, body = self.https(server, "GET", "/monitoring/prometheus/metrics",
                              client=client)
    self.assertEqual(status, 200)
    self.assertIn(b":tensorflow:serving:request_count", body)
    status, body = self.https(server, "GET", "/v2/health/ready",
                              client=client)
    self.assertEqual((status, json.loads(body)), (200, {"ready": True}))

  def assert_grpc_tls(self, server: server_lib.Server, client: str = ""):
    key = cert = None
    if client:
      key, cert = self.certs.client_key, self.certs.client_cert
    credentials = grpc.ssl_channel_credentials(
        root_certificates=self.certs.ca_cert, private_key=key,
        certificate_chain=cert)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.inputs["x"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(
        np.array([[2.0]], np.float32)))
    with grpc.secure_channel(f"localhost:{server.grpc_port}",
                             credentials) as channel:
      reply = prediction_service_pb2_grpc.PredictionServiceStub(
          channel).Predict(request, timeout=30)
    self.assertEqual(list(reply.outputs["y"].float_val), [3.0])

  def test_https_only(self):
    server = self.server(client_verify=False)
    self.assert_serves_https(server)
    self.assert_grpc_tls(server)
    # Plain HTTP on the port: the handshake fails, the client is dropped.
    conn = http.client.HTTPConnection("localhost", server.rest_port,
                                      timeout=30)
    with self.assertRaises((ConnectionError, http.client.RemoteDisconnected,
                            http.client.BadStatusLine)):
      conn.request("GET", "/v2/health/ready")
      conn.getresponse().read()
    conn.close()
    # A client that connects and says nothing, then goes: nothing breaks.
    with socket.create_connection(("localhost", server.rest_port), 30):
      pass
    # A client that does not trust the server's CA refuses it.
    conn = http.client.HTTPSConnection(
        "localhost", server.rest_port, context=ssl.create_default_context(),
        timeout=30)
    with self.assertRaises(ssl.SSLCertVerificationError):
      conn.request("GET", "/v2/health/ready")
    conn.close()
    # TLS 1.1 and older are refused by the server: it alerts or hangs up
    # (the client, made to offer TLS 1.1 at OpenSSL level 0, would itself
    # fail with NO_PROTOCOLS_AVAILABLE).
    old = self.context()
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", DeprecationWarning)
      old.minimum_version = ssl.TLSVersion.TLSv1
      old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    conn = http.client.HTTPSConnection("localhost", server.rest_port,
                                       context=old, timeout=30)
    with self.assertRaisesRegex(
        ssl.SSLError, "ALERT_PROTOCOL_VERSION|UNEXPECTED_EOF"):
      conn.request("GET", "/v2/health/ready")
    conn.close()
    # The server kept serving.
    self.assert_serves_https(server)

  def test_mutual_tls(self):
    server = self.server(client_verify=True)
    self.assert_serves_https(server, client="client")
    self.assert_grpc_tls(server, client="client")
    for client in ("", "other_client"):  # no certificate; another CA's
      with self.assertRaises(_REFUSED, msg=client):
        self.https(server, "GET", "/v2/health/ready", client=client)
    # The refusals did not stop it.
    self.assert_serves_https(server, client="client")

  def test_bad_config_is_a_startup_error(self):
    certs = self.certs
    cases = {
        "missing file": (None, "No such file or directory"),
        "no proto": ("client_verify: maybe", "Invalid protobuf file"),
        "no key": ('server_cert: "x"', "needs both server_key and server_cert"),
        "bad PEM": ('server_cert: "x" server_key: "y"',
                    "do not load as a PEM certificate"),
        "verify without CA": (
            certs.ssl_config_text(True).replace("custom_ca:", "# custom_ca:"),
            "client_verify needs custom_ca"),
    }
    for name, (text, expected) in cases.items():
      path = (self.write("ssl.conf", text) if text is not None else
              "/nonexistent/ssl.conf")
      with self.assertRaises(server_lib.StartupError, msg=name) as cm:
        server_lib.Server().build_and_start(Options(
            port=model_server_process.free_port(),
            rest_api_port=model_server_process.free_port(),
            model_name="half", model_base_path=self.base,
            rest_api_ssl_config_file=path))
      self.assertStartsWith(str(cm.exception), "--rest_api_ssl_config_file: ")
      self.assertIn(expected, str(cm.exception), name)


if __name__ == "__main__":
  absltest.main()
