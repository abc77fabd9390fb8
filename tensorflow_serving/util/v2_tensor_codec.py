"""V2 (Open Inference Protocol) tensors <-> numpy: the wire codec of KServe V2.

Pure functions, no gRPC, HTTP or TensorFlow runtime: the V2 gRPC servicer and
REST handlers decode requests and encode responses here, so a V2 tensor means
the same thing whichever way it arrived, and the same thing as a TensorProto
decoded by tensor_codec once it reaches a model.

What the module knows (facts from the Open Inference Protocol's REST and gRPC
specifications and Triton's binary tensor data extension):
  * Datatypes. Each V2 datatype a TensorFlow tensor can hold maps to one
    DataType and one numpy dtype: BOOL, INT8..INT64, UINT8..UINT64, FP16,
    BF16 (a Triton addition, ml_dtypes.bfloat16), FP32, FP64 and BYTES
    (DT_STRING, an object array of bytes).
  * Typed contents (gRPC InferTensorContents): BOOL in bool_contents,
    INT8/16/32 in int_contents, INT64 in int64_contents, UINT8/16/32 in
    uint_contents, UINT64 in uint64_contents, FP32 in fp32_contents, FP64 in
    fp64_contents, BYTES in bytes_contents. FP16 and BF16 have no field; they
    travel only as raw bytes. The element count must equal the shape's.
  * Raw bytes (gRPC raw_input_contents / raw_output_contents, and the REST
    binary blobs): row-major, little-endian, no padding; BOOL is one byte per
    element (0 false, anything else true when reading, 1 when writing); a
    BYTES element is a 4-byte little-endian length and that many bytes.
  * REST JSON "data": the elements in row-major order, flat or nested as the
    shape; numbers for numeric datatypes, true/false for BOOL, strings
    (UTF-8) for BYTES. FP16 and BF16 are accepted and written as numbers too.
  * The binary tensor data extension: the body is the JSON object followed by
    the binary blobs, Inference-Header-Content-Length gives the JSON part's
    length, an input's "parameters": {"binary_data_size": N} says that its
    next N bytes of blob are its data, and outputs come back as blobs when the
    requested output has "binary_data": true or the request's parameters have
    "binary_data_output": true (the per-output setting wins).

Hostile input: every decoder checks sizes against the bytes actually present
before it allocates anything, so a small request cannot claim a huge tensor;
every failure raises ServingError INVALID_ARGUMENT (the code Triton and the
V2 spec use for a malformed request) with a message that names the tensor.
Names of models are not known here; callers prefix them.
"""

import dataclasses
import itertools
import json
import math
import reprlib
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import ml_dtypes
import numpy as np

from tensorflow.core.framework import tensor_shape_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import grpc_service_pb2
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec

DT = types_pb2.DataType

# The header that carries the JSON part's length in a binary REST body.
HEADER_CONTENT_LENGTH = "Inference-Header-Content-Length"

# Parameter names of the binary tensor data extension.
BINARY_DATA_SIZE = "binary_data_size"
BINARY_DATA = "binary_data"
BINARY_DATA_OUTPUT = "binary_data_output"

# numpy's limit on dimensions, as for TensorProtos.
MAX_DIMS = tensor_codec.MAX_DIMS

# A dimension must fit numpy's index type.
_MAX_DIM = 2**63 - 1

# A BYTES element's length prefix is a uint32.
_MAX_BYTES_ELEMENT = 2**32 - 1
_LENGTH_PREFIX = 4

# Received values quoted in error messages are abbreviated (a rejected 100 MB
# list must not come back whole, nor take long to print).
_DUMP = reprlib.Repr()
_DUMP.maxlevel = 3
_DUMP.maxlist = 6
_DUMP.maxdict = 4
_DUMP.maxstring = 64
_DUMP.maxother = 64


@dataclasses.dataclass(frozen=True)
class Datatype:
  """One V2 datatype and what holds it elsewhere.

  Attributes:
    name: the V2 name ("FP32").
    tf_dtype: the TensorFlow DataType enum value (DT_FLOAT).
    numpy_dtype: the numpy dtype of decoded arrays; object for BYTES.
    wire_dtype: the little-endian numpy dtype of its raw bytes; None for
      BYTES, whose elements have no fixed size.
    contents_field: the InferTensorContents field of its typed values; None
      for FP16 and BF16, which have none.
  """
  name: str
  tf_dtype: int
  numpy_dtype: np.dtype
  wire_dtype: Optional[np.dtype]
  contents_field: Optional[str]

  @property
  def itemsize(self) -> int:
    """Bytes per raw element; 0 for BYTES."""
    return 0 if self.wire_dtype is None else self.wire_dtype.itemsize

  def __str__(self) -> str:
    return self.name


