"""RestrictedApi: --restricted_api, access control by API group (not in upstream).

Upstream guards nothing (tensorflow/serving#767): whoever reaches the port
can reload the model config. As Triton's --grpc-restricted-protocol and
--http-restricted-api do, --restricted_api names groups of APIs that a
request may only use when it carries a given header (gRPC metadata or HTTP
header) with a given value:

  --restricted_api=GROUPS:KEY=VALUE[;GROUPS:KEY=VALUE...]

GROUPS is a comma list of:

  inference         Predict, Classify, Regress, MultiInference; V2 infer
  metadata          GetModelMetadata, GetModelStatus; V2 server and model
                    metadata, the repository index; REST status and metadata
  model_management  HandleReloadConfigRequest; V2 repository load/unload
  metrics           the Prometheus page (REST)
  health            grpc.health.v1.Health; V2 live and ready

e.g. --restricted_api="model_management:x-admin-key=s3cret;inference,metadata:x-api-key=k"
A group not named is open. KEY is a header name (case-insensitive; gRPC
metadata keys are lower case). A request to a guarded group without the
header, or with another value, is PERMISSION_DENIED (REST: 403), counted in
/tensorflow/serving/restricted_api_denied_count{api_group, entrypoint}; the
message names the group and the header, never the value. Values are
compared in constant time.

This module knows no transport: an edge maps its request to a group
(GRPC_METHOD_GROUPS / grpc_method_group() for gRPC; http_server.api_group
by URL for REST) and calls RestrictedApi.check(group, header_lookup,
entrypoint).
"""

import dataclasses
import enum
import hmac
import re
from typing import Callable, Mapping, Optional

from tensorflow_serving.util import metrics
from tensorflow_serving.util import status


class ApiGroup(enum.Enum):
  """The groups --restricted_api can guard (their flag spelling is the value)."""

  INFERENCE = "inference"
  METADATA = "metadata"
  MODEL_MANAGEMENT = "model_management"
  METRICS = "metrics"
  HEALTH = "health"


# Full gRPC method name -> group. A service registered later adds its methods
# here, one line each. A method not listed falls in STRICTEST_GROUP.
GRPC_METHOD_GROUPS: dict[str, ApiGroup] = {
    "/tensorflow.serving.PredictionService/Predict": ApiGroup.INFERENCE,
    "/tensorflow.serving.PredictionService/Classify": ApiGroup.INFERENCE,
    "/tensorflow.serving.PredictionService/Regress": ApiGroup.INFERENCE,
    "/tensorflow.serving.PredictionService/MultiInference": ApiGroup.INFERENCE,
    "/tensorflow.serving.PredictionService/GetModelMetadata":
        ApiGroup.METADATA,
    "/tensorflow.serving.ModelService/GetModelStatus": ApiGroup.METADATA,
    "/tensorflow.serving.ModelService/HandleReloadConfigRequest":
        ApiGroup.MODEL_MANAGEMENT,
    "/tensorflow.serving.SessionService/SessionRun": ApiGroup.INFERENCE,
    "/grpc.health.v1.Health/Check": ApiGroup.HEALTH,
    "/grpc.health.v1.Health/Watch": ApiGroup.HEALTH,
    # The Open Inference Protocol (V2), as Triton groups it.
    "/inference.GRPCInferenceService/ServerLive": ApiGroup.HEALTH,
    "/inference.GRPCInferenceService/ServerReady": ApiGroup.HEALTH,
    "/inference.GRPCInferenceService/ModelReady": ApiGroup.HEALTH,
    "/inference.GRPCInferenceService/ServerMetadata": ApiGroup.METADATA,
    "/inference.GRPCInferenceService/ModelMetadata": ApiGroup.METADATA,
    "/inference.GRPCInferenceService/ModelInfer": ApiGroup.INFERENCE,
    "/inference.GRPCInferenceService/ModelStreamInfer": ApiGroup.INFERENCE,
    "/inference.GRPCInferenceService/RepositoryIndex": ApiGroup.METADATA,
    "/inference.GRPCInferenceService/RepositoryModelLoad":
        ApiGroup.MODEL_MANAGEMENT,
    "/inference.GRPCInferenceService/RepositoryModelUnload":
        ApiGroup.MODEL_MANAGEMENT,
}

