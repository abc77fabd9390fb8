"""JSON <-> tensor conversion: the wire codec of the REST API's bodies.

Pure functions, no HTTP and no TensorFlow runtime. The REST handler decodes a
body into the same PredictRequest / ClassificationRequest / RegressionRequest
that gRPC clients send, calls the transport-free impl, and encodes the
response here; so REST and gRPC share every rule past the wire.

What clients rely on, and this module keeps (upstream HEAD's
util/json_tensor.cc, which parses with rapidjson 1.1.0 and decodes base64
with absl; docs/api_rest.md lists the few deliberate differences):
  * Predict bodies come in the row format ("instances", one element per
    batch row, stacked into a new leading dimension) or the columnar format
    ("inputs", each named input with its own shape). The response uses the
    matching key: "predictions" or "outputs".
  * Values are converted by the signature's dtype, never inferred from the
    JSON: a float input accepts any JSON number that converts without loss
    (an integer token within 2^24 - 1, a decimal within float's range), an
    int input only integers in range, a string input strings or
    {"b64": "..."} objects. Lists must be rectangular. Errors carry
    upstream's texts, which clients match.
  * The body is read as rapidjson reads it: NaN, Inf, Infinity, -Inf,
    -Infinity are numbers; bytes that are not UTF-8 reach string inputs as
    they are; the first of repeated keys counts; parse errors carry
    rapidjson's message and byte offset.
  * Floats are written the way upstream writes them (six significant digits
    when they round-trip, full precision otherwise), with ".0" on whole
    numbers so that 3.0 stays 3.0 rather than becoming the integer 3; NaN
    and infinities as bare tokens.
  * DT_STRING outputs whose alias ends in "_bytes" are written as
    {"b64": "..."}.
  * The layout of the text follows upstream's pretty printer (4-space
    indents, tensor rows on one line), so documented outputs match.

Speed: a predict body that is strict JSON with numeric inputs (what clients
send) is parsed by simdjson, and each input's numbers go from its C++ parse
straight into a numpy buffer (_fill_predict_request_fast); everything else,
errors included, takes the reference decoder (_fill_predict_request_exact),
which converts well-typed lists in bulk and walks a value element by element
only to report the first error where upstream does. A differential test
(json_tensor_test) holds all of them to one result.
"""

import base64
import binascii
import codecs
import enum
import json
import math
import re
import struct
import threading
from typing import Any, Callable, Mapping, Optional

import numpy as np
import simdjson

from tensorflow.core.example import example_pb2
from tensorflow.core.example import feature_pb2
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec

DT = types_pb2.DataType

_SIGNATURE_KEY = "signature_name"
_INSTANCES_KEY = "instances"
_INPUTS_KEY = "inputs"
_CONTEXT_KEY = "context"
_EXAMPLES_KEY = "examples"
_PREDICTIONS_KEY = "predictions"
_OUTPUTS_KEY = "outputs"
_RESULTS_KEY = "results"
_B64_KEY = "b64"
_BYTES_SUFFIX = "_bytes"

# Error dumps of JSON values are cut to this many characters, so that a
# rejected 1 MB body does not come back whole in the error message.
_MAX_DUMP_CHARS = 256

_FLT_MAX = float(np.finfo(np.float32).max)
# rapidjson's Value::IsFloat() bound (a double literal a little below FLT_MAX).
_IS_FLOAT_MAX = 3.4028234e38
# Largest integers that float32 / float64 hold exactly (2^digits - 1).
_MAX_EXACT_INT = {DT.DT_FLOAT: (1 << 24) - 1, DT.DT_DOUBLE: (1 << 53) - 1}
_INT32_RANGE = (-(1 << 31), (1 << 31) - 1)
_INT64_RANGE = (-(1 << 63), (1 << 63) - 1)
_UINT32_RANGE = (0, (1 << 32) - 1)
_UINT64_RANGE = (0, (1 << 64) - 1)
_SMALL_INTS = (DT.DT_INT32, DT.DT_INT16, DT.DT_INT8, DT.DT_UINT8)
_INT_RANGES = {
    DT.DT_INT32: _INT32_RANGE, DT.DT_INT16: _INT32_RANGE,
    DT.DT_INT8: _INT32_RANGE, DT.DT_UINT8: _INT32_RANGE,
    DT.DT_INT64: _INT64_RANGE, DT.DT_UINT32: _UINT32_RANGE,
    DT.DT_UINT64: _UINT64_RANGE,
}
_NUMPY_OF = {
    DT.DT_FLOAT: np.float32, DT.DT_DOUBLE: np.float64,
    DT.DT_INT32: np.int32, DT.DT_INT16: np.int16, DT.DT_INT8: np.int8,
    DT.DT_UINT8: np.uint8, DT.DT_INT64: np.int64, DT.DT_UINT32: np.uint32,
    DT.DT_UINT64: np.uint64, DT.DT_BOOL: np.bool_,
}
_FLOAT_TYPES = frozenset((float, int))
_INT_TYPES = frozenset((int,))
_BOOL_TYPES = frozenset((bool,))
_STRING_TYPES = frozenset((str, dict))


class JsonPredictRequestFormat(enum.Enum):
  """Which layout a predict body used; the response uses the same one."""
  INVALID = 0
  ROW = 1  # "instances" -> "predictions"
  COLUMNAR = 2  # "inputs" -> "outputs"


# A JSON parser (bytes or str -> Python value) that raises on bad input.
JsonLoads = Callable[[bytes | str], Any]

# A callable that returns the input TensorInfo map of a signature name ("" is
# the default signature), or raises ServingError.
TensorInfoMapGetter = Callable[[str], Mapping[str, meta_graph_pb2.TensorInfo]]


class _Slow(Exception):
  """The fast path cannot handle a value: walk it exactly instead."""


# --- Names and dumps, as TensorFlow and rapidjson print them ------------------


def _dtype_string(dtype: int) -> str:
  """TensorFlow's DataTypeString: DT_FLOAT -> "float"."""
  try:
    return DT.Name(dtype)[3:].lower()
  except ValueError:
    return f"unknown dtype enum ({dtype})"


def _json_type_string(val: Any) -> str:
  if val is None:
    return "Null"
  if val is True:
    return "True"
  if val is False:
    return "False"
  if isinstance(val, dict):
    return "Object"
  if isinstance(val, list):
    return "Array"
  if isinstance(val, str):
    return "String"
  return "Number"


def _json_value_to_string(val: Any) -> str:
  """A JSON value as error messages show it (pretty, cut to 256 chars)."""
  if type(val) is int and not _INT64_RANGE[0] <= val <= _UINT64_RANGE[1]:  # pylint: disable=unidiomatic-typecheck
    val = float(val)  # rapidjson holds such an integer as a double.
  if type(val) is float:  # pylint: disable=unidiomatic-typecheck
    # rapidjson treats a double that fits a float as a float here.
    if -_IS_FLOAT_MAX <= val <= _IS_FLOAT_MAX:
      text = _format_float32(float(np.float32(val)))
    else:
      text = _format_double(val)
  else:
    parts: list[str] = []
    try:
      _pretty(val, 0, parts)
    except _StopWriting:
      pass
    text = "".join(parts)
  return text[:_MAX_DUMP_CHARS]


class _StopWriting(Exception):
  """rapidjson's Writer refused a value (NaN or infinity): output ends."""


def _pretty(val: Any, depth: int, out: list) -> None:
  """rapidjson's PrettyWriter (4-space indent) for an error message dump."""
  t = type(val)
  if val is None:
    out.append("null")
  elif t is bool:
    out.append("true" if val else "false")
  elif t is int:
    if _INT64_RANGE[0] <= val <= _UINT64_RANGE[1]:
      out.append(str(val))
    else:
      out.append(_rapidjson_dtoa(float(val)))
  elif t is float:
    if not math.isfinite(val):
      raise _StopWriting()
    out.append(_rapidjson_dtoa(val))
  elif t is str:
    out.append(_json_string(val))
  elif t is list:
    if not val:
      out.append("[]")
      return
    inner = "\n" + _indent(depth + 1)
    out.append("[")
    for k, item in enumerate(val):
      out.append(inner if k == 0 else "," + inner)
      _pretty(item, depth + 1, out)
    out.append("\n" + _indent(depth) + "]")
  else:
    members = _members(val)
    if not members:
      out.append("{}")
      return
    inner = "\n" + _indent(depth + 1)
    out.append("{")
    for k, (key, item) in enumerate(members):
      out.append((inner if k == 0 else "," + inner) + _json_string(key) + ": ")
      _pretty(item, depth + 1, out)
    out.append("\n" + _indent(depth) + "}")


