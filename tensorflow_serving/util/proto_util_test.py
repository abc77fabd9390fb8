"""Tests for util/proto_util.py."""

import os

from absl.testing import absltest

from tensorflow_serving.config import model_server_config_pb2
from tensorflow_serving.util import proto_util
from tensorflow_serving.util import status

ModelServerConfig = model_server_config_pb2.ModelServerConfig


class ProtoUtilTest(absltest.TestCase):

  def test_parses(self):
    path = self.create_tempfile(
        content='model_config_list { config { name: "m" } }').full_path
    config = proto_util.parse_proto_text_file(path, ModelServerConfig())
    self.assertEqual(config.model_config_list.config[0].name, "m")

  def test_parse_error_is_upstreams_text_with_line_and_column(self):
    path = self.create_tempfile(
        content='model_config_list {\n  config { nme: "m" }\n}\n').full_path
    with self.assertRaises(status.ServingError) as cm:
      proto_util.parse_proto_text_file(path, ModelServerConfig())
    self.assertEqual(cm.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertEqual(
        cm.exception.message,
        f"Invalid protobuf file: '{path}'. Error parsing text-format "
        "tensorflow.serving.ModelServerConfig: 2:12: Message type "
        "\"tensorflow.serving.ModelConfig\" has no field named \"nme\".")

  def test_not_utf8(self):
    path = self.create_tempfile().full_path
    with open(path, "wb") as f:
      f.write(b"\xff\xfe")
    with self.assertRaises(status.ServingError) as cm:
      proto_util.parse_proto_text_file(path, ModelServerConfig())
    self.assertEqual(cm.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertStartsWith(
        cm.exception.message,
        f"Invalid protobuf file: '{path}'. Error parsing text-format "
        "tensorflow.serving.ModelServerConfig: ")

  def test_missing_file_is_not_found(self):
    path = os.path.join(self.create_tempdir().full_path, "nope.pbtxt")
    with self.assertRaises(status.ServingError) as cm:
      proto_util.parse_proto_text_file(path, ModelServerConfig())
    self.assertEqual(cm.exception.code, status.Code.NOT_FOUND)
    self.assertEqual(cm.exception.message,
                     f"{path}; No such file or directory")

  def test_directory_is_not_a_file(self):
    path = self.create_tempdir().full_path
    with self.assertRaises(status.ServingError) as cm:
      proto_util.read_file(path)
    self.assertEqual(cm.exception.code, status.Code.FAILED_PRECONDITION)
    self.assertStartsWith(cm.exception.message, f"{path}; ")


if __name__ == "__main__":
  absltest.main()
