"""TensorProto <-> numpy conversion: the wire codec for tensors.

Pure functions, no TensorFlow runtime: the gRPC and REST handlers and the
servables all decode requests and encode responses through this module, so a
tensor means the same thing whichever way it arrived.

Decoding follows TensorFlow's own Tensor::FromProto, because clients rely on
its leniencies:
  * tensor_content, when non-empty, wins and must hold exactly
    num_elements * itemsize bytes (DT_STRING: TensorFlow's varint-length
    encoding); it is decoded without a copy (a read-only view of the bytes).
  * Otherwise the typed field of the dtype (float_val, int_val, ...) is read.
    No values fill the tensor with zeros; fewer values than elements are padded
    with the last one (so one value fills the whole shape); extra values are
    ignored.
  * A tensor with zero elements ignores its values.
Malformed tensors (unknown or unsupported dtype, negative dimensions, a tensor_content of the wrong size) raise ServingError
INVALID_ARGUMENT with a message that says what is wrong; callers prefix the
tensor's name.

Encoding writes either the typed fields (upstream's default, what
mnist_client reads) or tensor_content (--enable_serialization_as_tensor_content).
Typed fields whose packed wire form is the values' own little-endian bytes
(float_val, double_val, scomplex_val, dcomplex_val, bool_val) are filled by
merging those bytes, without a Python object per value; the result is the
same message extend() would build.
"""

import math
from typing import Any, Optional, Sequence

import ml_dtypes
import numpy as np

from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.util import status

# A decoded tensor may not grow beyond what one request could carry (gRPC's
# INT32_MAX message limit). Only the fill rules above can make a tensor bigger
# than its message; this keeps a tiny request from exhausting the server's
# memory.
MAX_DECODED_BYTES = 2**31 - 1

# numpy's limit on dimensions (TensorFlow's is 254).
MAX_DIMS = 64

DT = types_pb2.DataType

# Plain ints for the hot paths (attribute lookups on the enum wrapper are
# slow).
_DT_INVALID = DT.DT_INVALID
_DT_STRING = DT.DT_STRING
_DT_BOOL = DT.DT_BOOL
_COMPLEX = frozenset((DT.DT_COMPLEX64, DT.DT_COMPLEX128))
_HALF_BITS = frozenset((DT.DT_HALF, DT.DT_BFLOAT16))

# dtype enum -> numpy dtype, for every dtype the server handles.
_NUMPY_DTYPES = {
    DT.DT_FLOAT: np.dtype(np.float32),
    DT.DT_DOUBLE: np.dtype(np.float64),
    DT.DT_HALF: np.dtype(np.float16),
    DT.DT_BFLOAT16: np.dtype(ml_dtypes.bfloat16),
    DT.DT_INT8: np.dtype(np.int8),
    DT.DT_INT16: np.dtype(np.int16),
    DT.DT_INT32: np.dtype(np.int32),
    DT.DT_INT64: np.dtype(np.int64),
    DT.DT_UINT8: np.dtype(np.uint8),
    DT.DT_UINT16: np.dtype(np.uint16),
    DT.DT_UINT32: np.dtype(np.uint32),
    DT.DT_UINT64: np.dtype(np.uint64),
    DT.DT_BOOL: np.dtype(np.bool_),
    DT.DT_STRING: np.dtype(object),
    DT.DT_COMPLEX64: np.dtype(np.complex64),
    DT.DT_COMPLEX128: np.dtype(np.complex128),
}

# numpy dtype -> dtype enum (the inverse, plus numpy's fixed-width strings).
_DT_OF_NUMPY = {v: k for k, v in _NUMPY_DTYPES.items()}