def _rapidjson_dtoa(val: float) -> str:
  """A finite double as rapidjson's Writer writes it (Grisu2's shortest
  digits, laid out by its Prettify(): 100.0, 0.001, 1e-7, 1.5e21)."""
  if val == 0:
    return "-0.0" if math.copysign(1.0, val) < 0 else "0.0"
  sign = "-" if val < 0 else ""
  mantissa, _, exponent = repr(abs(val)).partition("e")
  whole, _, fraction = mantissa.partition(".")
  digits = (whole + fraction).lstrip("0")
  k = int(exponent or 0) - len(fraction)
  stripped = digits.rstrip("0")
  k += len(digits) - len(stripped)
  digits = stripped
  length = len(digits)
  kk = length + k
  if 0 <= k and kk <= 21:
    text = digits + "0" * k + ".0"
  elif 0 < kk <= 21:
    text = digits[:kk] + "." + digits[kk:]
  elif -6 < kk <= 0:
    text = "0." + "0" * -kk + digits
  elif length == 1:
    text = digits + "e" + str(kk - 1)
  else:
    text = digits[0] + "." + digits[1:] + "e" + str(kk - 1)
  return sign + text


# rapidjson's string escapes: the two-character ones, \u00XX (upper-case hex)
# for other control characters, nothing else (not even non-ASCII).
_STRING_ESCAPES = {i: f"\\u{i:04X}" for i in range(0x20)}
_STRING_ESCAPES.update({
    ord("\b"): "\\b", ord("\f"): "\\f", ord("\n"): "\\n", ord("\r"): "\\r",
    ord("\t"): "\\t", ord('"'): '\\"', ord("\\"): "\\\\"})


def _json_string(text: str) -> str:
  return '"' + text.translate(_STRING_ESCAPES) + '"'


def _status_string(error: status.ServingError) -> str:
  """A status as TensorFlow's Status::ToString() prints it."""
  return f"{error.code.name}: {error.message}"


def _shape_string(shape: list[int]) -> str:
  return "[" + ",".join(str(d) for d in shape) + "]"


def _format_error(val: Any, *parts: str) -> status.ServingError:
  return status.invalid_argument(
      "JSON Value: " + _json_value_to_string(val) + " " + "".join(parts))


def _type_error(val: Any, dtype: int) -> status.ServingError:
  return status.invalid_argument(
      f"JSON Value: {_json_value_to_string(val)} Type: "
      f"{_json_type_string(val)} is not of expected type: "
      f"{_dtype_string(dtype)}")


def _lossy_error(val: Any, target: str) -> status.ServingError:
  return status.invalid_argument(
      f"Cannot convert JSON value: {_json_value_to_string(val)} to {target} "
      "without loss of precision.")


# --- Writing decimals ---------------------------------------------------------


def _finish_decimal(text: str) -> str:
  """Adds ".0" to whole numbers; spells non-finite values as JSON tokens."""
  if "." in text or "e" in text:
    return text
  if text == "nan":
    return "NaN"
  if text == "inf":
    return "Infinity"
  if text == "-inf":
    return "-Infinity"
  return text + ".0"


def _format_float32(val: float) -> str:
  """Writes a float32 value (held in a Python float) as upstream does."""
  text = "%.6g" % val
  if math.isfinite(val) and float(np.float32(float(text))) != val:
    text = "%.9g" % val
  return _finish_decimal(text)


def _format_double(val: float) -> str:
  text = "%.6g" % val
  if math.isfinite(val) and float(text) != val:
    text = "%.17g" % val
  return _finish_decimal(text)


def _short_candidates(flat: np.ndarray) -> np.ndarray:
  """Which values (likely) round-trip through six significant digits: the
  value rounded to six digits in float64 arithmetic, converted back, equals
  it. Only a hint: each candidate's "%.6g" text is checked exactly."""
  wide = flat.astype(np.float64)
  with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
    magnitude = np.abs(wide)
    exponent = np.floor(np.log10(np.where(magnitude > 0, magnitude, 1.0)))
    scale = np.power(10.0, 5.0 - exponent)
    rounded = np.round(wide * scale) / scale
    candidates = (rounded.astype(flat.dtype) == flat) | (wide == 0)
  return candidates & np.isfinite(wide)


_FLOAT32 = struct.Struct("f")


def _format_decimals(flat: np.ndarray) -> list[str]:
  """Writes a flat float32/float64 array as WriteDecimal does ("%.6g" when
  it round-trips, else max_digits10), in bulk: one %-format call for all
  values in the long form, Python's "%.6g" (checked) only for the values
  numpy finds likely to round-trip, and ".0" only where it is missing."""
  n = flat.size
  if not n:
    return []
  values = flat.tolist()
  if flat.dtype == np.float32 and n > 64:
    texts = (("%.9g," * n) % tuple(values)).split(",")
    del texts[-1]
    # float64 arithmetic is exact enough to find float32's short values.
    for i in np.flatnonzero(_short_candidates(flat)).tolist():
      text = "%.6g" % values[i]
      if float(np.float32(float(text))) == values[i]:
        texts[i] = text
  else:
    texts = (("%.6g," * n) % tuple(values)).split(",")
    del texts[-1]
    if n <= 64:
      # Few values: checked one by one, cheaper than numpy's calls. A
      # float32 round trip is struct's float pack (the same C cast as
      # numpy's astype).
      if flat.dtype == np.float32:
        pack, unpack = _FLOAT32.pack, _FLOAT32.unpack
        for i, value in enumerate(values):
          if unpack(pack(float(texts[i])))[0] != value:
            texts[i] = "%.9g" % value
      else:
        for i, value in enumerate(values):
          if float(texts[i]) != value:
            texts[i] = "%.17g" % value
      return [_finish_decimal(text) for text in texts]
    with np.errstate(invalid="ignore"):
      back = np.array(texts, dtype=np.float64).astype(flat.dtype)
    long_format = "%.9g" if flat.dtype == np.float32 else "%.17g"
    for i in np.flatnonzero(back != flat).tolist():
      texts[i] = long_format % values[i]
  # Only texts of whole numbers (or non-finite values) can lack '.' and 'e'.
  with np.errstate(invalid="ignore"):
    whole = ~np.isfinite(flat) | (flat == np.trunc(flat))
  for i in np.flatnonzero(whole).tolist():
    texts[i] = _finish_decimal(texts[i])
  return texts


# --- Reading JSON as rapidjson 1.1.0 does ------------------------------------
#
# Upstream parses with rapidjson 1.1.0 (kParseNanAndInfFlag, no encoding
# validation, normal-precision numbers). The standard library's parser does
# the work here; what rapidjson does differently is handled around it:
#   * NaN, Inf, Infinity, -Inf, -Infinity and -NaN are numbers;
#   * bytes that are not UTF-8 are accepted inside strings and kept as they
#     are (so a string input receives the client's bytes);
#   * a \u escape of a high surrogate that no low surrogate follows, and a
#     number beyond double's range (or with a positive exponent rapidjson's
#     digit counting refuses) are parse errors;
#   * a NUL byte ends the document;
#   * of duplicate object keys the first is the one FindMember() returns;
#   * error messages and byte offsets are rapidjson's.

# Python's messages -> rapidjson's (GetParseError_En), which clients see.
_PARSE_MESSAGES = (
    ("Expecting value", "Invalid value."),
    ("Expecting property name", "Missing a name for object member."),
    ("Illegal trailing comma before end of object",
     "Missing a name for object member."),
    ("Illegal trailing comma before end of array", "Invalid value."),
    ("Expecting ':' delimiter",
     "Missing a colon after a name of object member."),
    ("Extra data", "The document root must not be followed by other values."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid \\uXXXX", "Incorrect hex digit after \\u escape in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
    ("Invalid control character", "Invalid encoding in string."),
)
_NUMBER_TOO_BIG = "Number too big to be stored in double."
_SURROGATE_INVALID = "The surrogate pair in string is invalid."
_MISS_FRACTION = "Miss fraction part in number."
_MISS_EXPONENT = "Miss exponent in number."

# Tokens rapidjson reads as numbers and the standard library does not.
_NAN_INF_RE = re.compile(r'"(?:[^"\\]|\\.)*"|(-?)Inf(?!i)|-NaN')
# Where a rapidjson-only error (below) may hide: a positive exponent of three
# digits, a long run of digits, a \u escape of a high surrogate. Found with
# bytes.translate and find, which are much faster than a regular expression.
_HINT_TABLE = bytes.maketrans(b"0123456789E", b"0000000000e")
_HIGH_SURROGATE_RE = re.compile(rb"\\u[dD][89abAB]")


def _rapidjson_only_hint(raw: bytes) -> bool:
  digits = raw.translate(_HINT_TABLE)
  return (b"e000" in digits or b"e+000" in digits or b"0" * 200 in digits or
          (b"\\u" in raw and _HIGH_SURROGATE_RE.search(raw) is not None))
_TOKEN_RE = re.compile(
    r'"((?:[^"\\]|\\.)*)"|(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?)(\d+))?')
_ESCAPE_RE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)")
_INT_PREFIX_RE = re.compile(r"-?(?:0|[1-9]\d*)$")
_FRACTION_PREFIX_RE = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?$")

_DBL_MAX = float(np.finfo(np.float64).max)
_POW10 = [float(f"1e{i}") for i in range(309)]


class _ObjectWithDuplicates(dict):
  """A JSON object that repeats a key: maps each key to its first value (as
  rapidjson's FindMember does) and keeps every member in `members`."""
  members: list


