"""Tests for --ssl_config_file: TLS and mutual TLS on real gRPC sockets."""

import os
import ssl
import subprocess
import tempfile

from absl.testing import absltest
import grpc
import numpy as np

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.config import ssl_config_pb2
from tensorflow_serving.model_servers import server as server_lib
from tensorflow_serving.model_servers import ssl_util
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.model_servers.test_util import test_certs
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec

Options = server_lib.Server.Options
# The server certificate is for "localhost"; a Unix socket has no host name.
_TARGET_NAME = (("grpc.ssl_target_name_override", "localhost"),)


def _predict(channel: grpc.Channel) -> list[float]:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "half"
  request.inputs["x"].CopyFrom(
      tensor_codec.ndarray_to_tensor_proto(np.array([[2.0]], np.float32)))
  stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
  return list(stub.Predict(request, timeout=20).outputs["y"].float_val)


class ReadSslConfigTest(absltest.TestCase):

  def test_bad_file(self):
    path = os.path.join(self.create_tempdir().full_path, "ssl.conf")
    with open(path, "w") as f:
      f.write("server_key: 42 nonsense")
    with self.assertRaises(status.ServingError) as cm:
      ssl_util.read_ssl_config(path)
    self.assertEqual(cm.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertStartsWith(cm.exception.message,
                          f"Invalid protobuf file: '{path}'. Error parsing "
                          "text-format tensorflow.serving.SSLConfig: 1:")
    with self.assertRaises(status.ServingError) as cm:
      ssl_util.read_ssl_config(path + ".missing")
    self.assertEqual(cm.exception.code, status.Code.NOT_FOUND)
    self.assertEqual(cm.exception.message,
                     f"{path}.missing; No such file or directory")

  def test_missing_key_or_ca(self):
    with self.assertRaises(status.ServingError):
      ssl_util.build_server_credentials(
          ssl_config_pb2.SSLConfig(server_cert="x"))
    with self.assertRaises(status.ServingError):
      ssl_util.build_server_credentials(
          ssl_config_pb2.SSLConfig(server_cert="x", server_key="y",
                                   client_verify=True))


class BuildSslContextTest(absltest.TestCase):
  """The REST port's context (--rest_api_ssl_config_file); its sockets are
  tested in http_server_tls_test."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.certs = test_certs.make_certs()

  def config(self, client_verify: bool, **fields) -> ssl_config_pb2.SSLConfig:
    config = ssl_config_pb2.SSLConfig(
        server_key=self.certs.server_key.decode(),
        server_cert=self.certs.server_cert.decode(),
        custom_ca=self.certs.ca_cert.decode(), client_verify=client_verify)
    for name, value in fields.items():
      setattr(config, name, value)
    return config

  def test_context(self):
    context = ssl_util.build_ssl_context(self.config(client_verify=False))
    self.assertEqual(context.verify_mode, ssl.CERT_NONE)
    self.assertEqual(context.minimum_version, ssl.TLSVersion.TLSv1_2)
    self.assertEmpty(context.get_ca_certs())
    context = ssl_util.build_ssl_context(self.config(client_verify=True))
    self.assertEqual(context.verify_mode, ssl.CERT_REQUIRED)
    self.assertEqual([c["subject"] for c in context.get_ca_certs()],
                     [((("commonName", "test_ca"),),)])

  def assert_invalid(self, config: ssl_config_pb2.SSLConfig, message: str):
    with self.assertRaises(status.ServingError) as cm:
      ssl_util.build_ssl_context(config)
    self.assertEqual(cm.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertIn(message, cm.exception.message)

  def test_bad_fields(self):
    certs = self.certs
    self.assert_invalid(self.config(False, server_key=""),
                        "needs both server_key and server_cert")
    self.assert_invalid(self.config(True, custom_ca=""),
                        "client_verify needs custom_ca")
    self.assert_invalid(self.config(False, server_cert="not a PEM"),
                        "do not load as a PEM certificate")
    # Another key than the certificate's.
    self.assert_invalid(
        self.config(False, server_key=certs.client_key.decode()),
        "KEY_VALUES_MISMATCH")
    self.assert_invalid(self.config(True, custom_ca="not a PEM"),
                        "custom_ca does not load as PEM certificates")

  def test_encrypted_key_is_refused_without_a_prompt(self):
    directory = self.create_tempdir().full_path
    plain = os.path.join(directory, "server.key")
    with open(plain, "wb") as f:
      f.write(self.certs.server_key)
    encrypted = os.path.join(directory, "encrypted.key")
    subprocess.run(["openssl", "pkey", "-in", plain, "-aes256", "-passout",
                    "pass:secret", "-out", encrypted], check=True,
                   stdin=subprocess.DEVNULL)
    with open(encrypted) as f:
      self.assert_invalid(self.config(False, server_key=f.read()),
                          "server_key is encrypted")


class TlsServerTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base = half_plus_two.write_versions(
        half_plus_two.fresh_dir("ssl"), half_plus_two.write_tf1)
    cls.certs = test_certs.make_certs()

  def start_server(self, client_verify: bool) -> server_lib.Server:
    tmp = self.create_tempdir().full_path
    config_path = os.path.join(tmp, "ssl.conf")
    with open(config_path, "w") as f:
      f.write(self.certs.ssl_config_text(client_verify))
    # A socket path has at most 107 characters: not under the test's tmpdir.
    self.socket_path = os.path.join(tempfile.mkdtemp(dir="/tmp"), "grpc.sock")
    server = server_lib.Server()
    server.build_and_start(
        Options(port=model_server_process.free_port(), model_name="half",
                model_base_path=self.base, ssl_config_file=config_path,
                grpc_socket_path=self.socket_path))
    self.addCleanup(server.stop)
    return server

  def channel(self, target: str, key: bytes = None, cert: bytes = None,
              options=()) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=self.certs.ca_cert, private_key=key,
        certificate_chain=cert)
    channel = grpc.secure_channel(target, credentials, options=options)
    self.addCleanup(channel.close)
    return channel

  def test_tls_on_port_and_socket(self):
    server = self.start_server(client_verify=False)
    address = f"localhost:{server.grpc_port}"
    self.assertEqual(_predict(self.channel(address)), [3.0])
    self.assertEqual(
        _predict(self.channel(f"unix:{self.socket_path}",
                              options=_TARGET_NAME)), [3.0])
    # A plaintext client cannot talk to a TLS port.
    with grpc.insecure_channel(address) as plain:
      with self.assertRaises(grpc.RpcError) as cm:
        _predict(plain)
      self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

  def test_mutual_tls(self):
    server = self.start_server(client_verify=True)
    address = f"localhost:{server.grpc_port}"
    certs = self.certs
    self.assertEqual(
        _predict(self.channel(address, certs.client_key, certs.client_cert)),
        [3.0])
    self.assertEqual(
        _predict(self.channel(f"unix:{self.socket_path}", certs.client_key,
                              certs.client_cert, options=_TARGET_NAME)),
        [3.0])
    # No client certificate, or one from another CA: refused.
    for key, cert in ((None, None),
                      (certs.other_client_key, certs.other_client_cert)):
      with self.assertRaises(grpc.RpcError) as cm:
        _predict(self.channel(address, key, cert))
      self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

  def test_bad_ssl_config_is_a_startup_error(self):
    path = os.path.join(self.create_tempdir().full_path, "ssl.conf")
    with open(path, "w") as f:
      f.write("client_verify: maybe")
    with self.assertRaises(server_lib.StartupError) as cm:
      server_lib.Server().build_and_start(
          Options(port=model_server_process.free_port(), model_name="half",
                  model_base_path=self.base, ssl_config_file=path))
    self.assertStartsWith(str(cm.exception), f"Invalid protobuf file: '{path}'")


if __name__ == "__main__":
  absltest.main()