# dtype enum -> (typed field name, numpy dtype of the values as stored there).
# HALF and BFLOAT16 keep their bit patterns in half_val; complex numbers are
# stored as (real, imaginary) pairs; the small integers widen to int_val.
_FIELDS = {
    DT.DT_FLOAT: ("float_val", np.dtype(np.float32)),
    DT.DT_DOUBLE: ("double_val", np.dtype(np.float64)),
    DT.DT_HALF: ("half_val", np.dtype(np.uint16)),
    DT.DT_BFLOAT16: ("half_val", np.dtype(np.uint16)),
    DT.DT_INT8: ("int_val", np.dtype(np.int8)),
    DT.DT_INT16: ("int_val", np.dtype(np.int16)),
    DT.DT_INT32: ("int_val", np.dtype(np.int32)),
    DT.DT_INT64: ("int64_val", np.dtype(np.int64)),
    DT.DT_UINT8: ("int_val", np.dtype(np.uint8)),
    DT.DT_UINT16: ("int_val", np.dtype(np.uint16)),
    DT.DT_UINT32: ("uint32_val", np.dtype(np.uint32)),
    DT.DT_UINT64: ("uint64_val", np.dtype(np.uint64)),
    DT.DT_BOOL: ("bool_val", np.dtype(np.bool_)),
    DT.DT_STRING: ("string_val", np.dtype(object)),
    DT.DT_COMPLEX64: ("scomplex_val", np.dtype(np.float32)),
    DT.DT_COMPLEX128: ("dcomplex_val", np.dtype(np.float64)),
}


def dtype_name(dtype: int) -> str:
  """Returns the enum name of a dtype ("DT_FLOAT"), or its number if unknown."""
  try:
    return DT.Name(dtype)
  except ValueError:
    return str(dtype)


def to_numpy_dtype(dtype: int) -> np.dtype:
  """Returns the numpy dtype that holds tensors of a DataType enum value.

  Raises:
    ServingError: INVALID_ARGUMENT if the dtype is not one the server handles.
  """
  np_dtype = _NUMPY_DTYPES.get(dtype)
  if np_dtype is None:
    raise status.invalid_argument(
        f"tensor dtype {dtype_name(dtype)} is not supported")
  return np_dtype


def from_numpy_dtype(np_dtype: np.dtype) -> int:
  """Returns the DataType enum value for a numpy dtype.

  numpy's fixed-width byte and unicode strings map to DT_STRING, as do object
  arrays (TensorFlow's own string representation).

  Raises:
    ServingError: INVALID_ARGUMENT for a numpy dtype with no DataType.
  """
  dtype = _DT_OF_NUMPY.get(np_dtype)
  if dtype is not None:
    return dtype
  if np_dtype.kind in ("S", "U", "O"):
    return _DT_STRING
  raise status.invalid_argument(
      f"numpy dtype {np_dtype} has no TensorFlow DataType")


def _shape_of(proto: tensor_pb2.TensorProto) -> tuple[int, ...]:
  # Like TensorFlow's TensorShape, unknown_rank is ignored: the dims count.
  shape = tuple([d.size for d in proto.tensor_shape.dim])
  if shape and min(shape) < 0:
    raise status.invalid_argument(
        f"tensor shape {format_shape(shape)} has a negative dimension")
  if len(shape) > MAX_DIMS:
    raise status.invalid_argument(
        f"tensor has {len(shape)} dimensions, more than the {MAX_DIMS} "
        "supported")
  return shape


def format_shape(shape: Sequence[int]) -> str:
  """Formats a shape as TensorFlow prints it: [2,3]."""
  return "[" + ",".join(str(d) for d in shape) + "]"


def _decode_varint(data: bytes, pos: int) -> tuple[int, int]:
  """Reads one varint32 at data[pos:]; returns (value, next position)."""
  result = 0
  shift = 0
  while shift < 35:
    if pos >= len(data):
      raise IndexError
    byte = data[pos]
    pos += 1
    result |= (byte & 0x7F) << shift
    if not byte & 0x80:
      return result, pos
    shift += 7
  raise ValueError


def _encode_varint(value: int, out: bytearray) -> None:
  while value >= 0x80:
    out.append((value & 0x7F) | 0x80)
    value >>= 7
  out.append(value)


def _packed_tag(field: str) -> bytes:
  """The key of a packed (length-delimited) TensorProto field on the wire."""
  number = tensor_pb2.TensorProto.DESCRIPTOR.fields_by_name[field].number
  out = bytearray()
  _encode_varint(number << 3 | 2, out)
  return bytes(out)