def _datatype(name: str, tf_dtype: int, numpy_dtype: Any,
              contents_field: Optional[str]) -> Datatype:
  np_dtype = np.dtype(numpy_dtype)
  wire = None if np_dtype == object else np_dtype.newbyteorder("<")
  return Datatype(name, tf_dtype, np_dtype, wire, contents_field)


_DATATYPES = (
    _datatype("BOOL", DT.DT_BOOL, np.bool_, "bool_contents"),
    _datatype("UINT8", DT.DT_UINT8, np.uint8, "uint_contents"),
    _datatype("UINT16", DT.DT_UINT16, np.uint16, "uint_contents"),
    _datatype("UINT32", DT.DT_UINT32, np.uint32, "uint_contents"),
    _datatype("UINT64", DT.DT_UINT64, np.uint64, "uint64_contents"),
    _datatype("INT8", DT.DT_INT8, np.int8, "int_contents"),
    _datatype("INT16", DT.DT_INT16, np.int16, "int_contents"),
    _datatype("INT32", DT.DT_INT32, np.int32, "int_contents"),
    _datatype("INT64", DT.DT_INT64, np.int64, "int64_contents"),
    _datatype("FP16", DT.DT_HALF, np.float16, None),
    _datatype("BF16", DT.DT_BFLOAT16, ml_dtypes.bfloat16, None),
    _datatype("FP32", DT.DT_FLOAT, np.float32, "fp32_contents"),
    _datatype("FP64", DT.DT_DOUBLE, np.float64, "fp64_contents"),
    _datatype("BYTES", DT.DT_STRING, object, "bytes_contents"),
)

# Every V2 datatype name this codec handles, in the spec's table order.
DATATYPE_NAMES = tuple(d.name for d in _DATATYPES)

_BY_NAME = {d.name: d for d in _DATATYPES}
_BY_TF = {d.tf_dtype: d for d in _DATATYPES}
_BY_NUMPY = {d.numpy_dtype: d for d in _DATATYPES}
_BYTES = _BY_NAME["BYTES"]
_BOOL = _BY_NAME["BOOL"]


# --- Datatypes ----------------------------------------------------------------


def datatype(name: Any, what: str = "tensor") -> Datatype:
  """Looks up a V2 datatype by name (case-sensitive, as the spec says).

  Args:
    name: the datatype as received.
    what: names the tensor in the error ("input 'x'").

  Raises:
    ServingError: INVALID_ARGUMENT for a name that is not a V2 datatype this
      server handles.
  """
  found = _BY_NAME.get(name) if isinstance(name, str) else None
  if found is None:
    raise status.invalid_argument(
        f"invalid datatype {_dump(name)} for {what}; expected one of "
        + ", ".join(DATATYPE_NAMES))
  return found


def datatype_of_tf_dtype(tf_dtype: int) -> Datatype:
  """The V2 datatype of a TensorFlow DataType (DT_FLOAT -> FP32).

  Raises:
    ServingError: INVALID_ARGUMENT for a DataType with no V2 datatype
      (complex numbers, resources, variants, quantized types).
  """
  found = _BY_TF.get(tf_dtype)
  if found is None:
    raise status.invalid_argument(
        f"tensor dtype {tensor_codec.dtype_name(tf_dtype)} has no V2 datatype")
  return found


def datatype_of_numpy_dtype(np_dtype: np.dtype) -> Datatype:
  """The V2 datatype of a numpy dtype; bytes, str and object arrays are BYTES.

  Raises:
    ServingError: INVALID_ARGUMENT for a dtype with no V2 datatype.
  """
  np_dtype = np.dtype(np_dtype)
  found = _BY_NUMPY.get(np_dtype)
  if found is None and np_dtype.byteorder not in ("=", "|"):
    found = _BY_NUMPY.get(np_dtype.newbyteorder("="))
  if found is not None:
    return found
  if np_dtype.kind in ("S", "U", "O"):
    return _BYTES
  raise status.invalid_argument(f"numpy dtype {np_dtype} has no V2 datatype")


def metadata_shape(shape: tensor_shape_pb2.TensorShapeProto) -> list[int]:
  """A TensorShapeProto as a V2 metadata shape: unknown dimensions are -1.

  V2 has no way to say "unknown rank"; such a shape is given as [-1], the
  closest statement (one dimension of unknown size) that clients accept.
  """
  if shape.unknown_rank:
    return [-1]
  return [d.size if d.size >= 0 else -1 for d in shape.dim]


