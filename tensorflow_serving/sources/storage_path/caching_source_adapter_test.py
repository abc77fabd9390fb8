"""Tests for CachingSourceAdapter: remote versions load from a local copy.

The "remote" store here is a local directory that the adapter is told to
treat as remote, so the test needs no emulator; the copy, the wrapped
platform adapter and its Loader are real.
"""

import os

from absl.testing import absltest

from tensorflow_serving.core import servable_data
from tensorflow_serving.core import servable_id
from tensorflow_serving.core import simple_loader
from tensorflow_serving.core import source_adapter
from tensorflow_serving.sources.storage_path import caching_source_adapter
from tensorflow_serving.sources.storage_path import file_system
from tensorflow_serving.sources.storage_path import model_cache
from tensorflow_serving.util import status

ServableId = servable_id.ServableId


class _ReadFileAdapter(source_adapter.SourceAdapter):
  """A platform adapter: the servable is (path, contents of path/data)."""

  def __init__(self):
    super().__init__()
    self.paths = []

  def convert(self, servable_id_, data):
    self.paths.append(data)

    def load():
      with open(os.path.join(data, "data"), "rb") as f:
        contents = f.read()
      if contents == b"corrupt":
        raise status.invalid_argument("corrupt model")
      return (data, contents)

    return simple_loader.SimpleLoader(load)


class CachingSourceAdapterTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.remote = self.create_tempdir().full_path
    self.cache = model_cache.ModelCache(
        file_system.LocalFileSystem(),
        model_cache.ModelCache.Options(
            cache_dir=self.create_tempdir().full_path))
    self.addCleanup(self.cache.close)
    self.inner = _ReadFileAdapter()
    self.adapter = caching_source_adapter.CachingSourceAdapter(
        self.inner, self.cache,
        needs_local_copy=lambda path: path.startswith(self.remote))

  def write(self, version, data):
    os.makedirs(os.path.join(self.remote, str(version)), exist_ok=True)
    with open(os.path.join(self.remote, str(version), "data"), "wb") as f:
      f.write(data)
    return os.path.join(self.remote, str(version))

  def test_remote_version_loads_from_copy_and_unload_removes_it(self):
    loader = self.adapter.convert(ServableId("m", 1), self.write(1, b"hello"))
    self.assertEqual(self.inner.paths, [])  # convert() copies nothing.
    loader.load()
    local, contents = loader.servable()
    self.assertEqual(contents, b"hello")
    self.assertFalse(local.startswith(self.remote))
    self.assertTrue(local.startswith(self.cache.cache_dir))
    self.assertEqual(self.inner.paths, [local])
    loader.unload()
    self.assertFalse(os.path.exists(local))

  def test_failed_load_removes_copy_and_keeps_error(self):
    loader = self.adapter.convert(ServableId("m", 2),
                                  self.write(2, b"corrupt"))
    with self.assertRaises(status.ServingError) as cm:
      loader.load()
    self.assertEqual(cm.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertFalse(os.path.exists(self.inner.paths[0]))

  def test_local_paths_go_straight_to_the_platform(self):
    local = self.create_tempdir().full_path
    with open(os.path.join(local, "data"), "wb") as f:
      f.write(b"local")
    [adapted] = self.adapter.adapt(
        "m", [servable_data.ServableData.ok(ServableId("m", 3), local)])
    adapted.data.load()
    self.assertEqual(adapted.data.servable(), (local, b"local"))


if __name__ == "__main__":
  absltest.main()
