"""gRPC server credentials from --ssl_config_file (a text SSLConfig).

Upstream builds these in model_servers/server.cc; here they are one small
module so that the TLS rules are tested on their own. The SSLConfig fields
hold PEM *contents*, not file names:

  server_key     the server's private key
  server_cert    the server's certificate (chain)
  custom_ca      CA certificates to verify clients with (optional)
  client_verify  true: every client must present a certificate that
                 custom_ca verifies (mutual TLS); false: clients are not asked
                 for one

The same credentials secure the TCP port and the Unix socket, as upstream.
The REST port stays plain HTTP.
"""

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


def build_server_credentials(
    ssl_config: ssl_config_pb2.SSLConfig) -> grpc.ServerCredentials:
  """TLS credentials for the gRPC server, as the module docstring says.

  Raises:
    ServingError: INVALID_ARGUMENT when the key or certificate is missing,
      or client_verify is set without custom_ca (there would be nothing to
      verify clients against).
  """
  if not ssl_config.server_key or not ssl_config.server_cert:
    raise status.invalid_argument(
        "SSLConfig needs both server_key and server_cert (PEM contents)")
  if ssl_config.client_verify and not ssl_config.custom_ca:
    raise status.invalid_argument(
        "SSLConfig.client_verify needs custom_ca to verify clients with")
  key_cert = (ssl_config.server_key.encode(), ssl_config.server_cert.encode())
  return grpc.ssl_server_credentials(
      [key_cert],
      root_certificates=(ssl_config.custom_ca.encode()
                         if ssl_config.custom_ca else None),
      require_client_auth=ssl_config.client_verify)