# --- Parameters ---------------------------------------------------------------


def parameter_value(parameter: grpc_service_pb2.InferParameter) -> Any:
  """The Python value of an InferParameter (bool, int, str, float or None)."""
  choice = parameter.WhichOneof("parameter_choice")
  return None if choice is None else getattr(parameter, choice)


def set_parameter(parameter: grpc_service_pb2.InferParameter,
                  value: Any) -> None:
  """Stores a Python bool, int, str or float in an InferParameter.

  An int that does not fit int64 but fits uint64 goes to uint64_param.

  Raises:
    ServingError: INVALID_ARGUMENT for another type or an int out of range.
  """
  if isinstance(value, bool):
    parameter.bool_param = value
  elif isinstance(value, int):
    if -2**63 <= value < 2**63:
      parameter.int64_param = value
    elif 0 <= value < 2**64:
      parameter.uint64_param = value
    else:
      raise status.invalid_argument(
          f"parameter value {value} does not fit 64 bits")
  elif isinstance(value, str):
    parameter.string_param = value
  elif isinstance(value, float):
    parameter.double_param = value
  else:
    raise status.invalid_argument(
        f"parameter value of type {type(value).__name__} is not a bool, "
        "integer, string or double")


def parameters_dict(
    parameters: Mapping[str, grpc_service_pb2.InferParameter]
) -> dict[str, Any]:
  """A protobuf parameters map as {name: Python value}, as REST carries it."""
  return {k: parameter_value(v) for k, v in parameters.items()}


# --- Shapes -------------------------------------------------------------------


def check_shape(shape: Any, what: str = "tensor") -> tuple[int, ...]:
  """Validates a requested tensor shape and returns it as a tuple of ints.

  Accepts a protobuf repeated int64 field or a JSON list. Dimensions must be
  integers (not booleans), non-negative and below 2^63; at most MAX_DIMS.

  Raises:
    ServingError: INVALID_ARGUMENT naming `what` and the shape.
  """
  if isinstance(shape, (str, bytes, Mapping)) or not isinstance(
      shape, Iterable):
    raise status.invalid_argument(
        f"shape of {what} must be a list of integers, got {_dump(shape)}")
  dims = list(shape)
  if len(dims) > MAX_DIMS:
    raise status.invalid_argument(
        f"shape of {what} has {len(dims)} dimensions, more than the "
        f"{MAX_DIMS} supported")
  for dim in dims:
    if type(dim) is not int:  # pylint: disable=unidiomatic-typecheck
      raise status.invalid_argument(
          f"shape of {what} must be a list of integers, got {_dump(dims)}")
    if dim < 0 or dim > _MAX_DIM:
      raise status.invalid_argument(
          f"shape of {what} {tensor_codec.format_shape(dims)} has a "
          f"{'negative' if dim < 0 else 'too large a'} dimension")
  return tuple(dims)


def _element_count(shape: tuple[int, ...]) -> int:
  return math.prod(shape)


def _reshape(flat: np.ndarray, shape: tuple[int, ...],
             what: str) -> np.ndarray:
  try:
    return flat.reshape(shape)
  except (ValueError, OverflowError, MemoryError):
    raise status.invalid_argument(
        f"shape {tensor_codec.format_shape(shape)} of {what} is too large"
    ) from None


# --- Raw bytes ----------------------------------------------------------------


def decode_raw(dt: Datatype, shape: Sequence[int], data: bytes | memoryview,
               what: str = "tensor") -> np.ndarray:
  """Decodes raw tensor bytes (raw_input_contents or a REST binary blob).

  Fixed-size datatypes are decoded without a copy: the result is a read-only
  view of `data` (BOOL excepted, which is normalised to 0/1). BYTES gives an
  object array of bytes.

  Args:
    dt: the tensor's datatype.
    shape: its shape, already checked (check_shape).
    data: the bytes, exactly as received.
    what: names the tensor in errors ("input 'x'").

  Raises:
    ServingError: INVALID_ARGUMENT when the bytes do not hold exactly the
      elements the shape asks for.
  """
  shape = tuple(shape)
  count = _element_count(shape)
  if dt.wire_dtype is None:
    return _reshape(_decode_raw_bytes(data, count, what), shape, what)
  expected = count * dt.itemsize
  if len(data) != expected:
    raise status.invalid_argument(
        f"input byte size mismatch for {what}. Expected {expected}, got "
        f"{len(data)}")
  flat = np.frombuffer(data, dtype=dt.wire_dtype)
  if dt is _BOOL:
    flat = flat.view(np.uint8) != 0
  elif dt.wire_dtype != dt.numpy_dtype:  # a big-endian host
    flat = flat.astype(dt.numpy_dtype)
  return _reshape(flat, shape, what)


