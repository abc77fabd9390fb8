"""Checks our serving protos against the official tensorflow-serving-api.

Clients built on the official package must talk to our server and read our
config files, so every file, message, field, enum and service it defines has
to exist here with the same name, number, type and label. This test proves
it two ways:

  * Schema: the FileDescriptorProtos of both sides are compared entry by
    entry (ours may define more, never less or differently).
  * Bytes: sample messages built by the official classes are parsed with
    ours, and ours are parsed back by the official classes.

The official package also installs a top-level `tensorflow_serving`, so it
must never share a process with ours. It is imported only in a subprocess
that runs with PYTHONPATH set to the oracle directory alone (taken from the
TF_SERVING_API_ORACLE environment variable; tools/configure.sh installs the
package there and tells Bazel via --test_env) and with `-P`, so neither our
workspace nor Bazel's runfiles are importable there.

The code that builds the sample messages and the code that runs in the
subprocess are plain functions of this file; the subprocess receives their
source text (`inspect.getsource`), so both sides build the samples with the
very same code.
"""

import base64
import importlib
import os
import sys
from typing import Any, Callable, Dict, Tuple

from absl.testing import absltest
from google.protobuf import descriptor_pb2

from tensorflow_serving.apis.test_util import client_subprocess
from tensorflow_serving.apis.test_util import descriptor_summary

_ORACLE_ENV = "TF_SERVING_API_ORACLE"

# Subpackages of tensorflow_serving that hold the official *_pb2 modules.
_SUBPACKAGES = ("apis", "config")


def _build_samples(pb2: Callable[[str], Any]) -> Dict[str, Any]:
  """Builds the sample messages with whichever generated classes `pb2` gives.

  Runs in both processes (it is shipped to the oracle subprocess as source),
  so it uses nothing but its argument and the standard library.

  Args:
    pb2: maps a module name relative to tensorflow_serving (for example
      "apis.predict_pb2") to that generated module.

  Returns:
    Sample name -> message.
  """
  import struct  # pylint: disable=g-import-not-at-top

  def enum_value(message, field: str, name: str) -> int:
    # Enum numbers are looked up by name, so no TensorFlow module is needed.
    enum = message.DESCRIPTOR.fields_by_name[field].enum_type
    return enum.values_by_name[name].number

  samples = {}

  predict = pb2("apis.predict_pb2").PredictRequest()
  predict.model_spec.name = "mnist"
  predict.model_spec.version.value = 7
  predict.model_spec.signature_name = "predict_images"
  images = predict.inputs["images"]
  images.dtype = enum_value(images, "dtype", "DT_FLOAT")
  images.tensor_shape.dim.add().size = 1
  images.tensor_shape.dim.add().size = 4
  images.tensor_content = struct.pack("<4f", 0.0, 0.25, 0.5, 1.0)
  lengths = predict.inputs["lengths"]
  lengths.dtype = enum_value(lengths, "dtype", "DT_INT32")
  lengths.tensor_shape.dim.add().size = 3
  lengths.int_val.extend([3, -1, 2**31 - 1])
  predict.output_filter.extend(["scores", "classes"])
  samples["PredictRequest"] = predict

  classify = pb2("apis.classification_pb2").ClassificationRequest()
  classify.model_spec.name = "census"
  classify.model_spec.version_label = "stable"
  classify.model_spec.signature_name = "classify_income"
  with_context = classify.input.example_list_with_context
  for age, occupation, hours in ((39.5, b"engineer", [40, -3]),
                                 (52.0, b"teacher", [2**40])):
    feature = with_context.examples.add().features.feature
    feature["age"].float_list.value.append(age)
    feature["occupation"].bytes_list.value.append(occupation)
    feature["hours"].int64_list.value.extend(hours)
  with_context.context.features.feature["country"].bytes_list.value.append(
      b"NZ")
  samples["ClassificationRequest"] = classify

  status = pb2("apis.get_model_status_pb2").GetModelStatusResponse()
  version = status.model_version_status.add()
  version.version = 3
  version.state = enum_value(version, "state", "AVAILABLE")
  failed = status.model_version_status.add()
  failed.version = 4
  failed.state = enum_value(failed, "state", "END")
  failed.status.error_code = enum_value(failed.status, "error_code",
                                        "NOT_FOUND")
  failed.status.error_message = "no such version"
  samples["GetModelStatusResponse"] = status

  log = pb2("apis.prediction_log_pb2").PredictionLog()
  log.log_metadata.model_spec.name = "mnist"
  log.log_metadata.sampling_config.sampling_rate = 0.5
  log.log_metadata.saved_model_tags.append("serve")
  log.predict_log.request.CopyFrom(predict)
  scores = log.predict_log.response.outputs["scores"]
  scores.dtype = enum_value(scores, "dtype", "DT_FLOAT")
  scores.float_val.extend([0.125, 0.875])
  samples["PredictionLog"] = log

  server_config = pb2("config.model_server_config_pb2").ModelServerConfig()
  model = server_config.model_config_list.config.add()
  model.name = "mnist"
  model.base_path = "/models/mnist"
  model.model_platform = "tensorflow"
  model.model_version_policy.specific.versions.extend([1, 2])
  model.version_labels["stable"] = 1
  model.logging_config.log_collector_config.filename_prefix = "/tmp/log"
  samples["ModelServerConfig"] = server_config

  return samples


