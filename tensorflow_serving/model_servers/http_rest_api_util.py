"""Pieces of the REST API that are about URLs and proto JSON, not HTTP.

As upstream's model_servers/http_rest_api_util: the URL patterns and their
parsing into model name / version / label / verb, the ModelSpec they make,
the JSON that the status and metadata GETs return (protobuf's JSON with
the proto field names and every field printed, as upstream prints them),
and reading a body: its size limit (--rest_api_max_body_bytes), undoing its
Content-Encoding (gzip or deflate) chunk by chunk, and charging what it
holds to the server's memory budget (BodyBudget).
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
from tensorflow_serving.util import memory_budget as memory_budget_lib
from tensorflow_serving.util import metrics
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

# --rest_api_max_body_bytes' default: upstream's limit on a decompressed
# request body (net_http's ZLib::kMaxUncompressedBytes), here applied to the
# body as received too (upstream reads a plain body of any size whole).
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024
MAX_UNCOMPRESSED_BYTES = DEFAULT_MAX_BODY_BYTES  # The old name.
# Bytes inflated per step: each step is charged to the budget before it runs.
_INFLATE_CHUNK_BYTES = 1 << 20

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


class BodyTooLargeError(status.ServingError):
  """RESOURCE_EXHAUSTED: a body (as received or inflated) over
  --rest_api_max_body_bytes; the REST server answers it 413."""

  def __init__(self, what: str, max_bytes: int) -> None:
    super().__init__(
        status.Code.RESOURCE_EXHAUSTED,
        f"The request body {what} exceeds the limit of {max_bytes} bytes "
        "(--rest_api_max_body_bytes)")


class BodyBudget:
  """One REST request's share of the server's memory budget, and its limit.

  The body is charged three times over its life, all to one Reservation:
  as it is received (by the HTTP server, a chunk at a time), as it is
  inflated (each chunk before zlib writes it), and for decoding
  (memory_budget.DECODE_FACTOR times the JSON, the arrays decoded from it,
  as the gRPC side charges a message). Nothing is charged until the total
  reaches the budget's min_charge_bytes (then all of it at once), so small
  requests cost no lock. release() gives everything back (idempotent), once
  the request is answered.

  Thread-compatible: used by one thread at a time (the event loop while the
  body arrives, then the thread that handles the request).
  """

  __slots__ = ("max_bytes", "_budget", "_reservation", "_total",
               "_wait_seconds")

  def __init__(self, budget: Optional[memory_budget_lib.MemoryBudget],
               max_bytes: int = DEFAULT_MAX_BODY_BYTES,
               wait_seconds: float = memory_budget_lib.WAIT_SECONDS) -> None:
    self.max_bytes = max_bytes
    self._budget = budget
    self._reservation: Optional[memory_budget_lib.Reservation] = None
    self._total = 0  # Bytes counted, charged or not yet.
    self._wait_seconds = wait_seconds

  @property
  def charged(self) -> int:
    """Bytes held in the budget now."""
    return self._reservation.nbytes if self._reservation is not None else 0

  def _owed(self, nbytes: int) -> int:
    """Counts nbytes; what must be charged now (0 below min_charge)."""
    self._total += nbytes
    budget = self._budget
    if budget is None or self._total < budget.min_charge_bytes:
      return 0
    if self._reservation is None:
      self._reservation = memory_budget_lib.Reservation(budget, 0)
      return self._total
    return nbytes

  def try_add(self, nbytes: int) -> bool:
    """Charges nbytes if there is room now (never waits; the event loop's).
    False: nothing charged, and the bytes are not counted."""
    owed = self._owed(nbytes)
    if not owed or self._reservation.try_grow(owed):
      return True
    self._total -= nbytes
    return False

  def add(self, nbytes: int, timeout: Optional[float] = None) -> None:
    """Charges nbytes, waiting up to `timeout` (default: the budget's wait,
    0.5 s) for room.

    Raises:
      ServingError: RESOURCE_EXHAUSTED if no room came in time.
    """
    owed = self._owed(nbytes)
    if owed:
      try:
        self._reservation.grow(
            owed, self._wait_seconds if timeout is None else timeout,
            metrics.REST)
      except status.ServingError:
        self._total -= nbytes
        raise

  def release(self) -> None:
    if self._reservation is not None:
      self._reservation.release()


def read_body(body: bytes, encoding: str,
              body_budget: Optional[BodyBudget] = None) -> bytes:
  """The body ready to decode: inflated, and charged for decoding.

  Inflates gzip/deflate a chunk at a time, charging each chunk to the
  budget before zlib writes it, so that a bomb never holds more than its
  limit (or than the budget gives it); then charges DECODE_FACTOR x the
  result for decoding it.

  Raises:
    ServingError: BodyTooLargeError (RESOURCE_EXHAUSTED, answered 413) over
      the limit; RESOURCE_EXHAUSTED when the budget stays full;
      UNIMPLEMENTED for another encoding; INVALID_ARGUMENT for a corrupt
      body.
  """
  if body_budget is None:
    body_budget = BodyBudget(None)
  data = decompress(body, encoding, body_budget)
  body_budget.add(memory_budget_lib.DECODE_FACTOR * len(data))
  return data


def decompress(body: bytes, encoding: str,
               body_budget: Optional[BodyBudget] = None) -> bytes:
  """Undoes Content-Encoding gzip/deflate, a chunk at a time (see read_body).

  Raises:
    ServingError: UNIMPLEMENTED for another encoding; INVALID_ARGUMENT for a
      corrupt body; BodyTooLargeError when it inflates beyond the limit;
      RESOURCE_EXHAUSTED when the budget stays full.
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
  if body_budget is None:
    body_budget = BodyBudget(None)
  limit = body_budget.max_bytes
  charged = 0  # Bytes of inflated body charged so far.
  if wbits > zlib.MAX_WBITS and len(body) >= 18 and body[:2] == b"\x1f\x8b":
    # gzip's trailer gives the size (mod 2**32) of its last member, which
    # the whole is at least: over the limit, refuse before inflating; else
    # charge it at once (one wait in line, not one per megabyte). A false
    # claim only costs its sender: the inflating below is charged anyway.
    claimed = int.from_bytes(body[-4:], "little")
    if claimed > limit:
      raise BodyTooLargeError("once inflated", limit)
    body_budget.add(claimed)
    charged = claimed
  decompressor = zlib.decompressobj(wbits)
  chunks = []
  size = 0
  pending = body
  try:
    while True:
      step = min(_INFLATE_CHUNK_BYTES, limit + 1 - size)
      if size + step > charged:
        body_budget.add(size + step - charged)
        charged = size + step
      chunk = decompressor.decompress(pending, step)
      pending = decompressor.unconsumed_tail
      size += len(chunk)
      if size > limit:
        raise BodyTooLargeError("once inflated", limit)
      chunks.append(chunk)
      if decompressor.eof or (not pending and len(chunk) < step):
        break
  except zlib.error as e:
    raise status.invalid_argument(
        f"Failed to decompress the request body ({encoding}): {e}") from None
  if len(chunks) == 1:
    return chunks[0]
  body_budget.add(size)  # The joined copy, while the chunks are still held.
  return b"".join(chunks)