def _decode_raw_bytes(data: bytes | memoryview, count: int,
                      what: str) -> np.ndarray:
  """Splits length-prefixed BYTES elements; allocates only for what exists."""
  view = memoryview(data).cast("B") if isinstance(data, memoryview) else data
  size = len(view)
  # Every element needs its 4-byte prefix: a count the bytes cannot hold is
  # refused before anything of that size is made.
  if count * _LENGTH_PREFIX > size:
    raise status.invalid_argument(
        f"unexpected number of string elements for {what}: the shape needs "
        f"{count}, but {size} bytes hold at most {size // _LENGTH_PREFIX}")
  values = np.empty(count, dtype=object)
  pos = 0
  for i in range(count):
    if pos + _LENGTH_PREFIX > size:
      raise status.invalid_argument(
          f"unexpected end of data for {what}: element {i} of {count} has "
          "no length prefix")
    length = int.from_bytes(view[pos:pos + _LENGTH_PREFIX], "little")
    pos += _LENGTH_PREFIX
    if length > size - pos:
      raise status.invalid_argument(
          f"unexpected end of data for {what}: element {i} claims {length} "
          f"bytes, {size - pos} remain")
    values[i] = bytes(view[pos:pos + length])
    pos += length
  if pos != size:
    raise status.invalid_argument(
        f"input byte size mismatch for {what}: {size - pos} bytes follow "
        f"the {count} elements of its shape")
  return values


def encode_raw(array: np.ndarray, dt: Optional[Datatype] = None) -> bytes:
  """Encodes an array as raw V2 tensor bytes (row-major, little-endian).

  Args:
    array: the values; for BYTES an array of bytes or str (str is UTF-8).
    dt: the datatype to write; derived from the array's dtype when None.

  Raises:
    ServingError: INVALID_ARGUMENT for an array with no V2 datatype or a
      BYTES element that is not bytes or str or is longer than 2^32 - 1.
  """
  array = np.asarray(array)
  if dt is None:
    dt = datatype_of_numpy_dtype(array.dtype)
  if dt.wire_dtype is None:
    parts = []
    for value in array.ravel().tolist():
      value = _as_bytes(value)
      if len(value) > _MAX_BYTES_ELEMENT:
        raise status.invalid_argument(
            f"a BYTES element of {len(value)} bytes is longer than the "
            f"{_MAX_BYTES_ELEMENT} a length prefix can say")
      parts.append(len(value).to_bytes(_LENGTH_PREFIX, "little"))
      parts.append(value)
    return b"".join(parts)
  if dt is _BOOL:
    array = array.astype(np.bool_, copy=False)
  return np.ascontiguousarray(array, dtype=dt.wire_dtype).tobytes()


def _as_bytes(value: Any) -> bytes:
  return tensor_codec.as_bytes(value, "a BYTES tensor")


# --- Typed contents (gRPC InferTensorContents) --------------------------------


def decode_contents(dt: Datatype, shape: Sequence[int],
                    contents: grpc_service_pb2.InferTensorContents,
                    what: str = "tensor") -> np.ndarray:
  """Decodes the typed contents of a gRPC tensor.

  Integers that do not fit the datatype (300 in an INT8) are refused, not
  wrapped.

  Raises:
    ServingError: INVALID_ARGUMENT for FP16/BF16 (they have no contents
      field), an element count that differs from the shape's, or a value out
      of range.
  """
  shape = tuple(shape)
  if dt.contents_field is None:
    raise status.invalid_argument(
        f"{dt.name} data for {what} must be sent as raw contents "
        "(raw_input_contents): InferTensorContents has no field for it")
  values = getattr(contents, dt.contents_field)
  count = _element_count(shape)
  if len(values) != count:
    raise status.invalid_argument(
        f"unexpected number of elements for {what}: {len(values)} in "
        f"{dt.contents_field}, but shape {tensor_codec.format_shape(shape)} "
        f"needs {count}")
  if dt is _BYTES:
    flat = np.empty(count, dtype=object)
    flat[:] = list(values)
  elif dt.contents_field in ("int_contents", "uint_contents") and (
      dt.numpy_dtype.itemsize < 4):
    wide = np.array(values, dtype=np.int64)
    _check_integer_range(wide, dt, what)
    flat = wide.astype(dt.numpy_dtype)
  else:
    flat = np.array(values, dtype=dt.numpy_dtype)
  return _reshape(flat, shape, what)