# Where a method nobody listed belongs: the group that guards the most.
STRICTEST_GROUP = ApiGroup.MODEL_MANAGEMENT

DENIED_COUNT = metrics.REGISTRY.register(metrics.Counter(
    "/tensorflow/serving/restricted_api_denied_count",
    "Requests refused by --restricted_api (PERMISSION_DENIED).",
    ("api_group", "entrypoint")))

# A header name: an HTTP token, which gRPC metadata keys are too (lower case;
# "-bin" keys are binary and "grpc-" ones reserved).
_KEY = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]+$")
_FLAG = "--restricted_api"


def grpc_method_group(method: str) -> ApiGroup:
  """The group of a full gRPC method name ("/package.Service/Method")."""
  return GRPC_METHOD_GROUPS.get(method, STRICTEST_GROUP)


@dataclasses.dataclass(frozen=True)
class Restriction:
  """What a guarded group's requests must carry: header `key` = `value`."""

  key: str
  value: str


def _invalid(message: str) -> status.ServingError:
  return status.invalid_argument(f"Invalid {_FLAG}: {message}")


class RestrictedApi:
  """The parsed --restricted_api: which groups need which header.

  Immutable and thread-safe; check() is called on every request of a
  guarded group.
  """

  def __init__(self, restrictions: Mapping[ApiGroup, Restriction]) -> None:
    self._restrictions = dict(restrictions)
    # As bytes, for hmac.compare_digest.
    self._values = {g: r.value.encode() for g, r in self._restrictions.items()}

  @classmethod
  def parse(cls, text: str) -> "RestrictedApi":
    """Parses the flag's value ("" guards nothing).

    Raises:
      ServingError: INVALID_ARGUMENT "Invalid --restricted_api: ..." naming
        the entry that is wrong.
    """
    restrictions: dict[ApiGroup, Restriction] = {}
    for entry in text.split(";"):
      entry = entry.strip()
      if not entry:
        continue
      groups_text, colon, header = entry.partition(":")
      key, equals, value = header.partition("=")
      key = key.strip().lower()
      if not colon or not equals:
        raise _invalid(f"'{entry}' is not GROUPS:KEY=VALUE")
      if not _KEY.match(key) or key.startswith("grpc-") or key.endswith(
          "-bin"):
        raise _invalid(f"'{key}' cannot be a header name (an HTTP token, "
                       "not grpc-* nor *-bin)")
      if not value or not value.isprintable() or not value.isascii():
        raise _invalid(f"the value of header '{key}' must be printable ASCII "
                       "and not empty")
      for name in groups_text.split(","):
        name = name.strip()
        try:
          group = ApiGroup(name)
        except ValueError:
          raise _invalid(
              f"unknown API group '{name}' (known: "
              f"{', '.join(g.value for g in ApiGroup)})") from None
        if group in restrictions:
          raise _invalid(f"API group '{name}' is restricted twice")
        restrictions[group] = Restriction(key, value)
    return cls(restrictions)

  @property
  def enabled(self) -> bool:
    """True if some group is guarded."""
    return bool(self._restrictions)

  def restriction(self, group: ApiGroup) -> Optional[Restriction]:
    """What `group` requires, or None if it is open."""
    return self._restrictions.get(group)

  def check(self, group: ApiGroup, header: Callable[[str], Optional[str]],
            entrypoint: str) -> None:
    """Lets a request of `group` through, or refuses it.

    Args:
      group: the request's API group.
      header: the request's header (or metadata) value by lower-case name,
        None if absent.
      entrypoint: metrics.GRPC or metrics.REST, for the denied count.

    Raises:
      ServingError: PERMISSION_DENIED when the group is guarded and the
        header is missing or has another value.
    """
    restriction = self._restrictions.get(group)
    if restriction is None:
      return
    value = header(restriction.key)
    if value is not None and hmac.compare_digest(
        value.encode("utf-8", "surrogateescape"), self._values[group]):
      return
    DENIED_COUNT.get_cell(group.value, entrypoint).increment_by(1)
    raise status.ServingError(
        status.Code.PERMISSION_DENIED,
        f"The {group.value} API is restricted: the request must carry the "
        f"header '{restriction.key}' with the value configured by {_FLAG}")
