"""GrpcRestrictedApi: --restricted_api on the gRPC port (a server interceptor).

Every RPC's full method name gives its API group
(restricted_api.grpc_method_group: every service the server registers is
listed there, and a method that is not falls in the strictest group). An
RPC of a guarded group without the group's metadata key and value is
answered PERMISSION_DENIED before its request is parsed and before any
servicer code runs; see restricted_api for the flag and the rules.

Installed only when the flag guards something, so an open server pays
nothing for it. Runs on grpcio's polling thread, as every interceptor.
"""

from typing import Callable, Optional

import grpc

from tensorflow_serving.model_servers import grpc_drain
from tensorflow_serving.model_servers import grpc_status_util
from tensorflow_serving.model_servers import restricted_api as restricted_api_lib
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status


def _metadata_lookup(metadata) -> Callable[[str], Optional[str]]:
  """A header lookup over gRPC invocation metadata (keys are lower case)."""

  def lookup(key: str) -> Optional[str]:
    for item_key, value in metadata or ():
      if item_key == key:
        return value if isinstance(value, str) else None
    return None

  return lookup


class GrpcRestrictedApi(grpc.ServerInterceptor):
  """Refuses RPCs of guarded API groups that lack their metadata."""

  def __init__(self, api: restricted_api_lib.RestrictedApi) -> None:
    self._api = api

  def intercept_service(
      self, continuation: Callable[[grpc.HandlerCallDetails],
                                   Optional[grpc.RpcMethodHandler]],
      handler_call_details: grpc.HandlerCallDetails
  ) -> Optional[grpc.RpcMethodHandler]:
    group = restricted_api_lib.grpc_method_group(handler_call_details.method)
    if self._api.restriction(group) is None:
      return continuation(handler_call_details)
    try:
      self._api.check(
          group, _metadata_lookup(handler_call_details.invocation_metadata),
          metrics.GRPC)
    except status.ServingError as e:
      handler = continuation(handler_call_details)
      if handler is None:
        return None  # No such method: UNIMPLEMENTED, as without the flag.
      return grpc_drain.refusing_handler(
          handler, grpc_status_util.to_grpc_code(e.code),
          grpc_status_util.error_message(e.message))
    return continuation(handler_call_details)