def _object_from_pairs(pairs: list) -> dict:
  obj = dict(pairs)
  if len(obj) == len(pairs):
    return obj
  first = _ObjectWithDuplicates()
  for key, value in pairs:
    if key not in first:
      first[key] = value
  first.members = pairs
  return first


def _members(obj: dict) -> list:
  """Every member of a JSON object in document order, repeated keys too."""
  if type(obj) is _ObjectWithDuplicates:  # pylint: disable=unidiomatic-typecheck
    return obj.members
  return list(obj.items())


def _string_bytes_error(error: UnicodeEncodeError) -> tuple[bytes, int]:
  """Encodes what UTF-8 cannot: the body's own non-UTF-8 bytes (decoded with
  surrogateescape) go back as those bytes, lone surrogates from \\u escapes as
  rapidjson 1.1.0 writes them (three bytes)."""
  out = bytearray()
  for ch in error.object[error.start:error.end]:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:
      out.append(code - 0xDC00)
    else:
      out += ch.encode("utf-8", "surrogatepass")
  return bytes(out), error.end


codecs.register_error("tensorflow_serving_json_bytes", _string_bytes_error)


def _utf8(text: str) -> bytes:
  """A JSON string's bytes, as rapidjson hands them to the tensor."""
  return text.encode("utf-8", "tensorflow_serving_json_bytes")


class _Document:
  """A body decoded to text, with the map from text positions to byte
  offsets (rapidjson reports byte offsets, counting a skipped BOM)."""

  def __init__(self, raw: bytes):
    start = 0
    # rapidjson's UTF-8 MemoryStream skips each byte of a BOM it finds.
    for byte in (0xEF, 0xBB, 0xBF):
      if len(raw) > start and raw[start] == byte:
        start += 1
    self.start = start
    try:
      self.text = raw[start:].decode("utf-8")
    except UnicodeDecodeError:
      self.text = raw[start:].decode("utf-8", "surrogateescape")

  def offset(self, pos: int) -> int:
    return self.start + len(_utf8(self.text[:pos]))


def _rapidjson_number_too_big(minus: str, int_digits: str, frac_digits: str,
                              exp_sign: str, exp_digits: str) -> bool:
  """Whether rapidjson 1.1.0's ParseNumber (64-bit build, normal precision)
  fails a number token with kParseErrorNumberTooBig: it replays the same
  integer and double arithmetic."""
  digits = [ord(c) - 48 for c in int_digits]
  i = 0
  use64 = use_double = False
  d = 0.0
  significant = 0
  pos = 0
  if digits[0] != 0:
    limit32, last32 = (214748364, 8) if minus else (429496729, 5)
    limit64, last64 = ((922337203685477580, 8) if minus else
                       (1844674407370955161, 5))
    while pos < len(digits):
      digit = digits[pos]
      if i >= limit32 and (i != limit32 or digit > last32):
        use64 = True
        break
      i = i * 10 + digit
      significant += 1
      pos += 1
    if use64:
      while pos < len(digits):
        digit = digits[pos]
        if i >= limit64 and (i != limit64 or digit > last64):
          d = float(i)
          use_double = True
          break
        i = i * 10 + digit
        significant += 1
        pos += 1
    if use_double:
      while pos < len(digits):
        if d >= 1.7976931348623157e307:
          return True
        d = d * 10.0 + digits[pos]
        pos += 1
  exp_frac = 0
  if frac_digits:
    fpos = 0
    if not use_double:
      while fpos < len(frac_digits):
        if i > (1 << 53) - 1:
          break
        i = i * 10 + ord(frac_digits[fpos]) - 48
        fpos += 1
        exp_frac -= 1
        if i != 0:
          significant += 1
      d = float(i)
      use_double = True
    while fpos < len(frac_digits):
      if significant < 17:
        d = d * 10.0 + ord(frac_digits[fpos]) - 48
        exp_frac -= 1
        if d > 0.0:
          significant += 1
      fpos += 1
  exp = 0
  if exp_digits:
    if not use_double:
      d = float(i)
      use_double = True
    if exp_sign == "-":
      exp = -int(exp_digits)  # Never an error, however long.
    else:
      max_exp = 308 - exp_frac
      for c in exp_digits:
        exp = exp * 10 + ord(c) - 48
        if exp > max_exp:
          return True
  if not use_double:
    return False
  p = exp + exp_frac
  if p < -308:
    return False  # Scaled towards zero: never too big.
  if p >= 0:
    d *= _POW10[p] if p <= 308 else math.inf
  else:
    d /= _POW10[-p]
  return d > _DBL_MAX


def _first_rapidjson_only_error(text: str, end: int) -> Optional[tuple]:
  """The first error rapidjson reports where the standard library does not
  (see _RAPIDJSON_ONLY_HINT_RE), before text position `end`:
  (position, message), or None."""
  for match in _TOKEN_RE.finditer(text, 0, end):
    content, minus, int_digits = match.group(1, 2, 3)
    if int_digits is not None:
      if int_digits[0] == "0" and len(int_digits) > 1:
        int_digits = "0"  # "012" is the number 0 and then a syntax error.
        frac = exp_sign = exp_digits = ""
      else:
        frac, exp_sign, exp_digits = match.group(4, 5, 6)
      if ((exp_digits and len(exp_digits) >= 3) or len(int_digits) >= 200):
        if _rapidjson_number_too_big(minus, int_digits, frac or "",
                                     exp_sign or "", exp_digits or ""):
          return match.start(), _NUMBER_TOO_BIG
    elif "\\u" in content:
      base = match.start(1)
      escapes = list(_ESCAPE_RE.finditer(content))
      for k, escape in enumerate(escapes):
        code = escape.group(1)
        if code is None or not 0xD800 <= int(code, 16) <= 0xDBFF:
          continue
        following = escapes[k + 1] if k + 1 < len(escapes) else None
        if (following is None or following.start() != escape.end() or
            following.group(1) is None or
            not 0xDC00 <= int(following.group(1), 16) <= 0xDFFF):
          return base + escape.start(), _SURROGATE_INVALID
  return None


def _literal_error_position(text: str, pos: int) -> int:
  """Where rapidjson stops on an invalid value starting at `pos`: after the
  part of a literal (null, true, false, NaN, Inf, Infinity) that matched."""
  def matched(at: int, word: str) -> int:
    n = 0
    while n < len(word) and text.startswith(word[n], at + n):
      n += 1
    return at + n

  ch = text[pos:pos + 1]
  if ch in ("n", "t", "f"):
    return matched(pos + 1, {"n": "ull", "t": "rue", "f": "alse"}[ch])
  at = pos + 1 if ch == "-" else pos
  if text.startswith("N", at):
    return matched(at, "NaN")
  if text.startswith("I", at):
    after = matched(at, "Inf")
    if after == at + 3 and text.startswith("i", after):
      return matched(after, "inity")
    return after
  if ch == "-":
    return pos + 1
  return pos


def _parse_failure(error: json.JSONDecodeError,
                   doc: _Document) -> tuple[int, str]:
  """A standard library parse error -> (text position, rapidjson message)."""
  text, pos, msg = doc.text, error.pos, error.msg
  if msg.startswith("Expecting value"):
    if not text[pos:].strip(" \t\n\r") and not text[:pos].strip(" \t\n\r"):
      return pos, "The document is empty."
    return _literal_error_position(text, pos), "Invalid value."
  if msg.startswith(("Expecting ',' delimiter", "Extra data")):
    # A number that stopped at '.' or 'e' is one rapidjson finds incomplete.
    if text.startswith(".", pos) and _INT_PREFIX_RE.search(text, 0, pos):
      return pos + 1, _MISS_FRACTION
    if text[pos:pos + 1] in ("e", "E") and _FRACTION_PREFIX_RE.search(
        text, 0, pos):
      after = pos + 2 if text[pos + 1:pos + 2] in ("+", "-") else pos + 1
      return after, _MISS_EXPONENT
  if msg.startswith("Expecting ',' delimiter"):
    if _innermost_open_bracket(text, pos) == "{":
      return pos, "Missing a comma or '}' after an object member."
    return pos, "Missing a comma or ']' after an array element."
  if msg.startswith("Unterminated string"):
    return len(text), "Missing a closing quotation mark in string."
  if msg.startswith("Invalid control character") and text[pos] == "\x00":
    return pos, "Missing a closing quotation mark in string."
  if msg.startswith("Invalid \\uXXXX"):
    return text.rindex("\\", 0, pos + 1), (
        "Incorrect hex digit after \\u escape in string.")
  for prefix, message in _PARSE_MESSAGES:
    if msg.startswith(prefix):
      return pos, message
  return pos, msg


def _innermost_open_bracket(text: str, end: int) -> str:
  """The '{' or '[' that is still open at text[end] (strings skipped)."""
  stack = []
  for match in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text[:end]):
    token = match.group()
    if token in "[{":
      stack.append(token)
    elif token in "]}" and stack:
      stack.pop()
  return stack[-1] if stack else ""


