"""Tests for platform_config_util: PlatformConfigMap -> source adapters."""

import os

from absl.testing import absltest
from google.protobuf import text_format

from tensorflow_serving.model_servers import platform_config_util
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter as adapter_lib
from tensorflow_serving.util import status

_TF_CONFIG = """
platform_configs {
  key: "tensorflow"
  value {
    source_adapter_config {
      [type.googleapis.com/tensorflow.serving.SavedModelBundleSourceAdapterConfig] {
        legacy_config {
          session_config { intra_op_parallelism_threads: 3 }
          saved_model_tags: "serve"
          saved_model_tags: "extra"
          enable_model_warmup: true
          model_warmup_options { num_request_iterations { value: 4 } }
          %s
        }
      }
    }
  }
}
"""


def _map(text: str) -> platform_config_util.PlatformConfigMap:
  return text_format.Parse(text, platform_config_util.PlatformConfigMap())


class PlatformConfigUtilTest(absltest.TestCase):

  def test_saved_model_adapter_from_legacy_config(self):
    adapters = platform_config_util.create_platform_adapters(
        _map(_TF_CONFIG % ""),
        platform_config_util.AdapterSettings(
            enable_signature_method_name_check=True))
    self.assertEqual(list(adapters.factories), ["tensorflow"])
    self.assertEmpty(adapters.batch_schedulers)  # No batching asked for.
    adapter = adapters.factories["tensorflow"]()
    self.assertIsInstance(adapter, adapter_lib.SavedModelBundleSourceAdapter)
    self.assertEqual(adapter.session_config.intra_op_parallelism_threads, 3)

  def test_options_mapping(self):
    config = _map(_TF_CONFIG % "").platform_configs["tensorflow"]
    unpacked = platform_config_util.SavedModelBundleSourceAdapterConfig()
    config.source_adapter_config.Unpack(unpacked)
    options = platform_config_util.saved_model_adapter_options(
        unpacked.legacy_config, platform_config_util.AdapterSettings())
    self.assertEqual(options.saved_model_tags, ("serve", "extra"))
    self.assertTrue(options.enable_model_warmup)
    self.assertEqual(options.model_warmup_options.num_request_iterations.value,
                     4)
    self.assertIsNone(options.batch_scheduler)
    # An empty legacy config: tags "serve", no warmup (the proto's default).
    options = platform_config_util.saved_model_adapter_options(
        platform_config_util.SessionBundleConfig(),
        platform_config_util.AdapterSettings())
    self.assertEqual(options.saved_model_tags, ("serve",))
    self.assertFalse(options.enable_model_warmup)
    self.assertIsNone(options.session_config)

  def test_batching_parameters_start_a_scheduler(self):
    adapters = platform_config_util.create_platform_adapters(_map(
        _TF_CONFIG % "batching_parameters { max_batch_size { value: 8 } "
        "num_batch_threads { value: 1 } }"))
    self.assertLen(adapters.batch_schedulers, 1)
    adapters.stop()

  def test_invalid_batching_parameters(self):
    with self.assertRaises(status.ServingError) as cm:
      platform_config_util.create_platform_adapters(_map(
          _TF_CONFIG % "batching_parameters { max_batch_size { value: 8 } "
          "allowed_batch_sizes: 4 }"))
    self.assertEqual(cm.exception.code, status.Code.INVALID_ARGUMENT)

  def test_unknown_any_type(self):
    with self.assertRaises(status.ServingError) as cm:
      platform_config_util.create_platform_adapters(_map(
          'platform_configs { key: "p" value { source_adapter_config { '
          'type_url: "type.googleapis.com/no.such.Config" } } }'))
    self.assertEqual(cm.exception.code, status.Code.INTERNAL)
    self.assertEqual(
        cm.exception.message,
        "Unable to find compiled-in proto descriptor of type no.such.Config")

  def test_known_type_without_factory(self):
    with self.assertRaises(status.ServingError) as cm:
      platform_config_util.create_platform_adapters(_map(
          'platform_configs { key: "p" value { source_adapter_config { '
          '[type.googleapis.com/tensorflow.ConfigProto] {} } } }'))
    self.assertEqual(cm.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertStartsWith(
        cm.exception.message,
        "Couldn't find factory for config proto message type "
        "tensorflow.ConfigProto\n")

  def test_tensorflow_platform_config_map(self):
    session_bundle_config = platform_config_util.SessionBundleConfig(
        saved_model_tags=["serve", "gpu"])
    session_bundle_config.batching_parameters.max_batch_size.value = 8
    platform_config_map = platform_config_util.tensorflow_platform_config_map(
        session_bundle_config)
    self.assertEqual(list(platform_config_map.platform_configs),
                     ["tensorflow"])
    unpacked = platform_config_util.SavedModelBundleSourceAdapterConfig()
    self.assertTrue(platform_config_map.platform_configs["tensorflow"]
                    .source_adapter_config.Unpack(unpacked))
    self.assertEqual(unpacked.legacy_config, session_bundle_config)
    # It builds through the same path as a --platform_config_file.
    adapters = platform_config_util.create_platform_adapters(
        platform_config_map)
    self.addCleanup(adapters.stop)
    self.assertEqual(list(adapters.batch_schedulers), ["tensorflow"])
    self.assertEqual(adapters.factories["tensorflow"]().session_config, None)

  def test_empty_map(self):
    with self.assertRaises(status.ServingError):
      platform_config_util.create_platform_adapters(
          platform_config_util.PlatformConfigMap())

  def test_read_file(self):
    path = os.path.join(self.create_tempdir().full_path, "platform.conf")
    with open(path, "w") as f:
      f.write(_TF_CONFIG % "")
    self.assertIn("tensorflow",
                  platform_config_util.read_platform_config_map(path)
                  .platform_configs)
    with open(path, "w") as f:
      f.write("platform_configs { nonsense")
    with self.assertRaises(status.ServingError) as cm:
      platform_config_util.read_platform_config_map(path)
    self.assertEqual(cm.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertStartsWith(
        cm.exception.message,
        f"Invalid protobuf file: '{path}'. Error parsing text-format "
        "tensorflow.serving.PlatformConfigMap: 1:")


if __name__ == "__main__":
  absltest.main()
