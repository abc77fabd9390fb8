"""Checks our V2 protos (apis/grpc_service.proto) against real V2 clients.

tritonclient and the kserve SDK must call our GRPCInferenceService and parse
its replies unchanged, so every message, enum and RPC we define must match
what their generated modules define, name for name and number for number.
This test proves it against the modules that ship in those packages:

  * Schema: every message we define exists in tritonclient's
    grpc_service.proto with exactly our fields (name, number, type, label,
    type name, oneof, map entry), nested messages and enums; the messages we
    define are exactly those our RPCs reach; every RPC we define exists there
    with the same request and response types and streaming flags. The six
    core RPCs' messages are compared with the kserve SDK's module too (its
    repository messages have another layout than Triton's; ours follow
    Triton's, as the issue asks).
  * Method paths: the generated stubs of both packages call the same
    "/inference.GRPCInferenceService/<Method>" paths as ours.
  * Bytes: sample messages built by the clients' classes parse with ours to
    equal messages and identical bytes, and ours parse with theirs.

Both packages need protobuf < 7, and they cannot even share a process with
each other, so each lives in its own virtualenv made by tools/configure.sh
(TRITONCLIENT_PYTHON and KSERVE_PYTHON name their interpreters, passed to
Bazel with --test_env). The code that runs there is plain functions of this
file, shipped as source, run with -P -s and no PYTHONPATH, so neither our
workspace nor Bazel's runfiles are importable there.
"""

import base64
import importlib
import os
from typing import Any, Dict, List

from absl.testing import absltest
from google.protobuf import descriptor_pb2

from tensorflow_serving.apis.test_util import client_subprocess
from tensorflow_serving.apis.test_util import descriptor_summary

# Each client: (module with the messages, module with the stub).
_CLIENTS = {
    "tritonclient": ("tritonclient.grpc.service_pb2",
                     "tritonclient.grpc.service_pb2_grpc"),
    "kserve": ("kserve.protocol.grpc.grpc_predict_v2_pb2",
               "kserve.protocol.grpc.grpc_predict_v2_pb2_grpc"),
}

_OURS = "tensorflow_serving.apis.grpc_service_pb2"
_OURS_GRPC = "tensorflow_serving.apis.grpc_service_pb2_grpc"
_SERVICE = "GRPCInferenceService"
_PACKAGE = "inference"

# The kserve SDK ships an older revision of the protocol: its InferParameter
# lacks double_param and uint64_param (which the current specification and
# Triton have; ours may only be a superset of its fields), and its repository
# RPCs take its own messages (model_name = 1, isLoaded, ...), not Triton's;
# ours are Triton's, so those are compared with tritonclient only.
_KSERVE_DIFFERENT = frozenset({
    "RepositoryModelLoadRequest", "RepositoryModelLoadResponse",
    "RepositoryModelUnloadRequest", "RepositoryModelUnloadResponse",
})