def _rewrite_nan_inf(text: str) -> tuple[str, list]:
  """Spells rapidjson's extra number tokens the standard library's way.

  Returns the new text and, for mapping positions back, the list of
  (position in the new text, shift to the old one) from each change on."""
  parts, shifts = [], []
  last = shift = 0
  for match in _NAN_INF_RE.finditer(text):
    token = match.group()
    if token.startswith('"'):
      continue
    new = "NaN" if token == "-NaN" else match.group(1) + "Infinity"
    parts.append(text[last:match.start()])
    parts.append(new)
    last = match.end()
    shift += len(token) - len(new)
    shifts.append((match.start() - (shift - (len(token) - len(new))) +
                   len(new), shift))
  parts.append(text[last:])
  return "".join(parts), shifts


def _parse_error(message: str, offset: int) -> status.ServingError:
  return status.invalid_argument(
      f"JSON Parse error: {message} at offset: {offset}")


def _parse_json(body: bytes | str) -> Any:
  """Parses a request body as upstream's rapidjson does (see above)."""
  raw = body if isinstance(body, bytes) else body.encode(
      "utf-8", "surrogatepass")
  doc = _Document(raw)
  text = doc.text
  nul = text.find("\x00")
  if nul >= 0 and not text[:nul].strip(" \t\n\r"):
    raise _parse_error("The document is empty.", doc.offset(nul))
  shifts = None
  hint = _rapidjson_only_hint(raw)
  while True:
    try:
      value = json.loads(text, object_pairs_hook=_object_from_pairs)
      failure = None
    except json.JSONDecodeError as e:
      if (shifts is None and e.msg.startswith("Expecting value") and
          _NAN_INF_RE.match(text, e.pos)):
        original = text
        text, shifts = _rewrite_nan_inf(text)
        continue
      if e.msg.startswith("Extra data") and text[e.pos] == "\x00":
        text = text[:e.pos]  # rapidjson reads a NUL as the end.
        continue
      failure = _parse_failure(e, _with_text(doc, text))
    except RecursionError:
      raise status.invalid_argument(
          "JSON Parse error: The document is nested too deeply") from None
    break
  text_for_offsets = original if shifts is not None else text

  def back(pos: int) -> int:
    if not shifts:
      return pos
    shift = 0
    for at, total in shifts:
      if pos >= at:
        shift = total
    return pos + shift

  if hint:
    extra = _first_rapidjson_only_error(
        text_for_offsets,
        back(failure[0]) if failure else len(text_for_offsets))
    if extra is not None:
      raise _parse_error(extra[1], doc.offset(extra[0]))
  if failure is not None:
    raise _parse_error(failure[1], doc.offset(back(failure[0])))
  return value


def _with_text(doc: _Document, text: str) -> _Document:
  copy = _Document.__new__(_Document)
  copy.start, copy.text = doc.start, text
  return copy


def _parse_json_object(body: bytes | str) -> dict:
  """Parses a request body that must be a JSON object."""
  if not body:
    raise status.invalid_argument("JSON Parse error: The document is empty")
  doc = _parse_json(body)
  if not isinstance(doc, dict):
    raise _format_error(doc, "Is not object")
  return doc


def _fill_signature(doc: dict, request) -> None:
  if _SIGNATURE_KEY in doc:
    name = doc[_SIGNATURE_KEY]
    if type(name) is not str:  # pylint: disable=unidiomatic-typecheck
      raise _format_error(
          doc, "not formatted correctly. 'signature_name' key must be a "
          "string value.")
    try:
      request.model_spec.signature_name = name
    except UnicodeEncodeError:
      # Bytes that are not UTF-8 (kept by the reader as surrogates). No
      # signature has such a name: the lookup then fails as for any unknown
      # name (upstream's reader keeps the bytes, with the same outcome).
      request.model_spec.signature_name = name.encode(
          "utf-8", "replace").decode("utf-8")


# --- JSON values -> tensors ---------------------------------------------------


def _is_b64_object(val: Any) -> bool:
  # rapidjson: exactly one member (a repeated key counts twice), named "b64",
  # whose value is a string.
  return (type(val) is dict and len(val) == 1 and  # pylint: disable=unidiomatic-typecheck
          type(val.get(_B64_KEY)) is str)  # pylint: disable=unidiomatic-typecheck


def _is_element_object(val: Any) -> bool:
  """A named-inputs object (an object that is not a {"b64": ...} value)."""
  return isinstance(val, dict) and not _is_b64_object(val)


def _decode_b64_object(val: Any) -> bytes:
  if not _is_b64_object(val):
    raise status.invalid_argument(
        f"JSON Value: {_json_value_to_string(val)} not formatted correctly "
        "for base64 data")
  decoded = _base64_unescape(val[_B64_KEY])
  if decoded is None:
    raise status.invalid_argument("Unable to base64 decode")
  return decoded


_BASE64_ALPHABET = (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    b"0123456789+/")
_BASE64_SPACE = b" \t\n\v\f\r"
_BASE64_PAD = re.compile(rb"[=.]")


def _base64_unescape(text: str) -> Optional[bytes]:
  """absl::Base64Unescape, which upstream uses: the standard alphabet;
  ASCII whitespace anywhere is skipped; padding ('=' or '.') is optional,
  but if present must be complete and last; bits left over in the final
  character are ignored. None where absl returns false."""
  try:
    data = text.encode("ascii")
  except UnicodeEncodeError:
    return None
  pad = _BASE64_PAD.search(data)
  tail = b""
  if pad is not None:
    data, tail = data[:pad.start()], data[pad.start():]
  data = data.translate(None, _BASE64_SPACE)
  if data.translate(None, _BASE64_ALPHABET):
    return None  # A character outside the alphabet.
  tail = tail.translate(None, _BASE64_SPACE)
  if tail.translate(None, b"=."):
    return None  # Data after the padding.
  left = len(data) % 4
  if left == 1:
    return None
  expected = {0: 0, 2: 2, 3: 1}[left]
  if tail and len(tail) != expected:
    return None
  return binascii.a2b_base64(data + b"=" * expected)


def _is_lossless_decimal(val: int | float, dtype: int) -> bool:
  """Whether a JSON number converts to float32/float64 without losing bits."""
  max_int = _MAX_EXACT_INT[dtype]
  if type(val) is int:  # pylint: disable=unidiomatic-typecheck
    if val == _INT64_RANGE[0]:
      # Upstream takes std::abs() of the int64, which leaves INT64_MIN
      # negative, so it passes (and -2^63 is exact in both types anyway).
      return True
    if _INT64_RANGE[0] <= val <= _UINT64_RANGE[1]:
      return abs(val) <= max_int
    try:  # Beyond 64 bits the JSON number is a double, as in rapidjson.
      val = float(val)
    except OverflowError:
      return False
  if not math.isfinite(val) or dtype == DT.DT_DOUBLE:
    return True
  return -_FLT_MAX <= val <= _FLT_MAX


def _convert_value(val: Any, dtype: int) -> Any:
  """One JSON scalar -> the Python value of a tensor element, or an error."""
  t = type(val)
  if dtype in (DT.DT_FLOAT, DT.DT_DOUBLE):
    if t is not float and t is not int:
      raise _type_error(val, dtype)
    if not _is_lossless_decimal(val, dtype):
      raise _lossy_error(val, "float" if dtype == DT.DT_FLOAT else "double")
    return float(val)
  if dtype in _INT_RANGES:
    low, high = _INT_RANGES[dtype]
    if t is not int or not low <= val <= high:
      raise _type_error(val, dtype)
    return val
  if dtype == DT.DT_STRING:
    if t is not str:
      raise _type_error(val, dtype)
    return _utf8(val)
  if dtype == DT.DT_BOOL:
    if t is not bool:
      raise _type_error(val, dtype)
    return val
  raise status.unimplemented(
      f"Conversion of JSON Value: {_json_value_to_string(val)} to type: "
      f"{_dtype_string(dtype)}")


def _dense_shape(val: Any) -> list[int]:
  """The shape a JSON value implies, following the first element down."""
  shape = []
  while type(val) is list:  # pylint: disable=unidiomatic-typecheck
    shape.append(len(val))
    if not val:
      break
    val = val[0]
  return shape


def _fill_exact(val: Any, level: int, shape: list[int], dtype: int,
                out: list) -> None:
  """Walks a JSON value against its shape; the first error is upstream's."""
  rank = len(shape)
  if type(val) is not list:  # pylint: disable=unidiomatic-typecheck
    if level != rank:
      raise status.invalid_argument(
          f"JSON Value: {_json_value_to_string(val)} found at incorrect "
          f"level: {level + 1} in the JSON DOM. Expected at level: {rank}")
    if isinstance(val, dict):
      if dtype != DT.DT_STRING:
        raise _type_error(val, dtype)
      out.append(_decode_b64_object(val))
    else:
      out.append(_convert_value(val, dtype))
    return
  if level >= rank:
    raise status.invalid_argument(
        f"Encountered list at unexpected level: {level} expected < {rank}")
  if len(val) != shape[level]:
    raise status.invalid_argument(
        f"Encountered list at unexpected size: {len(val)} at level: {level} "
        f"expected size: {shape[level]}")
  for item in val:
    _fill_exact(item, level + 1, shape, dtype, out)