def _oracle_main(request_path: str, reply_path: str) -> None:
  """Entry point of the oracle subprocess (shipped there as source).

  Imports every official tensorflow_serving.*_pb2 module and writes JSON to
  `reply_path`: where the package came from, the serialized
  FileDescriptorProto of each module, the official samples serialized, and
  the result of parsing our samples (read from `request_path`) with the
  official classes.
  """
  # pylint: disable=g-import-not-at-top
  import importlib
  import importlib.util
  import json
  import base64
  import pkgutil
  import sys
  import types
  # pylint: enable=g-import-not-at-top

  # The official modules import tensorflow.core.*_pb2. Those small modules
  # are all that is needed, so a bare `tensorflow` package stands in for the
  # real one, whose __init__ takes seconds to import.
  spec = importlib.util.find_spec("tensorflow")
  if spec is not None and spec.submodule_search_locations:
    bare = types.ModuleType("tensorflow")
    bare.__path__ = list(spec.submodule_search_locations)
    sys.modules["tensorflow"] = bare

  import tensorflow_serving  # pylint: disable=g-import-not-at-top
  origin = tensorflow_serving.__file__
  modules = {}
  for sub in ("apis", "config"):
    package = importlib.import_module("tensorflow_serving." + sub)
    for info in pkgutil.iter_modules(package.__path__):
      if info.name.endswith("_pb2"):
        name = sub + "." + info.name
        modules[name] = importlib.import_module("tensorflow_serving." + name)

  # pylint: disable-next=g-import-not-at-top
  from google.protobuf import descriptor_pb2 as dpb

  def encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")

  descriptors = {}
  for name, module in modules.items():
    proto = dpb.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(proto)
    descriptors[name] = encode(proto.SerializeToString())

  # _build_samples is defined beside this function in the script.
  samples = _build_samples(lambda name: modules[name])
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
      "origin": origin,
      "descriptors": descriptors,
      "samples": {
          name: encode(message.SerializeToString(deterministic=True))
          for name, message in samples.items()
      },
      "parsed_ours": parsed_ours,
  }
  with open(reply_path, "w") as f:
    json.dump(reply, f)