def _build_samples(pb2: Any, triton: bool) -> Dict[str, Any]:
  """Builds sample messages with whichever generated module `pb2` is.

  Runs in every process (it is shipped to the client subprocesses as
  source), so it uses nothing but its arguments.

  Args:
    pb2: a module defining the inference.* messages.
    triton: also use what only Triton's layout (and ours) has: the model
      repository messages and the double and uint64 parameters.

  Returns:
    Sample name -> message.
  """
  samples = {}

  request = pb2.ModelInferRequest(model_name="mnist", model_version="2",
                                  id="req-7")
  request.parameters["signature_name"].string_param = "predict_images"
  request.parameters["binary_data_output"].bool_param = True
  request.parameters["priority"].int64_param = -3
  if triton:
    request.parameters["timeout"].double_param = 0.25
    request.parameters["sequence_id"].uint64_param = 2**64 - 1
  images = request.inputs.add(name="images", datatype="FP32", shape=[1, 2])
  images.contents.fp32_contents.extend([0.5, -1.25])
  images.parameters["layout"].string_param = "NHWC"
  words = request.inputs.add(name="words", datatype="BYTES", shape=[2])
  words.contents.bytes_contents.extend([b"a\x00b", b""])
  flags = request.inputs.add(name="flags", datatype="BOOL", shape=[3])
  flags.contents.bool_contents.extend([True, False, True])
  small = request.inputs.add(name="small", datatype="INT8", shape=[2])
  small.contents.int_contents.extend([-128, 127])
  big = request.inputs.add(name="big", datatype="UINT64", shape=[1])
  big.contents.uint64_contents.append(2**64 - 1)
  request.inputs.add(name="wide", datatype="INT64",
                     shape=[1]).contents.int64_contents.append(-2**63)
  request.inputs.add(name="unsigned", datatype="UINT32",
                     shape=[1]).contents.uint_contents.append(2**32 - 1)
  request.inputs.add(name="double", datatype="FP64",
                     shape=[1]).contents.fp64_contents.append(1e300)
  scores = request.outputs.add(name="scores")
  scores.parameters["binary_data"].bool_param = False
  samples["ModelInferRequest"] = request

  raw = pb2.ModelInferRequest(model_name="mnist")
  raw.inputs.add(name="images", datatype="FP16", shape=[2, 1])
  raw.raw_input_contents.append(b"\x00\x3c\x00\xc0")
  samples["ModelInferRequest.raw"] = raw

  response = pb2.ModelInferResponse(model_name="mnist", model_version="2",
                                    id="req-7")
  out = response.outputs.add(name="scores", datatype="FP32", shape=[1, 2])
  out.parameters["binary_data_size"].int64_param = 8
  response.raw_output_contents.append(b"\x00\x00\x80\x3f\x00\x00\x00\x00")
  typed = response.outputs.add(name="classes", datatype="INT64", shape=[1])
  typed.contents.int64_contents.append(7)
  response.parameters["sequence_end"].bool_param = True
  samples["ModelInferResponse"] = response

  metadata = pb2.ModelMetadataResponse(name="mnist", versions=["1", "2"],
                                       platform="tensorflow_savedmodel")
  metadata.inputs.add(name="images", datatype="FP32", shape=[-1, 784])
  metadata.outputs.add(name="scores", datatype="FP32", shape=[-1, 10])
  samples["ModelMetadataResponse"] = metadata

  samples["ModelMetadataRequest"] = pb2.ModelMetadataRequest(
      name="mnist", version="stable")
  samples["ModelReadyRequest"] = pb2.ModelReadyRequest(name="mnist",
                                                       version="1")
  samples["ModelReadyResponse"] = pb2.ModelReadyResponse(ready=True)
  samples["ServerLiveResponse"] = pb2.ServerLiveResponse(live=True)
  samples["ServerReadyResponse"] = pb2.ServerReadyResponse(ready=True)
  samples["ServerMetadataResponse"] = pb2.ServerMetadataResponse(
      name="tensorflow_model_server", version="2.21.0",
      extensions=["binary_tensor_data", "model_repository"])

  if triton:
    index = pb2.RepositoryIndexResponse()
    index.models.add(name="mnist", version="2", state="READY")
    index.models.add(name="broken", version="1", state="UNAVAILABLE",
                     reason="Could not find SavedModel")
    samples["RepositoryIndexResponse"] = index
    samples["RepositoryIndexRequest"] = pb2.RepositoryIndexRequest(
        repository_name="", ready=True)
    load = pb2.RepositoryModelLoadRequest(model_name="half_plus_two")
    load.parameters["base_path"].string_param = "/models/half_plus_two"
    load.parameters["model_platform"].string_param = "tensorflow"
    load.parameters["file:1/model.savedmodel"].bytes_param = b"\x08\x01"
    load.parameters["poll"].bool_param = False
    load.parameters["retries"].int64_param = 3
    samples["RepositoryModelLoadRequest"] = load
    samples["RepositoryModelUnloadRequest"] = pb2.RepositoryModelUnloadRequest(
        repository_name="models", model_name="half_plus_two")

  return samples


