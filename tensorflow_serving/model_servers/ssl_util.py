"""TLS from an SSLConfig text file: gRPC credentials and the REST port's context.

--ssl_config_file secures the gRPC port (upstream builds its credentials in
model_servers/server.cc); --rest_api_ssl_config_file (not in upstream)
secures the REST port with an ssl.SSLContext built from the same kind of
file by the same rules. They are one small module so that the TLS rules are
tested on their own. The SSLConfig fields hold PEM *contents*, not file
names:

  server_key     the server's private key
  server_cert    the server's certificate (chain)
  custom_ca      CA certificates to verify clients with (optional)
  client_verify  true: every client must present a certificate that
                 custom_ca verifies (mutual TLS); false: clients are not asked
                 for one

The same credentials secure the gRPC TCP port and the Unix socket, as
upstream. The REST context accepts TLS 1.2 and later only, and offers
HTTP/1.1 by ALPN.
"""

import contextlib
import os
import ssl
import tempfile
from typing import Iterator

import grpc

from tensorflow_serving.config import ssl_config_pb2
from tensorflow_serving.util import proto_util
from tensorflow_serving.util import status


def read_ssl_config(path: str) -> ssl_config_pb2.SSLConfig:
  """Parses a text-format SSLConfig file.

  Raises:
    ServingError: the file system's error ("<path>; No such file or
      directory", NOT_FOUND) if it cannot be read, INVALID_ARGUMENT "Invalid
      protobuf file: '<path>'. ..." (as upstream) if it does not parse.
  """
  return proto_util.parse_proto_text_file(path, ssl_config_pb2.SSLConfig())


def _check_fields(ssl_config: ssl_config_pb2.SSLConfig) -> None:
  if not ssl_config.server_key or not ssl_config.server_cert:
    raise status.invalid_argument(
        "SSLConfig needs both server_key and server_cert (PEM contents)")
  if ssl_config.client_verify and not ssl_config.custom_ca:
    raise status.invalid_argument(
        "SSLConfig.client_verify needs custom_ca to verify clients with")


def build_server_credentials(
    ssl_config: ssl_config_pb2.SSLConfig) -> grpc.ServerCredentials:
  """TLS credentials for the gRPC server, as the module docstring says.

  Raises:
    ServingError: INVALID_ARGUMENT when the key or certificate is missing,
      or client_verify is set without custom_ca (there would be nothing to
      verify clients against).
  """
  _check_fields(ssl_config)
  key_cert = (ssl_config.server_key.encode(), ssl_config.server_cert.encode())
  return grpc.ssl_server_credentials(
      [key_cert],
      root_certificates=(ssl_config.custom_ca.encode()
                         if ssl_config.custom_ca else None),
      require_client_auth=ssl_config.client_verify)


@contextlib.contextmanager
def _pem_file(contents: str) -> Iterator[str]:
  """A path to a file holding `contents`, gone on exit.

  Python's ssl loads a certificate chain and its key from files only. Where
  the OS has anonymous memory files (Linux), the PEM goes there, so that the
  private key is never written to a disk; elsewhere to a temporary file
  only this user can read, deleted right after loading.
  """
  data = contents.encode()
  if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
    fd = os.memfd_create("tf_serving_pem", os.MFD_CLOEXEC)
    try:
      with open(fd, "wb", closefd=False) as f:
        f.write(data)
      yield f"/proc/self/fd/{fd}"
    finally:
      os.close(fd)
    return
  with tempfile.TemporaryDirectory(prefix="tf_serving_pem_") as directory:
    path = os.path.join(directory, "pem")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
              "wb") as f:
      f.write(data)
    yield path


def _encrypted_key() -> bytes:
  # The password callback of load_cert_chain: called only for an encrypted
  # key. Without it, OpenSSL would prompt on the terminal.
  raise status.invalid_argument(
      "SSLConfig.server_key is encrypted; it must be an unencrypted PEM key")


def build_ssl_context(ssl_config: ssl_config_pb2.SSLConfig) -> ssl.SSLContext:
  """The REST port's TLS context (--rest_api_ssl_config_file).

  Same rules as build_server_credentials: the server presents server_cert
  with server_key; client_verify=true requires every client to present a
  certificate that custom_ca verifies (mutual TLS, CERT_REQUIRED), false
  asks for none. TLS 1.2 and later only.

  Raises:
    ServingError: INVALID_ARGUMENT when a field is missing (as
      build_server_credentials), or a PEM does not load ("SSLConfig.<field>:
      <OpenSSL's reason>"), or the key does not match the certificate.
  """
  _check_fields(ssl_config)
  context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
  context.minimum_version = ssl.TLSVersion.TLSv1_2
  context.set_alpn_protocols(["http/1.1"])
  try:
    with _pem_file(ssl_config.server_cert) as cert_path, \
        _pem_file(ssl_config.server_key) as key_path:
      context.load_cert_chain(cert_path, key_path, password=_encrypted_key)
  except ssl.SSLError as e:
    raise status.invalid_argument(
        "SSLConfig.server_cert and server_key do not load as a PEM "
        f"certificate and its private key: {e}") from e
  if ssl_config.client_verify:
    try:
      context.load_verify_locations(cadata=ssl_config.custom_ca)
    except (ssl.SSLError, ValueError) as e:
      raise status.invalid_argument(
          f"SSLConfig.custom_ca does not load as PEM certificates: {e}") from e
    context.verify_mode = ssl.CERT_REQUIRED
  return context
