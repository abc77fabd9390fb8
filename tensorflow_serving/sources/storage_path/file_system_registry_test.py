"""Tests for file_system_registry: the scheme picks the file system."""

from absl.testing import absltest

from tensorflow_serving.sources.storage_path import file_system
from tensorflow_serving.sources.storage_path import file_system_registry
from tensorflow_serving.sources.storage_path import gcs_file_system
from tensorflow_serving.sources.storage_path import s3_file_system


class FileSystemRegistryTest(absltest.TestCase):

  def test_dispatch_by_scheme(self):
    local = file_system.LocalFileSystem()
    fs = file_system_registry.SchemeFileSystem(
        file_system_registry.SchemeFileSystem.Options(local=local))
    self.assertIsInstance(fs.file_system_for("s3://b/m"),
                          s3_file_system.S3FileSystem)
    self.assertIsInstance(fs.file_system_for("gs://b/m"),
                          gcs_file_system.GcsFileSystem)
    self.assertIs(fs.file_system_for("/models/m"), local)
    self.assertIs(fs.file_system_for("s3://b/x"), fs.file_system_for("s3://c"))
    self.assertIsInstance(
        file_system_registry.SchemeFileSystem().file_system_for("hdfs://n/m"),
        file_system.GFileFileSystem)

  def test_needs_local_copy(self):
    self.assertTrue(file_system_registry.needs_local_copy("s3://b/m/1"))
    self.assertTrue(file_system_registry.needs_local_copy("gs://b/m/1"))
    self.assertFalse(file_system_registry.needs_local_copy("/tmp/m/1"))
    self.assertFalse(file_system_registry.needs_local_copy("hdfs://n/m/1"))

  def test_local_operations_pass_through(self):
    base = self.create_tempdir()
    base.create_file("1/saved_model.pb", "x")
    fs = file_system_registry.SchemeFileSystem(
        file_system_registry.SchemeFileSystem.Options(
            local=file_system.LocalFileSystem()))
    self.assertTrue(fs.exists(base.full_path))
    self.assertEqual(fs.list_children(base.full_path), ["1"])
    self.assertEqual(sorted(fs.list_tree(base.full_path)),
                     ["1/", "1/saved_model.pb"])


if __name__ == "__main__":
  absltest.main()
