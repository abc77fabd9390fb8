"""Tests for util/proto_text_file.py: one reader, one error shape."""

from absl.testing import absltest

from tensorflow_serving.config import monitoring_config_pb2
from tensorflow_serving.util import proto_text_file
from tensorflow_serving.util import status

MonitoringConfig = monitoring_config_pb2.MonitoringConfig


class ProtoTextFileTest(absltest.TestCase):

  def test_reads_a_file(self):
    path = self.create_tempfile(
        content='prometheus_config { enable: true path: "/m" }').full_path
    config = proto_text_file.read_text_proto_file(path, MonitoringConfig())
    self.assertTrue(config.prometheus_config.enable)
    self.assertEqual(config.prometheus_config.path, "/m")

  def test_parse_error_names_file_type_line_and_column(self):
    path = self.create_tempfile(
        content="prometheus_config {\n  nope: 1\n}\n").full_path
    with self.assertLogs(level="ERROR") as logs:
      with self.assertRaises(status.ServingError) as cm:
        proto_text_file.read_text_proto_file(path, MonitoringConfig())
    self.assertEqual(cm.exception.code, status.Code.INVALID_ARGUMENT)
    sentence = ("Error parsing text-format tensorflow.serving.MonitoringConfig:"
                " 2:3: Message type \"tensorflow.serving.PrometheusConfig\" "
                "has no field named \"nope\".")
    self.assertEqual(cm.exception.message,
                     f"Invalid protobuf file: '{path}'. {sentence}")
    self.assertIn(sentence, "\n".join(logs.output))

  def test_parse_without_a_file(self):
    with self.assertRaises(status.ServingError) as cm:
      proto_text_file.parse_text_proto("prometheus_config {",
                                       MonitoringConfig())
    self.assertStartsWith(
        cm.exception.message,
        "Error parsing text-format tensorflow.serving.MonitoringConfig: 1:")

  def test_not_utf8(self):
    path = self.create_tempfile(content=b"\xff\xfe").full_path
    with self.assertRaises(status.ServingError) as cm:
      proto_text_file.read_text_proto_file(path, MonitoringConfig())
    self.assertEqual(cm.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertStartsWith(cm.exception.message,
                          f"Invalid protobuf file: '{path}'. Error parsing")

  def test_missing_file(self):
    with self.assertRaises(status.ServingError) as cm:
      proto_text_file.read_text_proto_file("/no/such.config",
                                           MonitoringConfig())
    self.assertEqual(cm.exception.code, status.Code.NOT_FOUND)
    self.assertStartsWith(cm.exception.message,
                          "Failed to read /no/such.config: ")

  def test_other_file_system(self):
    files = {"mem://a": b"prometheus_config { enable: true }"}

    def read_file(path):
      if path not in files:
        raise status.not_found(f"{path}; gone")
      return files[path]

    config = proto_text_file.read_text_proto_file("mem://a", MonitoringConfig(),
                                                  read_file)
    self.assertTrue(config.prometheus_config.enable)
    with self.assertRaises(status.ServingError) as cm:
      proto_text_file.read_text_proto_file("mem://b", MonitoringConfig(),
                                           read_file)
    self.assertEqual(cm.exception.code, status.Code.NOT_FOUND)


if __name__ == "__main__":
  absltest.main()