def encode_contents(array: np.ndarray,
                    contents: grpc_service_pb2.InferTensorContents,
                    dt: Optional[Datatype] = None) -> None:
  """Writes an array into the typed field of its datatype (cleared first).

  Raises:
    ServingError: INVALID_ARGUMENT for FP16/BF16 (raw only) or an array with
      no V2 datatype.
  """
  array = np.asarray(array)
  if dt is None:
    dt = datatype_of_numpy_dtype(array.dtype)
  if dt.contents_field is None:
    raise status.invalid_argument(
        f"{dt.name} values can only be sent as raw contents")
  contents.Clear()
  flat = array.ravel()
  field = getattr(contents, dt.contents_field)
  if dt is _BYTES:
    field.extend([_as_bytes(v) for v in flat.tolist()])
  else:
    field.extend(flat.astype(dt.numpy_dtype, copy=False).tolist())


def _check_integer_range(values: np.ndarray, dt: Datatype, what: str) -> None:
  if not values.size:
    return
  info = np.iinfo(dt.numpy_dtype)
  low, high = values.min(), values.max()
  if low < info.min or high > info.max:
    bad = low if low < info.min else high
    raise status.invalid_argument(
        f"value {bad} of {what} is out of range for {dt.name}")


# --- gRPC requests ------------------------------------------------------------


def decode_infer_input(
    tensor: grpc_service_pb2.ModelInferRequest.InferInputTensor,
    raw: Optional[bytes] = None) -> np.ndarray:
  """Decodes one input of a ModelInferRequest.

  Args:
    tensor: the input as received.
    raw: its raw_input_contents entry, when the request uses raw contents.

  Raises:
    ServingError: INVALID_ARGUMENT for a bad datatype or shape, contents that
      do not match them, or both raw and typed contents.
  """
  what = f"input '{tensor.name}'"
  dt = datatype(tensor.datatype, what)
  shape = check_shape(tensor.shape, what)
  if raw is not None:
    if tensor.HasField("contents") and tensor.contents.ByteSize():
      raise status.invalid_argument(
          f"{what} has both raw and typed contents; send one of them")
    return decode_raw(dt, shape, raw, what)
  return decode_contents(dt, shape, tensor.contents, what)


def decode_infer_request_inputs(
    request: grpc_service_pb2.ModelInferRequest) -> dict[str, np.ndarray]:
  """Decodes every input of a ModelInferRequest, keyed by input name.

  With raw_input_contents, there must be exactly one entry per input, in the
  order of `inputs` (the spec's rule); otherwise every input is read from
  its typed contents.

  Raises:
    ServingError: INVALID_ARGUMENT for a malformed input, a repeated input
      name, or a raw_input_contents count that differs from the inputs'.
  """
  raws = request.raw_input_contents
  inputs = request.inputs
  if raws and len(raws) != len(inputs):
    raise status.invalid_argument(
        f"expected {len(inputs)} raw_input_contents entries, one per input, "
        f"got {len(raws)}")
  decoded: dict[str, np.ndarray] = {}
  for i, tensor in enumerate(inputs):
    if tensor.name in decoded:
      raise status.invalid_argument(
          f"input '{tensor.name}' is given more than once")
    decoded[tensor.name] = decode_infer_input(tensor, raws[i] if raws else None)
  return decoded


def add_infer_output(response: grpc_service_pb2.ModelInferResponse, name: str,
                     array: np.ndarray,
                     dt: Optional[Datatype] = None) -> None:
  """Appends one output to a ModelInferResponse, its data in raw contents.

  Raw contents are what tritonclient reads (it ignores typed contents) and
  what the kserve SDK reads too; every output of a response must then be
  raw, so all outputs go through this function.

  Raises:
    ServingError: INVALID_ARGUMENT for an array with no V2 datatype.
  """
  array = np.asarray(array)
  if dt is None:
    dt = datatype_of_numpy_dtype(array.dtype)
  data = encode_raw(array, dt)
  output = response.outputs.add()
  output.name = name
  output.datatype = dt.name
  output.shape.extend(array.shape)
  response.raw_output_contents.append(data)


# --- REST JSON ----------------------------------------------------------------