def _values_to_array(values: list, shape: list[int], dtype: int) -> np.ndarray:
  """Already validated Python values -> an array of the tensor's dtype."""
  if dtype == DT.DT_STRING:
    array = np.empty(len(values), dtype=object)
    array[:] = values
  elif dtype in _SMALL_INTS or dtype == DT.DT_INT64:
    # int8/int16/uint8 wrap like the C++ narrowing cast upstream applies.
    array = np.array(values, dtype=np.int64).astype(_NUMPY_OF[dtype])
  elif dtype in _NUMPY_OF:
    array = np.array(values, dtype=_NUMPY_OF[dtype])
  else:
    array = np.empty(len(values), dtype=tensor_codec.to_numpy_dtype(dtype))
  return array.reshape(shape)


def _flatten_rectangular(val: Any, shape: list[int]) -> list:
  """The leaves of a rectangular nested list, or _Slow."""
  rank = len(shape)
  if rank == 0:
    return [val]
  if rank == 1:
    return val
  leaves = []
  last = rank - 1

  def walk(v, level):
    if type(v) is not list or len(v) != shape[level]:  # pylint: disable=unidiomatic-typecheck
      raise _Slow()
    if level == last:
      leaves.extend(v)
    else:
      for item in v:
        walk(item, level + 1)

  walk(val, 0)
  return leaves


def _fast_numeric_array(val: Any, dtype: int) -> np.ndarray:
  """Numbers for a float or integer input, through numpy's own inference.

  Only for bodies without true/false tokens: numpy would take a bool for a
  number. Anything else that is not a number (strings, null, objects) or
  not rectangular makes numpy produce a non-numeric array or fail, which
  sends the value to the exact walk.
  """
  shape = _dense_shape(val)
  try:
    array = np.array(val)
  except (ValueError, OverflowError, TypeError):
    raise _Slow() from None
  if array.shape != tuple(shape):
    raise _Slow()
  kind = array.dtype.kind
  if dtype in (DT.DT_FLOAT, DT.DT_DOUBLE):
    if kind not in "iuf":
      raise _Slow()
    if array.size:
      # Integers beyond the exact range and float32 overflow need the exact
      # walk (which knows which leaves were JSON integers).
      magnitude = np.abs(array)
      if kind == "f":
        magnitude = magnitude[np.isfinite(magnitude)]
      if magnitude.size and magnitude.max() > _MAX_EXACT_INT[dtype]:
        raise _Slow()
    return array.astype(_NUMPY_OF[dtype])
  if kind not in "iu":
    raise _Slow()
  if array.size:
    low, high = _INT_RANGES[dtype]
    if array.min() < low or array.max() > high:
      raise _Slow()
  if dtype == DT.DT_UINT64:
    return array.astype(np.uint64)
  return array.astype(_NUMPY_OF[dtype])


def _fast_array(val: Any, dtype: int, bool_free: bool = False) -> np.ndarray:
  """The common case in bulk: rectangular lists of the right types."""
  if bool_free and (dtype in _INT_RANGES or
                    dtype in (DT.DT_FLOAT, DT.DT_DOUBLE)):
    return _fast_numeric_array(val, dtype)
  shape = _dense_shape(val)
  leaves = _flatten_rectangular(val, shape)
  types = set(map(type, leaves))
  if dtype in (DT.DT_FLOAT, DT.DT_DOUBLE):
    if not types <= _FLOAT_TYPES:
      raise _Slow()
    if int in types:
      max_int = _MAX_EXACT_INT[dtype]
      if any(type(x) is int and not -max_int <= x <= max_int for x in leaves):  # pylint: disable=unidiomatic-typecheck
        raise _Slow()
    with np.errstate(over="ignore"):
      array = np.array(leaves, dtype=_NUMPY_OF[dtype])
    if dtype == DT.DT_FLOAT and float in types and np.isinf(array).any():
      if not np.array_equal(np.isinf(array),
                            np.isinf(np.array(leaves, dtype=np.float64))):
        raise _Slow()  # A finite double beyond float32's range.
  elif dtype in _INT_RANGES:
    if not types <= _INT_TYPES:
      raise _Slow()
    try:
      if dtype == DT.DT_UINT64:
        array = np.array(leaves, dtype=np.uint64)
      else:
        array = np.array(leaves, dtype=np.int64)
    except OverflowError:
      raise _Slow() from None
    if array.size and dtype != DT.DT_UINT64:
      low, high = _INT_RANGES[dtype]
      if array.min() < low or array.max() > high:
        raise _Slow()
      array = array.astype(_NUMPY_OF[dtype])
  elif dtype == DT.DT_BOOL:
    if not types <= _BOOL_TYPES:
      raise _Slow()
    array = np.array(leaves, dtype=np.bool_)
  elif dtype == DT.DT_STRING:
    if not types <= _STRING_TYPES:
      raise _Slow()
    array = np.empty(len(leaves), dtype=object)
    try:
      array[:] = [
          _utf8(v) if type(v) is str  # pylint: disable=unidiomatic-typecheck
          else _decode_b64_object(v) for v in leaves
      ]
    except status.ServingError:
      raise _Slow() from None
  else:
    raise _Slow()
  return array.reshape(shape)


def _json_to_array(val: Any, dtype: int, bool_free: bool,
                   bulk: bool = True) -> np.ndarray:
  """One tensor's JSON value -> array (columnar inputs, one row input)."""
  try:
    if not bulk:
      raise _Slow()
    return _fast_array(val, dtype, bool_free)
  except _Slow:
    shape = _dense_shape(val)
    values = []
    _fill_exact(val, 0, shape, dtype, values)
    return _values_to_array(values, shape, dtype)


def _store(array: np.ndarray, dtype: int, out: tensor_pb2.TensorProto) -> None:
  tensor_codec.ndarray_to_tensor_proto(
      array, out, as_tensor_content=dtype != DT.DT_STRING, dtype=dtype)


def _fill_from_instances_exact(
    instances: list, infos: Mapping[str, meta_graph_pb2.TensorInfo],
    names: list[str], elements_are_objects: bool) -> dict[str, np.ndarray]:
  """Upstream's element-by-element walk of "instances", with its errors."""
  values: dict[str, list] = {}
  sizes: dict[str, int] = {}
  shapes: dict[str, list[int]] = {}

  def add_item(item, name):
    if name not in infos:
      raise status.invalid_argument(
          f"JSON object: does not have named input: {name}")
    dtype = infos[name].dtype
    shape = _dense_shape(item)
    item_values = []
    _fill_exact(item, 0, shape, dtype, item_values)
    size = len(item_values)
    if name not in sizes:
      sizes[name] = size
      shapes[name] = shape
    elif sizes[name] != size:
      raise status.invalid_argument(
          f"Expecting tensor size: {sizes[name]} but got: {size}")
    elif shapes[name] != shape:
      raise status.invalid_argument(
          f"Expecting shape {_shape_string(shapes[name])} but got: "
          f"{_shape_string(shape)}")
    values.setdefault(name, []).extend(item_values)

  for index, element in enumerate(instances):
    if elements_are_objects:
      if not _is_element_object(element):
        raise status.invalid_argument(
            f"Expecting object but got list at item {index} of input list")
      for key, item in element.items():
        try:
          add_item(item, key)
        except status.ServingError as e:
          raise status.invalid_argument(
              f"Failed to process element: {index} key: {key} of 'instances' "
              f"list. Error: {_status_string(e)}") from None
      if set(element) != set(names):
        raise status.invalid_argument(
            f"Failed to process element: {index} of 'instances' list. JSON "
            f"object: {_json_value_to_string(element)} must only have keys: "
            f"{','.join(names)}")
    else:
      if _is_element_object(element):
        raise status.invalid_argument(
            f"Expecting value/list but got object at item {index} of input "
            "list")
      try:
        add_item(element, names[0])
      except status.ServingError as e:
        raise status.invalid_argument(
            f"Failed to process element: {index} of 'instances' list. "
            f"Error: {_status_string(e)}") from None
  return {
      name: _values_to_array(values[name], [len(instances)] + shapes[name],
                             infos[name].dtype)
      for name in values
  }


def _fill_from_instances(instances: list,
                         infos: Mapping[str, meta_graph_pb2.TensorInfo],
                         inputs, bool_free: bool, bulk: bool = True) -> None:
  names = sorted(infos)
  if not isinstance(instances[0], dict) and len(names) > 1:
    raise status.invalid_argument(
        "instances is a plain list, but expecting list of objects as multiple "
        "input tensors required as per tensorinfo_map")
  elements_are_objects = _is_element_object(instances[0])
  try:
    if not bulk:
      raise _Slow()
    if elements_are_objects:
      keys = set(names)
      for element in instances:
        if not _is_element_object(element) or element.keys() != keys:
          raise _Slow()
      arrays = {
          name: _fast_array([e[name] for e in instances], infos[name].dtype,
                            bool_free)
          for name in names
      }
    else:
      arrays = {
          names[0]: _fast_array(instances, infos[names[0]].dtype, bool_free)
      }
    # A row that is a bare scalar where others are lists is not rectangular.
    for array in arrays.values():
      if array.ndim == 0:
        raise _Slow()
  except _Slow:
    arrays = _fill_from_instances_exact(instances, infos, names,
                                        elements_are_objects)
  for name, array in arrays.items():
    _store(array, infos[name].dtype, inputs[name])