def _client_main(messages_module: str, grpc_module: str, triton: bool,
                 request_path: str, reply_path: str) -> None:
  """Entry point of a client subprocess (shipped there as source).

  Imports the client's generated modules and writes JSON to `reply_path`:
  where they came from, whether our package is importable there (it must
  not be), their FileDescriptorProto, the method paths their stub calls, the
  samples built with their classes, and the result of parsing our samples
  (read from `request_path`) with their classes.
  """
  # pylint: disable=g-import-not-at-top
  import base64
  import importlib
  import importlib.util
  import json
  from google.protobuf import descriptor_pb2 as dpb
  # pylint: enable=g-import-not-at-top

  pb2 = importlib.import_module(messages_module)
  pb2_grpc = importlib.import_module(grpc_module)

  def encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")

  class Recorder:
    """A stand-in channel that notes which path each stub method calls."""

    def __init__(self):
      self.paths = {}

    def _note(self, kind):
      def make(path, *unused_args, **unused_kwargs):
        self.paths[path.rsplit("/", 1)[-1]] = [path, kind]
        return lambda *a, **k: None
      return make

    def __getattr__(self, kind):
      if kind in ("unary_unary", "unary_stream", "stream_unary",
                  "stream_stream"):
        return self._note(kind)
      raise AttributeError(kind)

  recorder = Recorder()
  pb2_grpc.GRPCInferenceServiceStub(recorder)

  proto = dpb.FileDescriptorProto()
  pb2.DESCRIPTOR.CopyToProto(proto)

  # _build_samples is defined beside this function in the script.
  samples = _build_samples(pb2, triton)
  with open(request_path) as f:
    ours = json.load(f)
  parsed_ours = {}
  for name, data in ours.items():
    message = type(samples[name])()
    message.ParseFromString(base64.b64decode(data))
    parsed_ours[name] = {
        "equal": message == samples[name],
        "deterministic": encode(message.SerializeToString(deterministic=True)),
    }

  reply = {
      "origin": pb2.__file__,
      "ours_importable": importlib.util.find_spec("tensorflow_serving")
                         is not None,
      "descriptor": encode(proto.SerializeToString()),
      "paths": recorder.paths,
      "samples": {
          name: encode(message.SerializeToString(deterministic=True))
          for name, message in samples.items()
      },
      "parsed_ours": parsed_ours,
  }
  with open(reply_path, "w") as f:
    json.dump(reply, f)


def _run_client(client: str, our_samples: Dict[str, bytes]) -> Dict[str, Any]:
  """Runs _client_main in the client's own interpreter; returns its reply."""
  messages_module, grpc_module = _CLIENTS[client]
  return client_subprocess.run_functions(
      client_subprocess.v2_client_python(client), [_build_samples],
      _client_main,
      [messages_module, grpc_module, client == "tritonclient"], {
          name: base64.b64encode(data).decode("ascii")
          for name, data in our_samples.items()
      },
      what=f"the {client} subprocess")


def _reachable(file_proto: descriptor_pb2.FileDescriptorProto,
               roots: List[str]) -> set:
  """The message full names reachable from `roots` through fields."""
  messages = descriptor_summary.messages(file_proto)
  seen = set()
  todo = [r.lstrip(".") for r in roots]
  while todo:
    name = todo.pop()
    if name in seen or name not in messages:
      continue
    seen.add(name)
    message = messages[name]
    todo.extend(f"{name}.{m.name}" for m in message.nested_type)
    todo.extend(f.type_name.lstrip(".") for f in message.field if f.type_name)
  return seen


def _our_module(name: str) -> Any:
  return importlib.import_module(name)


class GrpcServiceConformanceTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    pb2 = _our_module(_OURS)
    cls.ours = descriptor_pb2.FileDescriptorProto()
    pb2.DESCRIPTOR.CopyToProto(cls.ours)
    cls.our_samples = {
        client: _build_samples(pb2, triton=client == "tritonclient")
        for client in _CLIENTS
    }
    cls.replies = {
        client: _run_client(client, {
            name: message.SerializeToString()
            for name, message in cls.our_samples[client].items()
        })
        for client in _CLIENTS
    }
    cls.theirs = {
        client: descriptor_pb2.FileDescriptorProto.FromString(
            base64.b64decode(reply["descriptor"]))
        for client, reply in cls.replies.items()
    }

  def _our_service(self) -> descriptor_pb2.ServiceDescriptorProto:
    (service,) = self.ours.service
    return service

  def _their_service(self, client: str) -> descriptor_pb2.ServiceDescriptorProto:
    services = {s.name: s for s in self.theirs[client].service}
    self.assertIn(_SERVICE, services, f"{client} has no {_SERVICE}")
    return services[_SERVICE]

  def test_processes_are_isolated(self):
    for client, reply in self.replies.items():
      with self.subTest(client=client):
        self.assertFalse(reply["ours_importable"],
                         f"our package is importable in the {client} process")
        python = client_subprocess.v2_client_python(client)
        env_dir = os.path.dirname(os.path.dirname(python))
        self.assertTrue(
            os.path.realpath(reply["origin"]).startswith(
                os.path.realpath(env_dir) + os.sep),
            f"{client} came from {reply['origin']}, not from {env_dir}")
    for client in _CLIENTS:
      with self.assertRaises(ImportError):
        importlib.import_module(client)

  def test_file_identity(self):
    self.assertEqual(self.ours.package, _PACKAGE)
    self.assertEqual(self.ours.syntax, "proto3")
    self.assertEqual(self.ours.name, "tensorflow_serving/apis/grpc_service.proto")
    self.assertEqual([s.name for s in self.ours.service], [_SERVICE])
    for client, theirs in self.theirs.items():
      with self.subTest(client=client):
        self.assertEqual(theirs.package, _PACKAGE)
        self.assertEqual(theirs.syntax, "proto3")

  def test_every_message_we_define_matches_triton(self):
    theirs = descriptor_summary.messages(self.theirs["tritonclient"])
    ours = descriptor_summary.messages(self.ours)
    self.assertGreaterEqual(len(ours), 25)
    fields = 0
    for full_name, message in ours.items():
      with self.subTest(message=full_name):
        self.assertIn(full_name, theirs, f"tritonclient has no {full_name}")
        self.assertEqual(descriptor_summary.message_summary(message),
                         descriptor_summary.message_summary(theirs[full_name]))
        fields += len(message.field)
    self.assertGreater(fields, 60)

  def test_we_define_exactly_the_messages_our_rpcs_reach(self):
    service = self._our_service()
    roots = [m.input_type for m in service.method] + [
        m.output_type for m in service.method]
    self.assertEqual(set(descriptor_summary.messages(self.ours)),
                     _reachable(self.theirs["tritonclient"], roots))

  def test_enums_match(self):
    # Top-level enums (none today; nested ones are part of each message's
    # summary above). Any we add must exist in Triton's file.
    theirs = {e.name: {v.name: v.number for v in e.value}
              for e in self.theirs["tritonclient"].enum_type}
    for enum in self.ours.enum_type:
      with self.subTest(enum=enum.name):
        self.assertEqual({v.name: v.number for v in enum.value},
                         theirs.get(enum.name))

  def test_rpcs_match_triton(self):
    ours = self._our_service()
    self.assertEqual(ours.name, _SERVICE)
    theirs = {m.name: m for m in self._their_service("tritonclient").method}
    expected = {"ServerLive", "ServerReady", "ModelReady", "ServerMetadata",
                "ModelMetadata", "ModelInfer", "RepositoryIndex",
                "RepositoryModelLoad", "RepositoryModelUnload"}
    self.assertEqual({m.name for m in ours.method}, expected)
    for method in ours.method:
      with self.subTest(rpc=method.name):
        self.assertIn(method.name, theirs)
        other = theirs[method.name]
        self.assertEqual(
            (method.input_type, method.output_type, method.client_streaming,
             method.server_streaming),
            (other.input_type, other.output_type, other.client_streaming,
             other.server_streaming))

  def test_core_rpcs_and_messages_match_kserve(self):
    theirs = descriptor_summary.messages(self.theirs["kserve"])
    ours = descriptor_summary.messages(self.ours)
    compared = 0
    for full_name, message in theirs.items():
      if full_name.split(".")[1] in _KSERVE_DIFFERENT:
        continue
      with self.subTest(message=full_name):
        self.assertIn(full_name, ours)
        our_summary = descriptor_summary.message_summary(ours[full_name])
        their_summary = descriptor_summary.message_summary(message)
        our_fields = our_summary.pop("fields")
        their_fields = their_summary.pop("fields")
        self.assertEqual(our_summary, their_summary)
        for name, field in their_fields.items():
          self.assertEqual(our_fields.get(name), field, f"field {name}")
        if full_name != "inference.InferParameter":
          self.assertCountEqual(our_fields, their_fields)
        compared += 1
    self.assertGreaterEqual(compared, 20)
    our_methods = {m.name: m for m in self._our_service().method}
    for method in self._their_service("kserve").method:
      with self.subTest(rpc=method.name):
        self.assertIn(method.name, our_methods)
        if method.name.startswith("Repository"):
          continue  # kserve's own message layout; see _KSERVE_DIFFERENT.
        ours = our_methods[method.name]
        self.assertEqual((ours.input_type, ours.output_type),
                         (method.input_type, method.output_type))

  def test_method_paths_match_the_clients_stubs(self):
    grpc_module = _our_module(_OURS_GRPC)
    for attr in (f"{_SERVICE}Stub", f"{_SERVICE}Servicer",
                 f"add_{_SERVICE}Servicer_to_server"):
      self.assertTrue(hasattr(grpc_module, attr), attr)
    our_paths = {
        m.name: f"/{_PACKAGE}.{_SERVICE}/{m.name}"
        for m in self._our_service().method
    }
    for client, reply in self.replies.items():
      paths = reply["paths"]
      with self.subTest(client=client):
        self.assertGreaterEqual(len(paths), 6)
        for name, (path, kind) in paths.items():
          if name in our_paths:
            self.assertEqual(path, our_paths[name])
            self.assertEqual(kind, "unary_unary")
        for core in ("ServerLive", "ServerReady", "ModelReady",
                     "ServerMetadata", "ModelMetadata", "ModelInfer"):
          self.assertEqual(paths[core][0], our_paths[core])
    triton = self.replies["tritonclient"]["paths"]
    for name in ("RepositoryIndex", "RepositoryModelLoad",
                 "RepositoryModelUnload"):
      self.assertEqual(triton[name][0], our_paths[name])

  def test_their_bytes_parse_with_ours(self):
    for client, reply in self.replies.items():
      for name, data in reply["samples"].items():
        with self.subTest(client=client, sample=name):
          expected = self.our_samples[client][name]
          parsed = type(expected).FromString(base64.b64decode(data))
          self.assertEqual(parsed, expected)
          # Same bytes both ways: nothing landed in unknown fields.
          self.assertEqual(parsed.SerializeToString(deterministic=True),
                           base64.b64decode(data))

  def test_our_bytes_parse_with_theirs(self):
    for client, reply in self.replies.items():
      self.assertCountEqual(reply["parsed_ours"].keys(),
                            self.our_samples[client].keys())
      for name, result in reply["parsed_ours"].items():
        with self.subTest(client=client, sample=name):
          self.assertTrue(result["equal"],
                          f"{client}'s {name} parsed from our bytes differs")
          self.assertEqual(result["deterministic"], reply["samples"][name])

  def test_infer_request_field_values(self):
    # Spelled out, so a sample builder bug cannot hide a mismatch.
    pb2 = _our_module(_OURS)
    request = pb2.ModelInferRequest.FromString(base64.b64decode(
        self.replies["tritonclient"]["samples"]["ModelInferRequest"]))
    self.assertEqual((request.model_name, request.model_version, request.id),
                     ("mnist", "2", "req-7"))
    params = request.parameters
    self.assertEqual(params["signature_name"].string_param, "predict_images")
    self.assertEqual(params["sequence_id"].WhichOneof("parameter_choice"),
                     "uint64_param")
    self.assertEqual(params["sequence_id"].uint64_param, 2**64 - 1)
    self.assertEqual(params["timeout"].double_param, 0.25)
    images = request.inputs[0]
    self.assertEqual((images.name, images.datatype, list(images.shape)),
                     ("images", "FP32", [1, 2]))
    self.assertEqual(list(images.contents.fp32_contents), [0.5, -1.25])
    self.assertEqual(list(request.inputs[1].contents.bytes_contents),
                     [b"a\x00b", b""])
    self.assertEqual(list(request.inputs[3].contents.int_contents), [-128, 127])
    self.assertEqual(request.outputs[0].name, "scores")
    load = pb2.RepositoryModelLoadRequest.FromString(base64.b64decode(
        self.replies["tritonclient"]["samples"]["RepositoryModelLoadRequest"]))
    self.assertEqual(load.model_name, "half_plus_two")
    self.assertEqual(load.parameters["base_path"].string_param,
                     "/models/half_plus_two")
    self.assertEqual(load.parameters["file:1/model.savedmodel"].bytes_param,
                     b"\x08\x01")


if __name__ == "__main__":
  absltest.main()
