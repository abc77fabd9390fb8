"""Pieces of the REST API that are about URLs and proto JSON, not HTTP.

As upstream's model_servers/http_rest_api_util: the URL patterns and their
parsing into model name / version / label / verb, the ModelSpec they make,
the JSON that the status and metadata GETs return (protobuf's JSON with
the proto field names and every field printed, as upstream prints them),
and undoing a body's Content-Encoding (gzip or deflate, up to 100 MB
inflated).
"""

import dataclasses
import json
import re
from typing import Optional
import urllib.parse
import zlib

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.model_servers import get_model_status_impl
from tensorflow_serving.util import status
from tensorflow_serving.util import status_util

# Only these paths reach the REST handler; others get a plain 404.
PATH_REGEX = re.compile(r"/v1/.*", re.IGNORECASE)
PREDICTION_API_REGEX = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
    r":(classify|regress|predict)", re.IGNORECASE)
MODEL_STATUS_API_REGEX = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
    r"(?:/(metadata))?", re.IGNORECASE)

JSON_HEADERS = (("Content-Type", "application/json"),)
CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "POST, GET"),
    ("Access-Control-Allow-Headers", "Content-Type"),
)

# Upstream's gzip limit on a decompressed request body.
MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024

_INT64_MAX = 2**63 - 1
_METADATA_SIGNATURE_DEF = "signature_def"


@dataclasses.dataclass(frozen=True)
class ModelInfo:
  """What a /v1 URL names.

  Attributes:
    matched: the method and path fit the predict (POST) or status (GET)
      pattern; otherwise the request is malformed.
    model_name: URL-decoded; "" if absent.
    version: the /versions/N number, or None.
    label: the URL-decoded /labels/L label, or None.
    method: "predict", "classify" or "regress" for POST; "" for GET.
    subresource: "metadata" or "" for GET.

  GET /v1/models alone (is_model_list) lists every model (not in upstream).
  """

  matched: bool = False
  model_name: str = ""
  version: Optional[int] = None
  label: Optional[str] = None
  method: str = ""
  subresource: str = ""

  @property
  def is_model_list(self) -> bool:
    """GET /v1/models itself: no name, version, label or subresource."""
    return (self.matched and not self.method and not self.model_name and
            self.version is None and self.label is None and
            not self.subresource)


def parse_model_info(http_method: str, path: str) -> ModelInfo:
  """Parses a /v1 request path (without its query string).

  Raises:
    ServingError: INVALID_ARGUMENT for a version beyond int64.
  """
  match = None
  if http_method == "POST":
    match = PREDICTION_API_REGEX.fullmatch(path)
  elif http_method == "GET":
    match = MODEL_STATUS_API_REGEX.fullmatch(path)
  if match is None:
    return ModelInfo()
  name, version_str, label, verb = match.groups()
  version = None
  if version_str:
    version = int(version_str)
    if version > _INT64_MAX:
      raise status.invalid_argument(
          f"Failed to convert version: {version_str} to numeric.")
  return ModelInfo(
      matched=True,
      model_name=urllib.parse.unquote(name) if name else "",
      version=version,
      label=urllib.parse.unquote(label) if label else None,
      method=verb if http_method == "POST" else "",
      subresource=(verb or "") if http_method == "GET" else "")


def fill_model_spec(spec: model_pb2.ModelSpec, info: ModelInfo) -> None:
  """Name plus version or label, as the URL gave them.

  Raises:
    ServingError: INVALID_ARGUMENT if both a version and a label are given.
  """
  spec.name = info.model_name
  if info.version is not None and info.label is not None:
    raise status.invalid_argument(
        f"Both model version ({info.version}) and model version label "
        f"({info.label}) cannot be supplied.")
  if info.version is not None:
    spec.version.value = info.version
  if info.label is not None:
    spec.version_label = info.label


def _to_json(message) -> str:
  return json_format.MessageToJson(
      message, preserving_proto_field_name=True,
      always_print_fields_with_no_presence=True, indent=1)