def _fill_from_inputs(val: Any, infos: Mapping[str, meta_graph_pb2.TensorInfo],
                      inputs, bool_free: bool, bulk: bool = True) -> None:
  names = sorted(infos)
  if not isinstance(val, dict) or _is_b64_object(val):
    if len(names) > 1:
      raise status.invalid_argument(
          "inputs is a plain value/list, but expecting an object as multiple "
          "input tensors required as per tensorinfo_map")
    dtype = infos[names[0]].dtype
    _store(_json_to_array(val, dtype, bool_free, bulk), dtype,
           inputs[names[0]])
    return
  for name in names:
    if name not in val:
      raise status.invalid_argument(
          f"Missing named input: {name} in 'inputs' object.")
    dtype = infos[name].dtype
    _store(_json_to_array(val[name], dtype, bool_free, bulk), dtype,
           inputs[name])


def fill_predict_request_from_json(
    body: bytes | str, get_tensorinfo_map: TensorInfoMapGetter,
    request: predict_pb2.PredictRequest,
    fast_loads: Optional[JsonLoads] = None) -> JsonPredictRequestFormat:
  """Fills request.inputs and the signature name from a predict body.

  Args:
    body: the HTTP body.
    get_tensorinfo_map: returns the signature's input TensorInfos for a
      signature name ("" = default); the dtypes drive the conversion.
    request: filled in place (model_spec name/version are the caller's).
    fast_loads: accepted for compatibility and unused: the body is parsed
      by simdjson where it can be (see _fill_predict_request_fast) and by the
      standard library, with rapidjson's rules, where it cannot.

  Returns:
    The format the body used, which the response must use too.

  Raises:
    ServingError: INVALID_ARGUMENT (UNIMPLEMENTED for an input dtype JSON
      cannot express) with upstream's message.
  """
  del fast_loads  # Unused; see above.
  raw = body if isinstance(body, bytes) else body.encode(
      "utf-8", "surrogatepass")
  if raw:
    request_format = _fill_predict_request_fast(raw, get_tensorinfo_map,
                                                request)
    if request_format is not None:
      return request_format
  return _fill_predict_request_exact(raw, get_tensorinfo_map, request)


def _fill_predict_request_exact(
    raw: bytes, get_tensorinfo_map: TensorInfoMapGetter,
    request: predict_pb2.PredictRequest,
    bulk: bool = True) -> JsonPredictRequestFormat:
  """The reference decoder: rapidjson's parse (_parse_json), then upstream's
  walk over the values. With `bulk`, well-typed rectangular lists are
  converted in bulk with numpy first (the same result, checked by
  json_tensor_test's differential test); a value that fails that is walked
  element by element, to report the first error where upstream does."""
  doc = _parse_json_object(raw)
  bool_free = bulk and b"true" not in raw and b"false" not in raw
  _fill_signature(doc, request)
  signature_name = request.model_spec.signature_name
  infos = get_tensorinfo_map(signature_name)
  if not infos:
    raise status.invalid_argument(
        "Failed to get input map for signature: "
        f"{signature_name or 'DEFAULT'}")
  has_instances = _INSTANCES_KEY in doc
  has_inputs = _INPUTS_KEY in doc
  if has_instances and has_inputs:
    raise _format_error(
        doc, "Not formatted correctly expecting only one of 'inputs' or "
        "'instances' keys to exist ")
  if has_instances:
    instances = doc[_INSTANCES_KEY]
    if type(instances) is not list:  # pylint: disable=unidiomatic-typecheck
      raise _format_error(doc, "Excepting 'instances' to be an list/array")
    if not instances:
      raise _format_error(doc, "No values in 'instances' array")
    _fill_from_instances(instances, infos, request.inputs, bool_free, bulk)
    return JsonPredictRequestFormat.ROW
  if has_inputs:
    _fill_from_inputs(doc[_INPUTS_KEY], infos, request.inputs, bool_free,
                      bulk)
    return JsonPredictRequestFormat.COLUMNAR
  raise status.invalid_argument("Missing 'inputs' or 'instances' key")


# --- The fast path: simdjson, numbers straight into arrays --------------------
#
# A big predict body is mostly numbers. simdjson (C++) parses the whole body
# and copies each numeric tensor's values into a buffer without a Python
# object per value; numpy checks and converts them. It takes only bodies it can
# prove the reference decoder (_fill_predict_request_exact) would turn into
# the same request: strict JSON (simdjson refuses NaN/Infinity, non-UTF-8,
# big integers), the keys signature_name plus one of instances/inputs, numeric
# inputs, rectangular lists of numbers, values every rule accepts. Anything
# else, every error included, goes to the reference decoder, which then
# decides. json_tensor_test's differential test holds the two to that.

_tls = threading.local()

# The simdjson buffer type per input dtype, and the (inclusive) range of
# values the fast path takes for it: beyond it upstream's rules need to know
# whether a token was an integer (float inputs) or reject it (integer inputs).
_FAST_BUFFERS = {
    DT.DT_FLOAT: ("d", np.float64, _MAX_EXACT_INT[DT.DT_FLOAT]),
    DT.DT_DOUBLE: ("d", np.float64, _MAX_EXACT_INT[DT.DT_DOUBLE]),
    DT.DT_INT64: ("i", np.int64, None),
    DT.DT_INT32: ("i", np.int64, None),
    DT.DT_INT16: ("i", np.int64, None),
    DT.DT_INT8: ("i", np.int64, None),
    DT.DT_UINT8: ("i", np.int64, None),
    DT.DT_UINT32: ("i", np.int64, None),
    DT.DT_UINT64: ("u", np.uint64, None),
}
_FAST_KEYS = frozenset((_SIGNATURE_KEY, _INSTANCES_KEY, _INPUTS_KEY))
_OPEN, _LOWER_E, _UPPER_E = ord("["), ord("e"), ord("E")
_SMALL_BODY_BYTES = 32 * 1024


class _NotFast(Exception):
  """The body is not one the fast path can prove it decodes as upstream."""


def _simdjson_parser() -> simdjson.Parser:
  # A parser is not thread-safe and its documents live until its next parse.
  parser = getattr(_tls, "parser", None)
  if parser is None:
    parser = _tls.parser = simdjson.Parser()
  return parser


def _fast_keys(obj: simdjson.Object) -> list:
  keys = list(obj.keys())
  if len(set(keys)) != len(keys):
    raise _NotFast()  # Repeated keys: the reference decoder's rules decide.
  return keys


def _fast_tensor(val: Any, dtype: int, depth: int,
                 arrays_per_depth: dict) -> np.ndarray:
  """One tensor's value (whose outermost list opens at bracket depth
  `depth`) -> array; counts the lists it must contain per depth."""
  spec = _FAST_BUFFERS.get(dtype)
  if spec is None:
    raise _NotFast()
  if type(val) in (int, float):  # pylint: disable=unidiomatic-typecheck
    try:
      return _values_to_array([_convert_value(val, dtype)], [], dtype)
    except status.ServingError:
      raise _NotFast() from None
  if not isinstance(val, simdjson.Array):
    raise _NotFast()
  shape = []
  first = val
  while isinstance(first, simdjson.Array):
    if not len(first):
      raise _NotFast()
    shape.append(len(first))
    first = first[0]
  # Every list above the last level has the length and list elements of a
  # rectangle; the last level's lists have the right length. A list nested
  # below the last level would show in the bracket count (see the caller).
  level = [val]
  for d, size in enumerate(shape):
    arrays_per_depth[depth + d] = arrays_per_depth.get(depth + d, 0) + len(
        level)
    if d == len(shape) - 1:
      break
    below = []
    for arr in level:
      if len(arr) != size:
        raise _NotFast()
      for item in arr:
        if not isinstance(item, simdjson.Array):
          raise _NotFast()
        below.append(item)
    level = below
  for arr in level:
    if len(arr) != shape[-1]:
      raise _NotFast()
  kind, buffer_dtype, max_abs = spec
  try:
    flat = np.frombuffer(val.as_buffer(of_type=kind), dtype=buffer_dtype)
  except (TypeError, ValueError):
    raise _NotFast() from None  # Not all numbers, or out of 64-bit range.
  if flat.size != math.prod(shape):
    raise _NotFast()
  if max_abs is not None:
    if flat.size and (flat.max() > max_abs or flat.min() < -max_abs):
      raise _NotFast()
    array = flat.astype(_NUMPY_OF[dtype])
  elif dtype == DT.DT_UINT64:
    array = flat
  else:
    low, high = _INT_RANGES[dtype]
    if flat.size and (flat.min() < low or flat.max() > high):
      raise _NotFast()
    # int8/int16/uint8 wrap as the C++ narrowing cast upstream applies.
    array = flat.astype(_NUMPY_OF[dtype])
  return array.reshape(shape)


