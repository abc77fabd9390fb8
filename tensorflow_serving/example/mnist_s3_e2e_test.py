"""The tutorial's model served from S3 (moto's server) answers as from disk.

As a user would after `aws s3 cp --recursive`: mnist_saved_model exports
the tutorial's model, the test uploads it to an S3 emulator started on a
loopback port, and two tensorflow_model_server processes serve it, one from
the local directory and one from s3://. mnist_client measures the error
rate over 1000 test images against each: the same model must give exactly
the same error rate, whichever store it was read from.

Needs MNIST_DATA_DIR (see mnist_e2e_test.py).
"""

import os
import re
import subprocess
import tempfile

from absl.testing import absltest

from tensorflow_serving.example import mnist_input_data
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.sources.storage_path.test_util import object_store_emulators

_TIMEOUT = 600.0
_NUM_TESTS = 1000
# Fewer than the tutorial's 1000 steps: the comparison needs a model, not
# the best one, and training is most of this test's time.
_TRAINING_ITERATIONS = 300


def _runfile(package: str, name: str) -> str:
  root = os.path.join(os.environ["TEST_SRCDIR"],
                      os.environ.get("TEST_WORKSPACE", "tf_serving"))
  return os.path.join(root, package, name)


class MnistFromS3Test(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.data_dir = os.environ.get(mnist_input_data.DATA_DIR_ENV, "")
    if not self.data_dir:
      self.fail(f"{mnist_input_data.DATA_DIR_ENV} is not set (see "
                "tools/run_tests.sh)")
    self.tmp = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())

  def run_binary(self, argv):
    result = subprocess.run(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            timeout=_TIMEOUT, check=False)
    self.assertEqual(result.returncode, 0,
                     f"{argv}\n{result.stdout}\n{result.stderr[-4000:]}")
    return result.stdout

  def error_rate(self, address: str) -> float:
    stdout = self.run_binary([
        _runfile("tensorflow_serving/example", "mnist_client"),
        f"--num_tests={_NUM_TESTS}", f"--server={address}",
        f"--work_dir={self.data_dir}"])
    match = re.search(r"^Inference error rate: ([0-9.]+)%$", stdout, re.M)
    self.assertIsNotNone(match, stdout)
    return float(match.group(1))

  def test_same_error_rate_from_s3_as_from_disk(self):
    model_base = os.path.join(self.tmp, "mnist_model")
    self.run_binary([
        _runfile("tensorflow_serving/example", "mnist_saved_model"),
        f"--training_iteration={_TRAINING_ITERATIONS}", "--model_version=1",
        f"--work_dir={self.data_dir}", model_base])
    s3 = object_store_emulators.S3Emulator()
    s3.start()
    self.addCleanup(s3.stop)
    client = s3.client()
    client.create_bucket(Bucket="tutorial")
    object_store_emulators.upload_tree(
        lambda key, path: client.upload_file(path, "tutorial", key),
        os.path.join(model_base, "1"), "models/mnist/1")

    servers = {}
    for where, base in (("disk", model_base),
                        ("s3", "s3://tutorial/models/mnist")):
      port = model_server_process.free_port()
      server = model_server_process.ModelServerProcess(
          [f"--port={port}", "--model_name=mnist",
           f"--model_base_path={base}",
           f"--model_cache_dir={os.path.join(self.tmp, 'cache')}"],
          env=s3.env())
      self.addCleanup(server.kill)
      servers[where] = (server, f"localhost:{port}")
    for server, _ in servers.values():
      server.start()
    rates = {where: self.error_rate(address)
             for where, (_, address) in servers.items()}
    print(f"Inference error rate over {_NUM_TESTS} images: {rates}")
    self.assertEqual(rates["s3"], rates["disk"])
    self.assertLess(rates["s3"], 20.0)
    self.assertIn("Downloaded s3://tutorial/models/mnist/1",
                  servers["s3"][0].log())
    for server, _ in servers.values():
      self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
  absltest.main()