def model_status_to_json(
    response: get_model_status_pb2.GetModelStatusResponse) -> str:
  """{"model_version_status": [{"version": "1", "state": ..., ...}]}.

  Each version carries its "status" object even when it is OK, as upstream's
  replies do (clients read status.error_code unconditionally).
  """
  return _to_json(_with_version_statuses(response))


def model_list_to_json(
    statuses: list[get_model_status_impl.ModelStatus]) -> str:
  """{"models": [{"name": ..., "model_version_status": [...], "status": ...}]}.

  Not in upstream (GET /v1/models). Each entry is the model-status reply
  of GET /v1/models/{name} with the model's "name" and a "status" in the
  StatusProto shape its versions use: OK, or the error GetModelStatus gives
  for the model (NOT_FOUND "Could not find any versions of model X" before
  any version is known).
  """
  models = []
  for model in statuses:
    entry = {"name": model.name}
    entry.update(json_format.MessageToDict(
        _with_version_statuses(model.response),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True))
    entry["status"] = json_format.MessageToDict(
        status_util.to_status_proto(model.error),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True)
    models.append(entry)
  return json.dumps({"models": models}, indent=1)


def _with_version_statuses(
    response: get_model_status_pb2.GetModelStatusResponse
) -> get_model_status_pb2.GetModelStatusResponse:
  """The response with every version's "status" set (OK when unset)."""
  if any(not v.HasField("status") for v in response.model_version_status):
    copy = get_model_status_pb2.GetModelStatusResponse()
    copy.CopyFrom(response)
    for version_status in copy.model_version_status:
      version_status.status.SetInParent()
    response = copy
  return response


def model_metadata_to_json(
    response: get_model_metadata_pb2.GetModelMetadataResponse) -> str:
  """{"model_spec": ..., "metadata": {"signature_def": <SignatureDefMap>}}.

  The Any is unpacked (no "@type"), as upstream assembles this reply.

  Raises:
    ServingError: INTERNAL if the response lacks the signature_def entry.
  """
  if _METADATA_SIGNATURE_DEF not in response.metadata:
    raise status.internal(
        "Failed to find 'signature_def' key in the GetModelMetadataResponse "
        "metadata map.")
  signature_def_map = get_model_metadata_pb2.SignatureDefMap()
  if not response.metadata[_METADATA_SIGNATURE_DEF].Unpack(signature_def_map):
    raise status.internal(
        "Failed to unpack 'Any' object to 'SignatureDefMap'.")
  return ('{\n"model_spec":' + _to_json(response.model_spec) + ",\n" +
          '"metadata": {"signature_def": ' + _to_json(signature_def_map) +
          "}\n}\n")


def decompress(body: bytes, encoding: str) -> bytes:
  """Undoes Content-Encoding gzip/deflate, refusing bombs over 100 MB.

  Raises:
    ServingError: UNIMPLEMENTED for another encoding; INVALID_ARGUMENT for a
      corrupt body or one that inflates beyond MAX_UNCOMPRESSED_BYTES.
  """
  encoding = encoding.strip().lower()
  if not encoding or encoding == "identity":
    return body
  if encoding in ("gzip", "x-gzip"):
    wbits = 16 + zlib.MAX_WBITS
  elif encoding == "deflate":
    wbits = zlib.MAX_WBITS
  else:
    raise status.unimplemented(f"Unsupported Content-Encoding: {encoding}")
  decompressor = zlib.decompressobj(wbits)
  try:
    data = decompressor.decompress(body, MAX_UNCOMPRESSED_BYTES + 1)
  except zlib.error as e:
    raise status.invalid_argument(
        f"Failed to decompress the request body ({encoding}): {e}") from None
  if len(data) > MAX_UNCOMPRESSED_BYTES or decompressor.unconsumed_tail:
    raise status.invalid_argument(
        "Uncompressed request body exceeds the limit of "
        f"{MAX_UNCOMPRESSED_BYTES} bytes")
  return data
