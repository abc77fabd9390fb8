"""Runs every curl example of docs/api_rest.md against a real MNIST server.

The tutorial's exporter (example/mnist_saved_model.py) trains and exports the
MNIST model (on the real MNIST files when $MNIST_DATA_DIR has them, else on
synthetic digits); a real ServerCore loads it and HttpRestServer serves it
with the options the doc's server command sets. Then each ```shell block of
the doc runs, in order, with real curl, in one scratch directory (so files a
block writes are there for the next), and its output is compared with the
```json or ```text block that follows it:
  * json: the same structure (keys, list lengths, strings, value types);
    numbers need only be numbers, and one-digit class labels may differ,
    since trained weights differ from run to run.
  * text: the same lines once every number is masked.

  python tensorflow_serving/model_servers/api_rest_doc_test.py --print_outputs
prints what each block printed, for updating the doc.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from absl import flags
from absl.testing import absltest

from tensorflow_serving.config import monitoring_config_pb2
from tensorflow_serving.example import mnist_input_data
from tensorflow_serving.example import mnist_test_util
from tensorflow_serving.model_servers import data_plane
from tensorflow_serving.model_servers import http_server
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.model_servers.test_util import server_core_test_util
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter

_PRINT_OUTPUTS = flags.DEFINE_bool(
    "print_outputs", False, "Print each example's output (to update the doc).")

_DOC_PORT = 8501
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_TRAINING_ITERATIONS = 200


def _doc_path() -> str:
  srcdir = os.environ.get("TEST_SRCDIR")
  if srcdir:
    path = os.path.join(srcdir, os.environ.get("TEST_WORKSPACE", "tf_serving"),
                        "docs", "api_rest.md")
    if os.path.exists(path):
      return path
  root = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.realpath(__file__))))
  return os.path.join(root, "docs", "api_rest.md")


def _mnist_work_dir(scratch: str) -> str:
  """Where the real MNIST files are ($MNIST_DATA_DIR, ../shared/mnist), or
  a directory of synthetic ones (enough for the exporter's 5000-image
  validation split)."""
  for directory in mnist_input_data.search_dirs(scratch):
    if all(os.path.exists(os.path.join(directory, name))
           for name in mnist_input_data.FILES):
      return directory
  return mnist_test_util.write_data_set(os.path.join(scratch, "mnist_data"),
                                        num_train=5500, num_test=100)


def examples(text: str) -> list[tuple[str, str, str]]:
  """(shell script, output kind, expected output) for each shell block."""
  blocks = [(m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]
  found = []
  for i, (kind, body) in enumerate(blocks):
    if kind != "shell":
      continue
    expected_kind, expected = "", ""
    if i + 1 < len(blocks) and blocks[i + 1][0] in ("json", "text"):
      expected_kind, expected = blocks[i + 1]
    found.append((body, expected_kind, expected))
  return found


def _mask_numbers(text: str) -> list[str]:
  return [_NUMBER.sub("#", line.rstrip()) for line in text.strip().splitlines()]


class ApiRestDocTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.scratch = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
    base_path = os.path.join(cls.scratch, "mnist")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run(
        [sys.executable, "-m", "tensorflow_serving.example.mnist_saved_model",
         f"--training_iteration={_TRAINING_ITERATIONS}",
         f"--work_dir={_mnist_work_dir(cls.scratch)}", base_path],
        check=True, env=env, stdout=subprocess.DEVNULL)
    config = server_core_test_util.model_config(
        {"mnist": base_path}, platform=server_core_lib.TENSORFLOW_MODEL_PLATFORM)
    cls.core = server_core_lib.ServerCore.create(server_core_test_util.options(
        config, platform_source_adapters={
            server_core_lib.TENSORFLOW_MODEL_PLATFORM:
                saved_model_bundle_source_adapter.SavedModelBundleSourceAdapter
        }))
    # As the doc's command line: --monitoring_config_file enabling Prometheus.
    monitoring = monitoring_config_pb2.MonitoringConfig()
    monitoring.prometheus_config.enable = True
    cls.server = http_server.HttpRestServer(
        data_plane.DataPlane(cls.core), http_server.HttpRestServer.Options(
            num_threads=4, monitoring_config=monitoring, host="127.0.0.1"))
    cls.port = cls.server.start(0)

  @classmethod
  def tearDownClass(cls):
    cls.server.stop()
    cls.core.stop()
    super().tearDownClass()

  def assertSameShape(self, expected, actual, where="$"):
    if isinstance(expected, dict):
      self.assertIsInstance(actual, dict, where)
      self.assertEqual(sorted(expected), sorted(actual), where)
      for key in expected:
        self.assertSameShape(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
      self.assertIsInstance(actual, list, where)
      self.assertLen(actual, len(expected), where)
      for i, (e, a) in enumerate(zip(expected, actual)):
        self.assertSameShape(e, a, f"{where}[{i}]")
    elif isinstance(expected, bool) or expected is None:
      self.assertEqual(expected, actual, where)
    elif isinstance(expected, (int, float)):
      self.assertIsInstance(actual, (int, float), where)
      self.assertNotIsInstance(actual, bool, where)
    elif re.fullmatch(r"\d", expected):
      self.assertRegex(actual, r"^\d$", where)  # A class label.
    else:
      self.assertEqual(expected, actual, where)

  def test_every_curl_example_runs_as_documented(self):
    self.assertIsNotNone(shutil.which("curl"), "the doc's examples need curl")
    with open(_doc_path()) as f:
      doc = f.read()
    cases = examples(doc)
    self.assertGreaterEqual(len(cases), 10)
    workdir = os.path.join(self.scratch, "examples")
    os.makedirs(workdir)
    for script, kind, expected in cases:
      self.assertIn("curl", script)
      self.assertIn(f"localhost:{_DOC_PORT}", script)
      run = subprocess.run(
          ["bash", "-euo", "pipefail", "-c",
           script.replace(f"localhost:{_DOC_PORT}", f"localhost:{self.port}")],
          cwd=workdir, capture_output=True, text=True, timeout=60)
      if _PRINT_OUTPUTS.value:
        print(f"$ {script.strip()}\n{run.stdout}\n{run.stderr}")
      self.assertEqual(run.returncode, 0, f"{script}\n{run.stderr}")
      self.assertTrue(kind, f"no output block after:\n{script}")
      with self.subTest(script=script.strip()):
        if kind == "json":
          self.assertSameShape(json.loads(expected), json.loads(run.stdout))
        else:
          self.assertEqual(_mask_numbers(expected), _mask_numbers(run.stdout))


if __name__ == "__main__":
  absltest.main()