def decode_json_data(dt: Datatype, shape: Sequence[int], data: Any,
                     what: str = "tensor") -> np.ndarray:
  """Decodes a REST input's "data" (flat or nested, row-major) into an array.

  Values must suit the datatype: true/false for BOOL, integers within range
  for the integer types, numbers (not booleans) for FP16/BF16/FP32/FP64,
  strings for BYTES (stored as their UTF-8 bytes). The nesting may follow
  the shape or be flat (or anything between); every level must be all lists
  or all values, and the element count must equal the shape's.

  The values are never handed to numpy to guess their type (a long string
  among numbers would make it allocate count x length characters); their
  Python types are checked first, in bulk.

  Raises:
    ServingError: INVALID_ARGUMENT for values of the wrong type or range,
      mixed nesting, or a count that differs from the shape's.
  """
  shape = tuple(shape)
  count = _element_count(shape)
  leaves = _flatten(data, what)
  if len(leaves) != count:
    raise status.invalid_argument(
        f"unexpected number of elements for {what}: 'data' has "
        f"{len(leaves)}, but shape {tensor_codec.format_shape(shape)} needs "
        f"{count}")
  types = set(map(type, leaves))
  kind = dt.numpy_dtype.kind
  if dt is _BYTES:
    if not types <= {str}:
      raise _type_error(dt, data, what)
    flat = np.empty(count, dtype=object)
    flat[:] = [v.encode("utf-8", "surrogatepass") for v in leaves]
  elif dt is _BOOL:
    if not types <= {bool}:
      raise _type_error(dt, data, what)
    flat = np.array(leaves, dtype=np.bool_)
  elif kind in ("i", "u"):
    if not types <= {int}:
      raise _type_error(dt, data, what)
    wide = np.uint64 if dt.name == "UINT64" else np.int64
    try:
      flat = np.array(leaves, dtype=wide)
    except OverflowError:
      bad = min(leaves) if min(leaves) < 0 else max(leaves)
      raise status.invalid_argument(
          f"value {bad} of {what} is out of range for {dt.name}") from None
    _check_integer_range(flat, dt, what)
    flat = flat.astype(dt.numpy_dtype, copy=False)
  else:
    if not types <= {int, float}:
      raise _type_error(dt, data, what)
    try:
      flat = np.array(leaves, dtype=np.float64)
    except OverflowError:
      raise status.invalid_argument(
          f"a value of {what} is out of range for {dt.name}") from None
    with np.errstate(all="ignore"):
      flat = flat.astype(dt.numpy_dtype, copy=False)
  return _reshape(flat, shape, what)


def _type_error(dt: Datatype, data: Any, what: str) -> status.ServingError:
  expected = {"BYTES": "strings", "BOOL": "true or false"}.get(
      dt.name, "integers" if dt.numpy_dtype.kind in ("i", "u") else "numbers")
  return status.invalid_argument(
      f"unable to parse 'data' of {what}: {dt.name} values must be "
      f"{expected}, got {_dump(data)}")


def _flatten(data: Any, what: str) -> list:
  """The leaves of nested lists, level by level, in row-major order.

  Each level must hold only lists or only values; a scalar is one value.
  Work is linear in the data and runs at C speed per level.
  """
  if type(data) is not list:  # pylint: disable=unidiomatic-typecheck
    return [data]
  level = data
  for _ in range(MAX_DIMS + 1):
    types = set(map(type, level))
    if list not in types:
      return level
    if len(types) > 1:
      raise status.invalid_argument(
          f"unable to parse 'data' of {what}: it mixes lists and values at "
          "one level of nesting")
    level = list(itertools.chain.from_iterable(level))
  raise status.invalid_argument(
      f"'data' of {what} is nested deeper than {MAX_DIMS} levels")


def to_json_data(array: np.ndarray, dt: Optional[Datatype] = None) -> list:
  """An array's elements as a flat, row-major JSON list.

  Numbers become Python ints and floats (NaN and infinities stay floats; the
  JSON writer decides how to spell them), BOOL becomes true/false, and BYTES
  become strings.

  Raises:
    ServingError: INVALID_ARGUMENT for a BYTES element that is not valid
      UTF-8 (JSON cannot carry it; ask for the output with "binary_data").
  """
  array = np.asarray(array)
  if dt is None:
    dt = datatype_of_numpy_dtype(array.dtype)
  flat = array.ravel()
  if dt is _BYTES:
    out = []
    for value in flat.tolist():
      value = _as_bytes(value)
      try:
        out.append(value.decode("utf-8"))
      except UnicodeDecodeError:
        raise status.invalid_argument(
            "a BYTES output holds bytes that are not UTF-8, which JSON "
            'cannot carry; request it with "binary_data": true') from None
    return out
  if dt.name == "BF16":
    flat = flat.astype(np.float32)
  return flat.tolist()


