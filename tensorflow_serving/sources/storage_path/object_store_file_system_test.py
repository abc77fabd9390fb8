"""Tests for ObjectStoreFileSystem's URL helpers and its exists/list_tree.

The backends' own tests run them against real emulators; here a dict of
keys stands in for a bucket, so that directory inference and the mapping of
a missing bucket can be checked key by key.
"""

from absl.testing import absltest

from tensorflow_serving.sources.storage_path import file_system as fs_lib
from tensorflow_serving.sources.storage_path import object_store_file_system as object_store
from tensorflow_serving.util import status


class _DictStore(object_store.ObjectStoreFileSystem):
  """One bucket, "b", held in a dict of key -> size."""

  def __init__(self, keys: dict[str, int]) -> None:
    super().__init__()
    self.keys = keys
    self.clients_created = 0

  def _create_client(self, url):
    self.clients_created += 1
    return self.keys

  def _error(self, url, error):
    if isinstance(error, KeyError):
      return status.not_found(f"{url} not found")
    return status.unknown(f"{url}: {error}")

  def _bucket_exists(self, client, bucket):
    if bucket != "b":
      raise KeyError(bucket)
    return True

  def _object_exists(self, client, bucket, key):
    self._bucket_exists(client, bucket)
    return key in client

  def _prefix_exists(self, client, bucket, prefix):
    self._bucket_exists(client, bucket)
    return any(k.startswith(prefix) for k in client)

  def _list_objects(self, client, bucket, prefix):
    self._bucket_exists(client, bucket)
    for key, size in sorted(client.items()):
      if key.startswith(prefix):
        yield key, fs_lib.FileStat(size, etag=str(size))

  def list_children(self, path):
    raise NotImplementedError

  def read_file(self, path):
    raise NotImplementedError

  def download_file(self, path, local_path, etag=""):
    raise NotImplementedError


class HelpersTest(absltest.TestCase):

  def test_split_url(self):
    self.assertEqual(object_store.split_url("s3://b/a/b"), ("b", "a/b"))
    self.assertEqual(object_store.split_url("gs://b"), ("b", ""))
    self.assertEqual(object_store.split_url("gs://b/"), ("b", ""))

  def test_dir_prefix(self):
    self.assertEqual(object_store.dir_prefix("a/b"), "a/b/")
    self.assertEqual(object_store.dir_prefix("/a/b/"), "a/b/")
    self.assertEqual(object_store.dir_prefix(""), "")

  def test_env_flag(self):
    for on in ("1", "true", " TRUE ", "yes", "on"):
      self.assertTrue(object_store.env_flag(on), on)
    for off in (None, "", "0", "false", "no", "nope"):
      self.assertFalse(object_store.env_flag(off), off)


class ObjectStoreFileSystemTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.fs = _DictStore({"m/1/saved_model.pb": 2, "m/1/variables/v.index": 5,
                          "m/2/": 0, "m/README": 2})

  def test_exists(self):
    self.assertTrue(self.fs.exists("s3://b"))
    self.assertTrue(self.fs.exists("s3://b/m"))
    self.assertTrue(self.fs.exists("s3://b/m/"))
    self.assertTrue(self.fs.exists("s3://b/m/README"))
    self.assertTrue(self.fs.exists("s3://b/m/2"))  # A placeholder.
    self.assertFalse(self.fs.exists("s3://b/m/1/saved"))  # Not a prefix.
    self.assertFalse(self.fs.exists("s3://other/m"))  # No such bucket.
    self.assertEqual(self.fs.clients_created, 1)

  def test_list_tree_infers_directories(self):
    tree = self.fs.list_tree("s3://b/m")
    self.assertEqual(sorted(tree), ["1/", "1/saved_model.pb", "1/variables/",
                                    "1/variables/v.index", "2/", "README"])
    self.assertTrue(tree["1/variables/"].is_dir)
    self.assertEqual(tree["1/variables/v.index"], fs_lib.FileStat(5, etag="5"))
    self.assertEqual(self.fs.list_tree("s3://b/m/2"), {})
    self.assertEqual(self.fs.list_tree("s3://other/m"), {})

  def test_errors_name_the_url(self):
    self.fs.keys = None  # Not what _list_objects can iterate.
    self.fs._client = None
    with self.assertRaises(status.ServingError) as cm:
      self.fs.list_tree("s3://b/m")
    self.assertEqual(cm.exception.code, status.Code.UNKNOWN)
    self.assertIn("s3://b/m", cm.exception.message)


if __name__ == "__main__":
  absltest.main()
