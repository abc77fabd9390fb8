"""Tests for ModelCache: copies from a real S3 emulator and from local disk.

A torn copy is produced for real: a writer changes the version's files
while the cache downloads them (at the moment a wrapped LocalFileSystem
finishes copying one file), and the cache must refuse the copy.
"""

import os
from unittest import mock

from absl.testing import absltest

from tensorflow_serving.core import servable_id
from tensorflow_serving.sources.storage_path import file_system
from tensorflow_serving.sources.storage_path import file_system_registry
from tensorflow_serving.sources.storage_path import model_cache
from tensorflow_serving.sources.storage_path.test_util import object_store_emulators
from tensorflow_serving.util import status

ServableId = servable_id.ServableId


class _WriterDuringDownload(file_system.LocalFileSystem):
  """The local file system, with `during_download()` run after each copy."""

  def __init__(self, during_download):
    self.during_download = during_download

  def download_file(self, path, local_path, etag=""):
    super().download_file(path, local_path, etag)
    self.during_download(path)


class ModelCacheTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.remote = self.create_tempdir().full_path
    self.cache_dir = self.create_tempdir().full_path
    for rel, data in (("1/saved_model.pb", b"pb"),
                      ("1/variables/variables.index", b"index"),
                      ("1/variables/variables.data-00000-of-00001", b"d" * 999),
                      ("1/assets.extra/tf_serving_warmup_requests", b"w")):
      path = os.path.join(self.remote, rel)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path, "wb") as f:
        f.write(data)
    os.makedirs(os.path.join(self.remote, "1", "assets"))  # Empty dir.

  def cache(self, fs=None, threads=2):
    cache = model_cache.ModelCache(
        fs or file_system.LocalFileSystem(),
        model_cache.ModelCache.Options(cache_dir=self.cache_dir,
                                       download_threads=threads))
    self.addCleanup(cache.close)
    return cache

  def assert_same_tree(self, a, b):
    fs = file_system.LocalFileSystem()
    self.assertEqual({k: v.size for k, v in fs.list_tree(a).items()},
                     {k: v.size for k, v in fs.list_tree(b).items()})

  def test_download_remove_close(self):
    cache = self.cache()
    local = cache.download(ServableId("m", 1), os.path.join(self.remote, "1"))
    self.assertTrue(local.startswith(self.cache_dir))
    self.assertEqual(os.path.basename(local), "1")
    self.assert_same_tree(local, os.path.join(self.remote, "1"))
    self.assertTrue(os.path.isdir(os.path.join(local, "assets")))
    # Nothing else is left: no staging directory.
    self.assertEqual(os.listdir(os.path.dirname(local)), ["1"])
    cache.remove(local)
    self.assertFalse(os.path.exists(local))
    cache.close()
    self.assertEqual(os.listdir(self.cache_dir), [])

  def test_torn_download_is_refused(self):
    target = os.path.join(self.remote, "1", "saved_model.pb")

    rewritten = []

    def rewrite(path):
      if path.endswith("variables.index") and not rewritten:
        rewritten.append(path)
        with open(target, "wb") as f:
          f.write(b"a newer, longer saved_model.pb")

    cache = self.cache(_WriterDuringDownload(rewrite), threads=1)
    with self.assertRaises(status.ServingError) as cm:
      cache.download(ServableId("m", 1), os.path.join(self.remote, "1"))
    self.assertEqual(cm.exception.code, status.Code.ABORTED)
    self.assertIn("changed while it was downloaded", cm.exception.message)
    model_dir = os.path.join(cache._get_process_dir(), "m")  # pylint: disable=protected-access
    self.assertEqual(os.listdir(model_dir), [])  # Staging copy removed.
    # The next attempt (the retry) copies the new content.
    cache.download(ServableId("m", 1), os.path.join(self.remote, "1"))

  def test_vanished_file_aborts(self):
    def remove(path):
      if path.endswith("saved_model.pb"):
        os.remove(os.path.join(self.remote, "1", "variables",
                               "variables.index"))

    cache = self.cache(_WriterDuringDownload(remove), threads=1)
    with self.assertRaises(status.ServingError) as cm:
      cache.download(ServableId("m", 1), os.path.join(self.remote, "1"))
    self.assertEqual(cm.exception.code, status.Code.ABORTED)

  def test_empty_version_aborts(self):
    with self.assertRaises(status.ServingError) as cm:
      self.cache().download(ServableId("m", 9),
                            os.path.join(self.remote, "9"))
    self.assertEqual(cm.exception.code, status.Code.ABORTED)

  def test_stale_process_dirs_removed(self):
    dead = os.path.join(self.cache_dir, "pid999999999-abc")
    mine = os.path.join(self.cache_dir, f"pid{os.getpid()}-old")
    alive = os.path.join(self.cache_dir, f"pid{os.getppid()}-xyz")
    other = os.path.join(self.cache_dir, "not-ours")
    for d in (dead, mine, alive, other):
      os.makedirs(d)
    self.cache().download(ServableId("m", 1), os.path.join(self.remote, "1"))
    self.assertFalse(os.path.exists(dead))
    self.assertFalse(os.path.exists(mine))
    self.assertTrue(os.path.exists(alive))
    self.assertTrue(os.path.exists(other))

  def test_download_from_s3_emulator(self):
    emulator = object_store_emulators.S3Emulator()
    emulator.start()
    self.addCleanup(emulator.stop)
    self.enter_context(mock.patch.dict(os.environ))
    os.environ.update(emulator.env())
    client = emulator.client()
    client.create_bucket(Bucket="cache-test")
    object_store_emulators.upload_tree(
        lambda key, path: client.upload_file(path, "cache-test", key),
        os.path.join(self.remote, "1"), "m/1")
    fs = file_system_registry.SchemeFileSystem()
    local = self.cache(fs, threads=4).download(ServableId("m", 1),
                                               "s3://cache-test/m/1")
    # The empty assets/ directory exists only locally (no object).
    os.rmdir(os.path.join(self.remote, "1", "assets"))
    self.assert_same_tree(local, os.path.join(self.remote, "1"))
    with open(os.path.join(local, "saved_model.pb"), "rb") as f:
      self.assertEqual(f.read(), b"pb")


if __name__ == "__main__":
  absltest.main()
