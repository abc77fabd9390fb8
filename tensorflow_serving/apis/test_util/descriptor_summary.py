"""What a client can see of a .proto file, as plain values to compare.

The conformance tests hold our generated descriptors against those of
packages written by others (upstream's tensorflow-serving-api, tritonclient,
kserve). Two messages are wire- and JSON-compatible when their fields agree
in number, type, label, type name, oneof and JSON name; these helpers walk
FileDescriptorProtos and reduce messages and fields to dicts, so that an
assertEqual shows exactly which property differs.
"""

from typing import Any, Dict, Iterator, List, Tuple

from google.protobuf import descriptor_pb2


def walk_messages(
    prefix: str, messages: List[descriptor_pb2.DescriptorProto]
) -> Iterator[Tuple[str, descriptor_pb2.DescriptorProto]]:
  """Yields (full name, DescriptorProto) for messages and nested messages."""
  for message in messages:
    full_name = f"{prefix}.{message.name}"
    yield full_name, message
    yield from walk_messages(full_name, list(message.nested_type))


def messages(
    file_proto: descriptor_pb2.FileDescriptorProto
) -> Dict[str, descriptor_pb2.DescriptorProto]:
  """Every message of a file, nested ones included, by full name."""
  return dict(walk_messages(file_proto.package, list(file_proto.message_type)))


def walk_enums(
    file_proto: descriptor_pb2.FileDescriptorProto
) -> Iterator[Tuple[str, descriptor_pb2.EnumDescriptorProto]]:
  """Yields (full name, EnumDescriptorProto) for top-level and nested enums."""
  package = file_proto.package
  for enum in file_proto.enum_type:
    yield f"{package}.{enum.name}", enum
  for message_name, message in walk_messages(package,
                                             list(file_proto.message_type)):
    for enum in message.enum_type:
      yield f"{message_name}.{enum.name}", enum


def field_summary(message: descriptor_pb2.DescriptorProto,
                  field: descriptor_pb2.FieldDescriptorProto) -> Dict[str, Any]:
  """The properties of a field that decide its wire format and JSON name."""
  oneof = None
  if field.HasField("oneof_index"):
    oneof = message.oneof_decl[field.oneof_index].name
  return {
      "number": field.number,
      "type": descriptor_pb2.FieldDescriptorProto.Type.Name(field.type),
      "label": descriptor_pb2.FieldDescriptorProto.Label.Name(field.label),
      "type_name": field.type_name,
      "oneof": oneof,
      "proto3_optional": field.proto3_optional,
      "json_name": field.json_name if field.HasField("json_name") else None,
  }


def message_shape(message: descriptor_pb2.DescriptorProto) -> Dict[str, Any]:
  """A message's own properties, without its fields, nested types or enums."""
  return {
      "map_entry": message.options.map_entry,
      "reserved_ranges": sorted(
          (r.start, r.end) for r in message.reserved_range),
      "reserved_names": sorted(message.reserved_name),
  }


def message_summary(message: descriptor_pb2.DescriptorProto) -> Dict[str, Any]:
  """Everything about a message that a client could depend on."""
  return {
      "fields": {f.name: field_summary(message, f) for f in message.field},
      "nested": sorted(m.name for m in message.nested_type),
      "enums": {e.name: {v.name: v.number for v in e.value}
                for e in message.enum_type},
      "oneofs": [o.name for o in message.oneof_decl],
      **message_shape(message),
  }