def _check_brackets(raw: bytes, strings: dict, arrays: int) -> None:
  """The body holds exactly `arrays` lists (so none nested deeper than its
  tensor's rank: the caller has seen all the others) and no exponent that
  rapidjson refuses.

  Only strings could hide a '[' or an 'e'; the caller passes every string of
  the body with the number of times it occurs (keys and the signature name:
  tensors here hold only numbers)."""
  if any("[" in s for s in strings):
    raise _NotFast()
  data = np.frombuffer(raw, dtype=np.uint8)
  # Counting bytes: bytes.count is cheaper for small bodies, numpy's
  # vectorized compare for large ones.
  small = len(raw) <= _SMALL_BODY_BYTES
  if (raw.count(b"[") if small else np.count_nonzero(data == _OPEN)) != arrays:
    raise _NotFast()
  in_strings = sum((s.count("e") + s.count("E")) * n
                   for s, n in strings.items())
  exponents = (raw.count(b"e") + raw.count(b"E") if small else
               np.count_nonzero(data == _LOWER_E) +
               np.count_nonzero(data == _UPPER_E))
  if exponents == in_strings:
    return  # No number has an exponent.
  # rapidjson refuses a positive exponent above 308 plus the fraction's
  # digits (so "0e400", which simdjson reads as 0); leave any three-digit
  # exponent to the reference decoder.
  marks = np.flatnonzero((data | 0x20) == _LOWER_E)
  follow = np.zeros((marks.size, 4), dtype=np.uint8)
  for k in range(4):
    index = marks + 1 + k
    valid = index < data.size
    follow[valid, k] = data[index[valid]]
  start = np.where(follow[:, 0] == ord("+"), 1, 0)
  rows = np.arange(marks.size)
  digits = (follow >= ord("0")) & (follow <= ord("9"))
  if (digits[rows, start] & digits[rows, start + 1] &
      digits[rows, start + 2]).any():
    raise _NotFast()


def _fill_predict_request_fast(
    raw: bytes, get_tensorinfo_map: TensorInfoMapGetter,
    request: predict_pb2.PredictRequest) -> Optional[JsonPredictRequestFormat]:
  """The fast path (see above): the request's format, or None to leave the
  body to the reference decoder (nothing in `request` is changed then)."""
  try:
    doc = _simdjson_parser().parse(raw)
  except Exception:  # pylint: disable=broad-except
    return None  # Not strict JSON (or not UTF-8): the reference decides.
  try:
    if not isinstance(doc, simdjson.Object):
      raise _NotFast()
    top_keys = _fast_keys(doc)
    if not set(top_keys) <= _FAST_KEYS:
      raise _NotFast()
    signature_name = doc.get(_SIGNATURE_KEY, "")
    if type(signature_name) is not str:  # pylint: disable=unidiomatic-typecheck
      raise _NotFast()
    has_instances = _INSTANCES_KEY in top_keys
    if has_instances == (_INPUTS_KEY in top_keys):
      raise _NotFast()
    try:
      infos = get_tensorinfo_map(signature_name)
    except status.ServingError:
      raise _NotFast() from None  # The reference raises it, in its order.
    if not infos:
      raise _NotFast()
    names = sorted(infos)
    # Every string in the body, with its count: tensors here hold only
    # numbers.
    strings = dict.fromkeys(top_keys, 1)
    if _SIGNATURE_KEY in strings:
      strings[signature_name] = strings.get(signature_name, 0) + 1
    arrays_per_depth: dict[int, int] = {}
    arrays: dict[str, np.ndarray] = {}
    if has_instances:
      instances = doc[_INSTANCES_KEY]
      if not isinstance(instances, simdjson.Array) or not len(instances):
        raise _NotFast()
      if isinstance(instances[0], simdjson.Object):
        arrays_per_depth[1] = 1
        rows: dict[str, list] = {name: [] for name in names}
        for element in instances:
          if not isinstance(element, simdjson.Object):
            raise _NotFast()
          keys = _fast_keys(element)
          if sorted(keys) != names:
            raise _NotFast()
          for name in names:
            rows[name].append(_fast_tensor(element[name], infos[name].dtype,
                                           2, arrays_per_depth))
        for name in names:
          strings[name] = strings.get(name, 0) + len(instances)
        for name in names:
          if len({row.shape for row in rows[name]}) != 1:
            raise _NotFast()
          arrays[name] = np.stack(rows[name])
      else:
        if len(names) != 1:
          raise _NotFast()
        array = _fast_tensor(instances, infos[names[0]].dtype, 1,
                             arrays_per_depth)
        if array.ndim == 0:
          raise _NotFast()
        arrays[names[0]] = array
    else:
      inputs = doc[_INPUTS_KEY]
      if isinstance(inputs, simdjson.Object):
        if sorted(_fast_keys(inputs)) != names:
          raise _NotFast()
        for name in names:
          strings[name] = strings.get(name, 0) + 1
        for name in names:
          arrays[name] = _fast_tensor(inputs[name], infos[name].dtype, 1,
                                      arrays_per_depth)
      else:
        if len(names) != 1:
          raise _NotFast()
        arrays[names[0]] = _fast_tensor(inputs, infos[names[0]].dtype, 1,
                                        arrays_per_depth)
    _check_brackets(raw, strings, sum(arrays_per_depth.values()))
  except _NotFast:
    return None
  request.model_spec.signature_name = signature_name
  for name, array in arrays.items():
    _store(array, infos[name].dtype, request.inputs[name])
  return (JsonPredictRequestFormat.ROW if has_instances else
          JsonPredictRequestFormat.COLUMNAR)


# --- JSON examples -> tf.Example ----------------------------------------------


def _feature_kind_error(name: str,
                        feature: feature_pb2.Feature) -> status.ServingError:
  kind = {"bytes_list": "bytes", "float_list": "float",
          "int64_list": "int64"}.get(feature.WhichOneof("kind"), "UNKNOWN")
  return status.invalid_argument(
      f"Unexpected element type in feature: {name} expecting type: {kind}")


def _check_kind(name: str, feature: feature_pb2.Feature, kind: str) -> None:
  current = feature.WhichOneof("kind")
  if current is not None and current != kind:
    raise _feature_kind_error(name, feature)


def _add_value_to_feature(val: Any, name: str,
                          feature: feature_pb2.Feature) -> None:
  t = type(val)
  if val is None or t is list or (
      isinstance(val, dict) and not _is_b64_object(val)):
    raise status.invalid_argument(
        f"Feature: {name} has element with unexpected JSON type: "
        f"{_json_type_string(val)}")
  if t is bool:
    _check_kind(name, feature, "int64_list")
    feature.int64_list.value.append(1 if val else 0)
  elif t is dict:
    _check_kind(name, feature, "bytes_list")
    feature.bytes_list.value.append(_decode_b64_object(val))
  elif t is str:
    _check_kind(name, feature, "bytes_list")
    feature.bytes_list.value.append(_utf8(val))
  elif t is int and val <= _UINT64_RANGE[1] and val >= _INT64_RANGE[0]:
    _check_kind(name, feature, "int64_list")
    if val > _INT64_RANGE[1]:
      raise status.invalid_argument(
          f"Feature: {name} has uint64 element. Only int64 is supported.")
    feature.int64_list.value.append(val)
  else:  # A double (or an integer too big for 64 bits, which JSON reads so).
    _check_kind(name, feature, "float_list")
    if not _is_lossless_decimal(val, DT.DT_FLOAT):
      raise _lossy_error(val, "float")
    feature.float_list.value.append(float(val))


def _fill_feature(content: Any, name: str,
                  feature: feature_pb2.Feature) -> None:
  if type(content) is not list:  # pylint: disable=unidiomatic-typecheck
    _add_value_to_feature(content, name, feature)
    return
  types = set(map(type, content))
  # Fast paths for the homogeneous lists that real clients send.
  if types == {float}:
    array = np.array(content, dtype=np.float64)
    finite = array[np.isfinite(array)]
    if not finite.size or np.abs(finite).max() <= _FLT_MAX:
      feature.float_list.value.extend(content)
      return
  elif types == {int}:
    if min(content) >= _INT64_RANGE[0] and max(content) <= _INT64_RANGE[1]:
      feature.int64_list.value.extend(content)
      return
  elif types == {str}:
    feature.bytes_list.value.extend(_utf8(v) for v in content)
    return
  for val in content:
    _add_value_to_feature(val, name, feature)


def _make_example(val: Any, example: example_pb2.Example) -> None:
  if not isinstance(val, dict):
    raise status.invalid_argument(
        f"Example must be JSON object but got JSON {_json_type_string(val)}")
  # Every member, in order: a repeated feature name is checked each time and
  # the last one is kept (upstream assigns into the feature map).
  for name, content in _members(val):
    feature = feature_pb2.Feature()
    _fill_feature(content, name, feature)
    example.features.feature[name].CopyFrom(feature)


def _fill_classify_regress_request(body: bytes | str, request) -> None:
  doc = _parse_json_object(body)
  _fill_signature(doc, request)
  has_context = _CONTEXT_KEY in doc
  if has_context:
    _make_example(doc[_CONTEXT_KEY],
                  request.input.example_list_with_context.context)
  if _EXAMPLES_KEY not in doc:
    raise _format_error(
        doc, "When method is classify, key 'examples' is expected and was "
        "not found")
  examples = doc[_EXAMPLES_KEY]
  if type(examples) is not list:  # pylint: disable=unidiomatic-typecheck
    raise _format_error(doc, "Expecting 'examples' value to be an list/array")
  if not examples:
    raise _format_error(doc, "'examples' value is an empty array")
  target = (request.input.example_list_with_context.examples
            if has_context else request.input.example_list.examples)
  for val in examples:
    _make_example(val, target.add())