# Files that the official Python package does not ship. Their facts (field
# name -> number and type) come from upstream's .proto files, as recorded in
# the project's reference notes; a type is a FieldDescriptorProto type or,
# for messages and enums, the full type name.
_NOT_IN_OFFICIAL_PACKAGE: Dict[str, Dict[str, Dict[str, Tuple[int, str]]]] = {
    "config.monitoring_config_pb2": {
        "PrometheusConfig": {
            "enable": (1, "TYPE_BOOL"),
            "path": (2, "TYPE_STRING"),
        },
        "MonitoringConfig": {
            "prometheus_config": (1, ".tensorflow.serving.PrometheusConfig"),
        },
    },
    "config.ssl_config_pb2": {
        "SSLConfig": {
            "server_key": (1, "TYPE_STRING"),
            "server_cert": (2, "TYPE_STRING"),
            "custom_ca": (3, "TYPE_STRING"),
            "client_verify": (4, "TYPE_BOOL"),
        },
    },
    "servables.tensorflow.session_bundle_config_pb2": {
        "SessionBundleConfig": {
            "session_target": (1, "TYPE_STRING"),
            "session_config": (2, ".tensorflow.ConfigProto"),
            "batching_parameters":
                (3, ".tensorflow.serving.BatchingParameters"),
            "session_run_load_threadpool_index":
                (4, ".google.protobuf.Int32Value"),
            "experimental_transient_ram_bytes_during_load": (5, "TYPE_UINT64"),
            "saved_model_tags": (6, "TYPE_STRING"),
            "in_graph_batching_parameters":
                (7, ".tensorflow.serving.BatchingParameters"),
            "experimental_fixed_input_tensors":
                (778, ".tensorflow.NamedTensorProto"),
            "enable_model_warmup": (779, "TYPE_BOOL"),
            "model_warmup_options":
                (780, ".tensorflow.serving.ModelWarmupOptions"),
            "enable_session_metadata": (781, "TYPE_BOOL"),
            "remove_unused_fields_from_bundle_metagraph": (782, "TYPE_BOOL"),
            "prefer_tflite_model": (783, "TYPE_BOOL"),
            "resource_estimation_uses_validation_result": (784, "TYPE_BOOL"),
            "num_tflite_interpreters_per_pool": (786, "TYPE_INT32"),
            "num_tflite_pools": (787, "TYPE_INT32"),
            "wrap_session_with_no_threading_params": (788, "TYPE_BOOL"),
            "enable_per_model_batching_params": (789, "TYPE_BOOL"),
            "enable_saved_model_config": (790, "TYPE_BOOL"),
            "mixed_precision": (791, "TYPE_STRING"),
        },
        "ModelWarmupOptions": {
            "num_request_iterations": (1, ".google.protobuf.Int32Value"),
            "num_model_warmup_threads": (2, ".google.protobuf.Int32Value"),
            "model_name": (3, "TYPE_STRING"),
            "model_version": (4, "TYPE_INT64"),
            "enable_all_batch_sizes_warmup": (5, "TYPE_BOOL"),
        },
        "BatchingParameters": {
            "max_batch_size": (1, ".google.protobuf.Int64Value"),
            "batch_timeout_micros": (2, ".google.protobuf.Int64Value"),
            "max_enqueued_batches": (3, ".google.protobuf.Int64Value"),
            "num_batch_threads": (4, ".google.protobuf.Int64Value"),
            "thread_pool_name": (5, ".google.protobuf.StringValue"),
            "allowed_batch_sizes": (6, "TYPE_INT64"),
            "pad_variable_length_inputs": (7, "TYPE_BOOL"),
            "enable_large_batch_splitting": (8, ".google.protobuf.BoolValue"),
            "max_execution_batch_size": (9, ".google.protobuf.Int64Value"),
        },
    },
}


def _our_module(name: str) -> Any:
  """Imports our tensorflow_serving.<name> (e.g. "apis.predict_pb2")."""
  return importlib.import_module("tensorflow_serving." + name)


def _run_oracle(oracle_dir: str,
                our_samples: Dict[str, bytes]) -> Dict[str, Any]:
  """Runs _oracle_main in a clean subprocess and returns its JSON reply."""
  return client_subprocess.run_functions(
      sys.executable, [_build_samples], _oracle_main, [], {
          name: base64.b64encode(data).decode("ascii")
          for name, data in our_samples.items()
      },
      what="the oracle subprocess",
      # Only the oracle directory is importable.
      env={"PYTHONPATH": oracle_dir, "PYTHONNOUSERSITE": "1"})


class OfficialApiConformanceTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    oracle_dir = os.environ.get(_ORACLE_ENV)
    if not oracle_dir:
      raise AssertionError(
          f"{_ORACLE_ENV} is not set. It must name the directory where "
          "tools/configure.sh installed tensorflow-serving-api (normally "
          "<workspace>/.oracle); configure.sh passes it to Bazel with "
          f"`test --test_env={_ORACLE_ENV}=...` in "
          ".tf_serving_configure.bazelrc. Run tools/configure.sh.")
    if not os.path.isdir(os.path.join(oracle_dir, "tensorflow_serving")):
      raise AssertionError(
          f"{_ORACLE_ENV}={oracle_dir} holds no tensorflow_serving package; "
          "run tools/configure.sh.")
    cls.oracle_dir = oracle_dir
    cls.our_samples = _build_samples(_our_module)
    cls.reply = _run_oracle(oracle_dir, {
        name: message.SerializeToString()
        for name, message in cls.our_samples.items()
    })
    cls.official_files = {}
    for name, data in cls.reply["descriptors"].items():
      cls.official_files[name] = descriptor_pb2.FileDescriptorProto.FromString(
          base64.b64decode(data))

  def _our_file(self, module_name: str) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    _our_module(module_name).DESCRIPTOR.CopyToProto(proto)
    return proto

  def test_processes_are_isolated(self):
    origin = os.path.realpath(self.reply["origin"])
    self.assertTrue(
        origin.startswith(os.path.realpath(self.oracle_dir) + os.sep),
        f"the oracle imported tensorflow_serving from {origin}")
    ours = os.path.realpath(
        importlib.import_module("tensorflow_serving").__file__)
    self.assertFalse(
        ours.startswith(os.path.realpath(self.oracle_dir) + os.sep),
        f"this test imported the official package ({ours})")

  def test_oracle_found_the_official_modules(self):
    # Guards against a vacuous pass: the comparisons below loop over these.
    self.assertIn("apis.predict_pb2", self.official_files)
    self.assertIn("apis.prediction_service_pb2", self.official_files)
    self.assertIn("config.model_server_config_pb2", self.official_files)
    self.assertGreaterEqual(len(self.official_files), 20)

  def test_every_official_file_exists_in_ours(self):
    for module_name, official in self.official_files.items():
      with self.subTest(module=module_name):
        ours = self._our_file(module_name)
        self.assertEqual(ours.name, official.name)
        self.assertEqual(ours.package, official.package)
        self.assertEqual(ours.syntax, official.syntax)
        missing = set(official.dependency) - set(ours.dependency)
        self.assertFalse(missing, f"{official.name} lacks imports {missing}")

  def test_messages_match(self):
    checked = 0
    for module_name, official in self.official_files.items():
      ours = dict(descriptor_summary.walk_messages(
          official.package, list(self._our_file(module_name).message_type)))
      for full_name, message in descriptor_summary.messages(official).items():
        with self.subTest(message=full_name):
          self.assertIn(full_name, ours, f"{official.name}: no {full_name}")
          our_message = ours[full_name]
          self.assertEqual(descriptor_summary.message_shape(our_message),
                           descriptor_summary.message_shape(message))
          our_fields = {f.name: f for f in our_message.field}
          for field in message.field:
            self.assertIn(field.name, our_fields,
                          f"{full_name} has no field {field.name}")
            self.assertEqual(
                descriptor_summary.field_summary(our_message,
                                                 our_fields[field.name]),
                descriptor_summary.field_summary(message, field),
                f"field {full_name}.{field.name}")
            checked += 1
    self.assertGreater(checked, 100)

  def test_enums_match(self):
    checked = 0
    for module_name, official in self.official_files.items():
      ours = dict(descriptor_summary.walk_enums(self._our_file(module_name)))
      for full_name, enum in descriptor_summary.walk_enums(official):
        with self.subTest(enum=full_name):
          self.assertIn(full_name, ours, f"{official.name}: no {full_name}")
          our_values = {v.name: v.number for v in ours[full_name].value}
          for value in enum.value:
            self.assertEqual(our_values.get(value.name), value.number,
                             f"{full_name}.{value.name}")
            checked += 1
    self.assertGreater(checked, 10)

  def test_services_match(self):
    services = 0
    for module_name, official in self.official_files.items():
      ours = {s.name: s for s in self._our_file(module_name).service}
      for service in official.service:
        with self.subTest(service=service.name):
          services += 1
          self.assertIn(service.name, ours, f"{official.name}: no service")
          our_methods = {m.name: m for m in ours[service.name].method}
          for method in service.method:
            self.assertIn(method.name, our_methods)
            our_method = our_methods[method.name]
            self.assertEqual(
                (our_method.input_type, our_method.output_type,
                 our_method.client_streaming, our_method.server_streaming),
                (method.input_type, method.output_type,
                 method.client_streaming, method.server_streaming),
                f"{service.name}.{method.name}")
          # Clients use the generated stubs, so the _grpc module must exist.
          grpc_module = _our_module(module_name + "_grpc")
          for attr in (f"{service.name}Stub", f"{service.name}Servicer",
                       f"add_{service.name}Servicer_to_server"):
            self.assertTrue(hasattr(grpc_module, attr), attr)
    self.assertEqual(services, 3)

  def test_files_the_official_package_lacks_match_the_reference(self):
    for module_name, messages in _NOT_IN_OFFICIAL_PACKAGE.items():
      proto = self._our_file(module_name)
      ours = descriptor_summary.messages(proto)
      for message_name, fields in messages.items():
        with self.subTest(message=message_name):
          full_name = f"{proto.package}.{message_name}"
          self.assertIn(full_name, ours)
          our_fields = {f.name: f for f in ours[full_name].field}
          for field_name, (number, kind) in fields.items():
            self.assertIn(field_name, our_fields)
            field = our_fields[field_name]
            our_kind = field.type_name or (
                descriptor_pb2.FieldDescriptorProto.Type.Name(field.type))
            self.assertEqual((field.number, our_kind), (number, kind),
                             f"{full_name}.{field_name}")

  def test_official_bytes_parse_with_ours(self):
    for name, data in self.reply["samples"].items():
      with self.subTest(sample=name):
        expected = self.our_samples[name]
        parsed = type(expected).FromString(base64.b64decode(data))
        self.assertEqual(parsed, expected)
        # Same bytes both ways: nothing landed in unknown fields.
        self.assertEqual(parsed.SerializeToString(deterministic=True),
                         base64.b64decode(data))

  def test_official_predict_request_field_values(self):
    # Spelled out, so a sample builder bug cannot hide a mismatch.
    predict_pb2 = _our_module("apis.predict_pb2")
    request = predict_pb2.PredictRequest.FromString(
        base64.b64decode(self.reply["samples"]["PredictRequest"]))
    self.assertEqual(request.model_spec.name, "mnist")
    self.assertEqual(request.model_spec.version.value, 7)
    self.assertEqual(request.model_spec.WhichOneof("version_choice"),
                     "version")
    self.assertEqual(request.model_spec.signature_name, "predict_images")
    self.assertEqual(list(request.output_filter), ["scores", "classes"])
    self.assertCountEqual(request.inputs.keys(), ["images", "lengths"])
    images = request.inputs["images"]
    self.assertEqual(images.dtype, 1)  # DT_FLOAT
    self.assertEqual([d.size for d in images.tensor_shape.dim], [1, 4])
    self.assertLen(images.tensor_content, 16)
    self.assertEmpty(images.float_val)
    lengths = request.inputs["lengths"]
    self.assertEqual(lengths.dtype, 3)  # DT_INT32
    self.assertEqual(list(lengths.int_val), [3, -1, 2**31 - 1])

  def test_official_classification_request_field_values(self):
    classification_pb2 = _our_module("apis.classification_pb2")
    request = classification_pb2.ClassificationRequest.FromString(
        base64.b64decode(self.reply["samples"]["ClassificationRequest"]))
    self.assertEqual(request.model_spec.name, "census")
    self.assertEqual(request.model_spec.version_label, "stable")
    self.assertEqual(request.input.WhichOneof("kind"),
                     "example_list_with_context")
    examples = request.input.example_list_with_context.examples
    self.assertLen(examples, 2)
    first = examples[0].features.feature
    self.assertEqual(list(first["age"].float_list.value), [39.5])
    self.assertEqual(list(first["occupation"].bytes_list.value), [b"engineer"])
    self.assertEqual(list(first["hours"].int64_list.value), [40, -3])
    self.assertEqual(
        list(examples[1].features.feature["hours"].int64_list.value), [2**40])
    context = request.input.example_list_with_context.context
    self.assertEqual(
        list(context.features.feature["country"].bytes_list.value), [b"NZ"])

  def test_our_bytes_parse_with_official(self):
    self.assertCountEqual(self.reply["parsed_ours"].keys(),
                          self.our_samples.keys())
    for name, result in self.reply["parsed_ours"].items():
      with self.subTest(sample=name):
        self.assertTrue(result["equal"],
                        f"the official {name} parsed from our bytes differs")
        self.assertEqual(result["deterministic"], self.reply["samples"][name])


if __name__ == "__main__":
  absltest.main()