def encode_json_output(name: str, array: np.ndarray,
                       dt: Optional[Datatype] = None,
                       binary: bool = False
                      ) -> tuple[dict[str, Any], Optional[bytes]]:
  """One REST $response_output, with its data inline or as a binary blob.

  Args:
    name: the output's name.
    array: its value.
    dt: its datatype; derived from the array when None.
    binary: send the data as a blob (binary tensor data extension): the
      object then carries "parameters": {"binary_data_size": N} and no
      "data", and the blob is returned beside it.

  Returns:
    (the JSON object, the blob or None).
  """
  array = np.asarray(array)
  if dt is None:
    dt = datatype_of_numpy_dtype(array.dtype)
  output: dict[str, Any] = {
      "name": name,
      "datatype": dt.name,
      "shape": list(array.shape),
  }
  if binary:
    blob = encode_raw(array, dt)
    output["parameters"] = {BINARY_DATA_SIZE: len(blob)}
    return output, blob
  output["data"] = to_json_data(array, dt)
  return output, None


def decode_json_input(tensor: Any,
                      blob: Optional[bytes | memoryview] = None
                     ) -> tuple[str, np.ndarray]:
  """Decodes one REST $request_input (a parsed JSON object).

  Args:
    tensor: the input object: "name", "shape", "datatype", and "data" unless
      its data came as a binary blob.
    blob: its binary data (take_binary_inputs), or None.

  Returns:
    (the input's name, its value).

  Raises:
    ServingError: INVALID_ARGUMENT for a malformed object or data.
  """
  if not isinstance(tensor, dict):
    raise status.invalid_argument(
        f"an input must be a JSON object, got {_dump(tensor)}")
  name = tensor.get("name")
  if not isinstance(name, str):
    raise status.invalid_argument(
        f"an input has no string 'name': {_dump(tensor)}")
  what = f"input '{name}'"
  if "datatype" not in tensor:
    raise status.invalid_argument(f"{what} has no 'datatype'")
  dt = datatype(tensor["datatype"], what)
  if "shape" not in tensor:
    raise status.invalid_argument(f"{what} has no 'shape'")
  shape = check_shape(tensor["shape"], what)
  if blob is not None:
    # The kserve SDK sends "data": [] beside an empty blob; only real data
    # in both places is ambiguous.
    if tensor.get("data") not in (None, []):
      raise status.invalid_argument(
          f"{what} has both 'data' and binary data; send one of them")
    return name, decode_raw(dt, shape, blob, what)
  if "data" not in tensor:
    raise status.invalid_argument(f"{what} has no 'data'")
  return name, decode_json_data(dt, shape, tensor["data"], what)


# --- The binary tensor data extension (REST) ----------------------------------


def split_binary_body(body: bytes | memoryview,
                      header_length: Optional[str | int]
                     ) -> tuple[memoryview, memoryview]:
  """Splits a REST body into its JSON part and the binary data after it.

  Args:
    body: the whole request body.
    header_length: the Inference-Header-Content-Length header, or None when
      absent (then the whole body is JSON).

  Returns:
    (the JSON bytes, the binary bytes); views of `body`, no copies.

  Raises:
    ServingError: INVALID_ARGUMENT for a header that is not a decimal count
      or exceeds the body.
  """
  view = memoryview(body)
  if header_length is None:
    return view, view[len(view):]
  if isinstance(header_length, int) and not isinstance(header_length, bool):
    length = header_length
  elif (isinstance(header_length, str) and header_length.isascii() and
        header_length.strip().isdigit() and len(header_length) <= 20):
    length = int(header_length)
  else:
    raise status.invalid_argument(
        f"{HEADER_CONTENT_LENGTH} must be a non-negative integer, got "
        f"{_dump(header_length)}")
  if length < 0 or length > len(view):
    raise status.invalid_argument(
        f"{HEADER_CONTENT_LENGTH} {length} is out of range for a body of "
        f"{len(view)} bytes")
  return view[:length], view[length:]