# dtype -> (the packed field's key, the little-endian numpy dtype whose bytes
# are that field's packed payload). A bool is a one-byte varint, 0 or 1.
_PACKED_BYTES_FIELDS = {
    DT.DT_FLOAT: (_packed_tag("float_val"), np.dtype("<f4")),
    DT.DT_DOUBLE: (_packed_tag("double_val"), np.dtype("<f8")),
    DT.DT_COMPLEX64: (_packed_tag("scomplex_val"), np.dtype("<c8")),
    DT.DT_COMPLEX128: (_packed_tag("dcomplex_val"), np.dtype("<c16")),
    DT.DT_BOOL: (_packed_tag("bool_val"), np.dtype(np.bool_)),
}


def _decode_string_content(content: bytes, count: int) -> np.ndarray:
  """Decodes TensorFlow's string tensor_content: count varint lengths, bytes."""
  try:
    lengths = []
    pos = 0
    for _ in range(count):
      length, pos = _decode_varint(content, pos)
      lengths.append(length)
  except (IndexError, ValueError):
    lengths = None
  if lengths is None or pos + sum(lengths) != len(content):
    raise status.invalid_argument(
        f"tensor_content of {len(content)} bytes does not hold {count} "
        "DT_STRING values")
  values = np.empty(count, dtype=object)
  for i, length in enumerate(lengths):
    values[i] = content[pos:pos + length]
    pos += length
  return values


def _encode_string_content(flat: np.ndarray) -> bytes:
  values = [as_bytes(v) for v in flat]
  out = bytearray()
  for v in values:
    _encode_varint(len(v), out)
  for v in values:
    out += v
  return bytes(out)


def as_bytes(value: Any, what: str = "DT_STRING tensor") -> bytes:
  """One element of a string tensor as bytes; a str is encoded as UTF-8.

  Shared by the V2 codec (BYTES tensors), so both protocols accept the same
  Python values for string elements.

  Raises:
    ServingError: INVALID_ARGUMENT "<what> holds a <type>, ..." for anything
      that is not bytes-like or str.
  """
  if isinstance(value, bytes):
    return value
  if isinstance(value, str):
    return value.encode("utf-8")
  if isinstance(value, (bytearray, memoryview, np.bytes_)):
    return bytes(value)
  raise status.invalid_argument(
      f"{what} holds a {type(value).__name__}, not bytes or str")


def _fill(values: np.ndarray, count: int, np_dtype: np.dtype) -> np.ndarray:
  """Applies TensorFlow's typed-field rules: pad with the last value, cut."""
  have = values.shape[0]
  if have == count:
    return values
  if have > count:
    return values[:count]
  if have == 0:
    if np_dtype == object:
      filled = np.empty(count, dtype=object)
      filled.fill(b"")
      return filled
    return np.zeros(count, dtype=values.dtype)
  filled = np.empty(count, dtype=values.dtype)
  filled[:have] = values
  filled[have:] = values[-1]
  return filled