def fill_classification_request_from_json(
    body: bytes | str, request: classification_pb2.ClassificationRequest,
    fast_loads: Optional[JsonLoads] = None) -> None:
  """Fills the signature name and input Examples from a classify body.

  Raises:
    ServingError: INVALID_ARGUMENT with upstream's message.
  """
  del fast_loads  # Unused: kept for callers; the parse is rapidjson's.
  _fill_classify_regress_request(body, request)


def fill_regression_request_from_json(
    body: bytes | str, request: regression_pb2.RegressionRequest,
    fast_loads: Optional[JsonLoads] = None) -> None:
  """Fills the signature name and input Examples from a regress body.

  Raises:
    ServingError: INVALID_ARGUMENT with upstream's message.
  """
  del fast_loads  # Unused: kept for callers; the parse is rapidjson's.
  _fill_classify_regress_request(body, request)


# --- Tensors -> JSON ----------------------------------------------------------


def _indent(depth: int) -> str:
  return " " * (4 * depth)


def _join_array(items: list[str], depth: int, single_line: bool) -> str:
  """An array at `depth` (containers around it) as the pretty printer does."""
  if not items:
    return "[]"
  if single_line:
    return "[" + ", ".join(items) + "]"
  inner = "\n" + _indent(depth + 1)
  return "[" + inner + ("," + inner).join(items) + "\n" + _indent(depth) + "]"


def _render(leaves: list[str], shape: tuple[int, ...], depth: int,
            single_line: bool) -> str:
  """Nests pre-formatted leaves (row-major) into arrays of `shape`."""
  if not shape:
    return leaves[0]
  rank = len(shape)
  if rank == 1 and single_line:
    return "[" + ", ".join(leaves) + "]" if leaves else "[]"
  strides = [1] * rank
  for i in range(rank - 2, -1, -1):
    strides[i] = strides[i + 1] * shape[i + 1]

  def nest(start, dim, d):
    n = shape[dim]
    if dim == rank - 1:
      items = leaves[start:start + n]
    else:
      items = [nest(start + i * strides[dim], dim + 1, d + 1)
               for i in range(n)]
    return _join_array(items, d, single_line)

  return nest(0, 0, depth)


def _leaf_strings(name: str, tensor: tensor_pb2.TensorProto,
                  leaf_depth: int) -> tuple[list[str], tuple[int, ...]]:
  """A tensor's elements as JSON text, flat, plus its shape."""
  dtype = tensor.dtype
  supported = (DT.DT_FLOAT, DT.DT_DOUBLE, DT.DT_STRING, DT.DT_BOOL,
               DT.DT_INT64, DT.DT_UINT32, DT.DT_UINT64) + _SMALL_INTS
  if dtype not in supported:
    raise status.invalid_argument(
        f"Failed to write JSON value for tensor type: {_dtype_string(dtype)}")
  array = tensor_codec.tensor_proto_to_ndarray(tensor)
  flat = array.ravel()
  if dtype in (DT.DT_FLOAT, DT.DT_DOUBLE):
    leaves = _format_decimals(flat)
  elif dtype == DT.DT_BOOL:
    leaves = ["true" if v else "false" for v in flat.tolist()]
  elif dtype == DT.DT_STRING:
    if name.endswith(_BYTES_SUFFIX):
      head = "{\n" + _indent(leaf_depth + 1) + '"b64": "'
      tail = '"\n' + _indent(leaf_depth) + "}"
      leaves = [head + base64.b64encode(v).decode("ascii") + tail
                for v in flat.tolist()]
    else:
      leaves = [_json_string(bytes(v).decode("utf-8", "replace"))
                for v in flat.tolist()]
  else:
    leaves = list(map(str, flat.tolist()))
  return leaves, array.shape


def _key(name: str) -> str:
  return _json_string(name)


def _make_row_json(tensor_map: Mapping[str, tensor_pb2.TensorProto]) -> str:
  names = sorted(tensor_map)
  batch_size = -1
  for name in names:
    dims = tensor_map[name].tensor_shape.dim
    if not dims:
      raise status.invalid_argument(
          f"Tensor name: {name} has no shape information ")
    size = dims[0].size
    if batch_size >= 0 and batch_size != size:
      raise status.invalid_argument(
          f"Tensor name: {name} has inconsistent batch size: {size} "
          f"expecting: {batch_size}")
    batch_size = size
  if batch_size == 0:
    # No rows: nothing is written, whatever the dtypes (as upstream).
    return '{\n' + _indent(1) + '"predictions": []\n}'
  objects = len(names) > 1
  # Containers around a row's value: the root, "predictions", and the row
  # object when there are several outputs.
  depth = 3 if objects else 2
  rows: dict[str, list[str]] = {}
  for name in names:
    tensor = tensor_map[name]
    rank = len(tensor.tensor_shape.dim)
    leaves, shape = _leaf_strings(name, tensor, depth + rank - 1)
    per_row = len(leaves) // batch_size if batch_size else 0
    rows[name] = [
        _render(leaves[i * per_row:(i + 1) * per_row], shape[1:], depth, True)
        for i in range(batch_size)
    ]
  if not objects:
    items = ", ".join(rows[names[0]])
    return ('{\n' + _indent(1) + '"predictions": [' + items + "\n" +
            _indent(1) + "]\n}")
  row_objects = []
  for i in range(batch_size):
    fields = ",".join("\n" + _indent(3) + _key(name) + ": " + rows[name][i]
                      for name in names)
    row_objects.append("\n" + _indent(2) + "{" + fields + "\n" + _indent(2) +
                       "}")
  return ('{\n' + _indent(1) + '"predictions": [' + ",".join(row_objects) +
          "\n" + _indent(1) + "]\n}")


def _make_columnar_json(
    tensor_map: Mapping[str, tensor_pb2.TensorProto]) -> str:
  names = sorted(tensor_map)
  if len(names) == 1:
    tensor = tensor_map[names[0]]
    leaves, shape = _leaf_strings(names[0], tensor, 1 + len(shape_of(tensor)))
    return ('{\n' + _indent(1) + '"outputs": ' +
            _render(leaves, shape, 1, False) + "\n}")
  fields = []
  for name in names:
    tensor = tensor_map[name]
    leaves, shape = _leaf_strings(name, tensor, 2 + len(shape_of(tensor)))
    fields.append("\n" + _indent(2) + _key(name) + ": " +
                  _render(leaves, shape, 2, False))
  return ('{\n' + _indent(1) + '"outputs": {' + ",".join(fields) + "\n" +
          _indent(1) + "}\n}")


def shape_of(tensor: tensor_pb2.TensorProto) -> tuple[int, ...]:
  """The dims of a TensorProto as a tuple."""
  return tuple(d.size for d in tensor.tensor_shape.dim)


def make_json_from_tensors(tensor_map: Mapping[str, tensor_pb2.TensorProto],
                           request_format: JsonPredictRequestFormat) -> str:
  """A predict response body: "predictions" (row) or "outputs" (columnar).

  Raises:
    ServingError: INVALID_ARGUMENT with upstream's message (an empty map,
      outputs that disagree on the batch size in the row format, a dtype JSON
      cannot express).
  """
  if not tensor_map:
    raise status.invalid_argument("Cannot convert empty tensor map to JSON")
  if request_format == JsonPredictRequestFormat.ROW:
    return _make_row_json(tensor_map)
  if request_format == JsonPredictRequestFormat.COLUMNAR:
    return _make_columnar_json(tensor_map)
  raise status.invalid_argument("Invalid request format")


def make_json_from_classification_result(
    result: classification_pb2.ClassificationResult) -> str:
  """{"results": [[[label, score], ...], ...]}, one list per example."""
  if not result.classifications:
    raise status.invalid_argument(
        "Cannot convert empty ClassificationResults to JSON")
  rows = []
  for classifications in result.classifications:
    rows.append(_join_array(
        ["[" + _key(c.label) + ", " + _format_float32(c.score) + "]"
         for c in classifications.classes], 2, True))
  return ('{\n' + _indent(1) + '"results": [' + ", ".join(rows) + "\n" +
          _indent(1) + "]\n}")


def make_json_from_regression_result(
    result: regression_pb2.RegressionResult) -> str:
  """{"results": [value, ...]}, one value per example."""
  if not result.regressions:
    raise status.invalid_argument(
        "Cannot convert empty RegressionResults to JSON")
  values = [_format_float32(r.value) for r in result.regressions]
  return '{\n' + _indent(1) + '"results": ' + _join_array(values, 1, True) + (
      "\n}")


def make_json_error(message: str) -> str:
  """The body of a failed REST call: {"error": "<message>"}."""
  return '{\n' + _indent(1) + '"error": ' + _json_string(message) + "\n}"