def take_binary_inputs(inputs: Any, binary: bytes | memoryview
                      ) -> list[Optional[memoryview]]:
  """Assigns the binary part of a REST body to the inputs that claim it.

  Each input with "parameters": {"binary_data_size": N} takes the next N
  bytes, in the order of "inputs"; inputs without it get None (their values
  are in "data"). The claims must add up to exactly the bytes present.

  Args:
    inputs: the request's "inputs" (a parsed JSON list).
    binary: the bytes after the JSON part (split_binary_body).

  Returns:
    One entry per input: its blob (a view, no copy) or None.

  Raises:
    ServingError: INVALID_ARGUMENT for a malformed size, claims beyond the
      bytes present, or bytes that no input claims.
  """
  if not isinstance(inputs, list):
    raise status.invalid_argument(
        f"'inputs' must be a list, got {_dump(inputs)}")
  view = memoryview(binary)
  pos = 0
  blobs: list[Optional[memoryview]] = []
  for tensor in inputs:
    size = None
    if isinstance(tensor, dict):
      params = tensor.get("parameters")
      if params is not None and not isinstance(params, dict):
        raise status.invalid_argument(
            f"'parameters' of input {_dump(tensor.get('name'))} must be an "
            "object")
      if params:
        size = params.get(BINARY_DATA_SIZE)
    if size is None:
      blobs.append(None)
      continue
    name = _dump(tensor.get("name"))
    if type(size) is not int or size < 0:  # pylint: disable=unidiomatic-typecheck
      raise status.invalid_argument(
          f"{BINARY_DATA_SIZE} of input {name} must be a non-negative "
          f"integer, got {_dump(size)}")
    if size > len(view) - pos:
      raise status.invalid_argument(
          f"unexpected end of binary data for input {name}: it claims "
          f"{size} bytes, {len(view) - pos} remain")
    blobs.append(view[pos:pos + size])
    pos += size
  if pos != len(view):
    raise status.invalid_argument(
        f"{len(view) - pos} bytes of binary data follow the inputs' "
        f"{BINARY_DATA_SIZE}s; no input claims them")
  return blobs


def _binary_flag(params: Any, key: str, where: str) -> Optional[bool]:
  if params is None:
    return None
  if not isinstance(params, dict):
    raise status.invalid_argument(f"'parameters' of {where} must be an object")
  value = params.get(key)
  if value is not None and not isinstance(value, bool):
    raise status.invalid_argument(
        f"{key} of {where} must be true or false, got {_dump(value)}")
  return value


def output_wants_binary(request: Mapping[str, Any],
                        output_name: str) -> bool:
  """Whether a REST response carries this output as a binary blob.

  The requested output's "binary_data" wins; otherwise the request's
  "binary_data_output"; otherwise JSON.

  Args:
    request: the parsed request object.
    output_name: the output about to be written.

  Raises:
    ServingError: INVALID_ARGUMENT for a flag that is not a boolean.
  """
  for requested in request.get("outputs") or ():
    if isinstance(requested, dict) and requested.get("name") == output_name:
      flag = _binary_flag(requested.get("parameters"), BINARY_DATA,
                          f"output '{output_name}'")
      if flag is not None:
        return flag
      break
  flag = _binary_flag(request.get("parameters"), BINARY_DATA_OUTPUT,
                      "the request")
  return bool(flag)


def build_binary_body(header: bytes | str, blobs: Sequence[bytes]
                     ) -> tuple[bytes, Optional[int]]:
  """Joins a response's JSON and its binary blobs into one body.

  Args:
    header: the serialized JSON response object.
    blobs: the binary outputs' bytes, in the order of the outputs that
      carry "binary_data_size".

  Returns:
    (the body, the value of Inference-Header-Content-Length), the latter
    None when there are no blobs (a plain JSON response, no header).
  """
  if isinstance(header, str):
    header = header.encode("utf-8")
  if not blobs:
    return header, None
  return b"".join([header, *blobs]), len(header)


def encode_json_response(
    response: Mapping[str, Any],
    outputs: Iterable[tuple[str, np.ndarray]],
    request: Optional[Mapping[str, Any]] = None,
    dumps: Optional[Callable[[Any], bytes | str]] = None,
) -> tuple[bytes, Optional[int]]:
  """Builds a whole REST inference response body.

  Args:
    response: the fields other than "outputs" ("model_name",
      "model_version", "id", "parameters").
    outputs: (name, value) of each output, in order.
    request: the parsed request, whose flags choose binary outputs
      (output_wants_binary); None means all JSON.
    dumps: the JSON serializer (e.g. orjson.dumps); the standard library's
      when None.

  Returns:
    (the body, Inference-Header-Content-Length or None).
  """
  doc = dict(response)
  doc["outputs"] = []
  blobs = []
  for name, array in outputs:
    binary = request is not None and output_wants_binary(request, name)
    output, blob = encode_json_output(name, array, binary=binary)
    doc["outputs"].append(output)
    if blob is not None:
      blobs.append(blob)
  if dumps is None:
    header = json.dumps(doc, separators=(",", ":"))
  else:
    header = dumps(doc)
  return build_binary_body(header, blobs)


def _dump(value: Any) -> str:
  """A short rendering of a received value for error messages; bounded in
  length and in the time it takes, whatever the value."""
  return _DUMP.repr(value)