def tensor_proto_to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
  """Decodes a TensorProto into a numpy array (see the module doc for rules).

  Args:
    proto: the tensor as received.

  Returns:
    An array of the proto's shape and dtype. Decoded from tensor_content it is
    a read-only view of the proto's bytes; DT_STRING gives an object array of
    bytes.

  Raises:
    ServingError: INVALID_ARGUMENT for a malformed or unsupported tensor.
  """
  dtype = proto.dtype
  if dtype == _DT_INVALID:
    raise status.invalid_argument("tensor dtype is DT_INVALID (not set)")
  np_dtype = to_numpy_dtype(dtype)
  shape = _shape_of(proto)
  count = math.prod(shape)
  if count == 0:
    try:
      return np.empty(shape, dtype=np_dtype)
    except (ValueError, OverflowError):
      raise status.invalid_argument(
          f"tensor shape {format_shape(shape)} is too large") from None
  if np_dtype != object and count * np_dtype.itemsize > MAX_DECODED_BYTES:
    raise status.invalid_argument(
        f"tensor of shape {format_shape(shape)} and dtype {dtype_name(dtype)} "
        f"needs {count * np_dtype.itemsize} bytes, more than the "
        f"{MAX_DECODED_BYTES} a request may carry")

  content = proto.tensor_content
  if content:
    if dtype == _DT_STRING:
      return _decode_string_content(content, count).reshape(shape)
    expected = count * np_dtype.itemsize
    if len(content) != expected:
      raise status.invalid_argument(
          f"tensor_content has {len(content)} bytes but shape "
          f"{format_shape(shape)} of {dtype_name(dtype)} needs {expected}")
    return np.frombuffer(content, dtype=np_dtype).reshape(shape)

  field, field_dtype = _FIELDS[dtype]
  repeated = getattr(proto, field)
  if dtype == _DT_STRING:
    if count > len(repeated) and count > MAX_DECODED_BYTES // 8:
      raise status.invalid_argument(
          f"tensor of shape {format_shape(shape)} and dtype DT_STRING is too "
          "large to fill from string_val")
    values = np.empty(len(repeated), dtype=object)
    values[:] = list(repeated)
    return _fill(values, count, np_dtype).reshape(shape)
  if dtype in _COMPLEX:
    pairs = np.array(repeated, dtype=field_dtype)
    pairs = pairs[:(len(pairs) // 2) * 2]
    values = pairs.view(np_dtype)
  elif dtype in _HALF_BITS:
    values = np.array(repeated, dtype=np.int64).astype(np.uint16).view(np_dtype)
  else:
    # int_val carries INT8/16 and UINT8/16 widened to int32: narrow them with
    # C semantics (wrap around), as TensorFlow's static_cast does.
    if field == "int_val" and field_dtype != np.int32:
      values = np.array(repeated, dtype=np.int32).astype(field_dtype)
    else:
      values = np.array(repeated, dtype=field_dtype)
  return _fill(values, count, np_dtype).reshape(shape)


def ndarray_to_tensor_proto(
    array: np.ndarray,
    out: Optional[tensor_pb2.TensorProto] = None,
    *,
    as_tensor_content: bool = False,
    dtype: Optional[int] = None,
) -> tensor_pb2.TensorProto:
  """Encodes a numpy array (or scalar) as a TensorProto.

  Args:
    array: the value; object arrays of bytes or str are DT_STRING.
    out: a proto to fill in place (e.g. response.outputs[alias], which saves a
      copy); it is cleared first. A new proto when None.
    as_tensor_content: write the bytes to tensor_content instead of the typed
      *_val field (strings use TensorFlow's varint-length encoding).
    dtype: the DataType to record; derived from the array's dtype when None.

  Returns:
    The filled proto (`out` when given).

  Raises:
    ServingError: INVALID_ARGUMENT for an array with no TensorFlow dtype.
  """
  array = np.asarray(array)
  if dtype is None:
    dtype = from_numpy_dtype(array.dtype)
  if out is None:
    out = tensor_pb2.TensorProto()
  else:
    out.Clear()
  out.dtype = dtype
  dims = out.tensor_shape.dim
  for size in array.shape:
    dims.add(size=size)
  if array.size == 0:
    return out

  if dtype == _DT_STRING:
    flat = array.ravel()
    if as_tensor_content:
      out.tensor_content = _encode_string_content(flat)
    else:
      out.string_val.extend([as_bytes(v) for v in flat.tolist()])
    return out

  np_dtype = to_numpy_dtype(dtype)
  if array.dtype != np_dtype:
    array = array.astype(np_dtype)
  if as_tensor_content:
    out.tensor_content = array.tobytes()
    return out

  packed = _PACKED_BYTES_FIELDS.get(dtype)
  if packed is not None:
    tag, wire_dtype = packed
    if dtype == _DT_BOOL:
      # A bool's byte may be any non-zero value (decoded from a client's
      # tensor_content, passed through by the model); on the wire it must
      # be the varint 1, or the message is corrupt.
      array = array.view(np.uint8).astype(np.bool_)
    payload = array.astype(wire_dtype, copy=False).tobytes()
    length = bytearray()
    _encode_varint(len(payload), length)
    out.MergeFromString(b"".join((tag, length, payload)))
    return out

  field, _ = _FIELDS[dtype]
  flat = array.ravel()
  if dtype in _HALF_BITS:
    flat = np.ascontiguousarray(flat).view(np.uint16)
  getattr(out, field).extend(flat.tolist())
  return out
