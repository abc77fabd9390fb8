"""Runs the curl examples of a Markdown doc and checks what they print.

Docs tests (api_rest_doc_test, api_v2_doc_test) serve the tutorial's model
(export_mnist), then call run_doc_examples():
each ```shell block of the doc runs, in order, with bash (-euo pipefail) in
one scratch directory (so files a block writes are there for the next), and
its output is compared with the ```json or ```text block that follows it:
  * json: the same structure (keys, list lengths, strings, value types);
    numbers need only be numbers, and one-digit class labels may differ,
    since trained weights differ from run to run.
  * text: the same lines once every number is masked.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any, Mapping

from absl.testing import absltest

from tensorflow_serving.example import mnist_input_data
from tensorflow_serving.example import mnist_test_util

_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def doc_path(name: str) -> str:
  """The path of docs/<name>, in the runfiles or the source tree."""
  srcdir = os.environ.get("TEST_SRCDIR")
  if srcdir:
    path = os.path.join(srcdir, os.environ.get("TEST_WORKSPACE", "tf_serving"),
                        "docs", name)
    if os.path.exists(path):
      return path
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.realpath(__file__)))))
  return os.path.join(root, "docs", name)


def export_mnist(scratch: str, base_path: str,
                 training_iterations: int = 200) -> None:
  """Trains and exports the tutorial's MNIST model to base_path/1.

  Runs the tutorial's own exporter (example/mnist_saved_model; the test
  needs it as data) on the real MNIST files where mnist_input_data finds
  them ($MNIST_DATA_DIR, ...), else on synthetic digits written under
  `scratch` (enough for the exporter's 5000-image validation split).
  """
  work_dir = next(
      (d for d in mnist_input_data.search_dirs(scratch)
       if all(os.path.exists(os.path.join(d, name))
              for name in mnist_input_data.FILES)), None)
  if work_dir is None:
    work_dir = mnist_test_util.write_data_set(
        os.path.join(scratch, "mnist_data"), num_train=5500, num_test=100)
  subprocess.run(
      [sys.executable, "-m", "tensorflow_serving.example.mnist_saved_model",
       f"--training_iteration={training_iterations}", f"--work_dir={work_dir}",
       base_path],
      check=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
      stdout=subprocess.DEVNULL)


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


def mask_numbers(text: str) -> list[str]:
  return [_NUMBER.sub("#", line.rstrip()) for line in text.strip().splitlines()]


def assert_same_shape(test: absltest.TestCase, expected: Any, actual: Any,
                      where: str = "$") -> None:
  """Same structure; numbers only need to be numbers (see the module doc)."""
  if isinstance(expected, dict):
    test.assertIsInstance(actual, dict, where)
    test.assertEqual(sorted(expected), sorted(actual), where)
    for key in expected:
      assert_same_shape(test, expected[key], actual[key], f"{where}.{key}")
  elif isinstance(expected, list):
    test.assertIsInstance(actual, list, where)
    test.assertLen(actual, len(expected), where)
    for i, (e, a) in enumerate(zip(expected, actual)):
      assert_same_shape(test, e, a, f"{where}[{i}]")
  elif isinstance(expected, bool) or expected is None:
    test.assertEqual(expected, actual, where)
  elif isinstance(expected, (int, float)):
    test.assertIsInstance(actual, (int, float), where)
    test.assertNotIsInstance(actual, bool, where)
  elif re.fullmatch(r"\d", expected):
    test.assertRegex(actual, r"^\d$", where)  # A class label.
  else:
    test.assertEqual(expected, actual, where)


def run_doc_examples(test: absltest.TestCase, doc: str,
                     replacements: Mapping[str, str], workdir: str,
                     print_outputs: bool = False,
                     min_examples: int = 1, required: str = "") -> None:
  """Runs every shell block of `doc` and checks its output.

  Args:
    test: the test case (for its assertions).
    doc: the Markdown text.
    replacements: text -> what it becomes before a block runs (the doc's
      "localhost:8501" -> the test server's address, paths, ...).
    workdir: where the blocks run.
    print_outputs: print each block's output (to update the doc).
    min_examples: at least this many shell blocks must be found.
    required: text every block must contain (the documented address).
  """
  test.assertIsNotNone(shutil.which("curl"), "the doc's examples need curl")
  cases = examples(doc)
  test.assertGreaterEqual(len(cases), min_examples)
  os.makedirs(workdir, exist_ok=True)
  for script, kind, expected in cases:
    test.assertIn("curl", script)
    test.assertIn(required, script)
    command = script
    for old, new in replacements.items():
      command = command.replace(old, new)
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", command],
                         cwd=workdir, capture_output=True, text=True,
                         timeout=120)
    if print_outputs:
      print(f"$ {script.strip()}\n{run.stdout}\n{run.stderr}")
    test.assertEqual(run.returncode, 0, f"{script}\n{run.stderr}")
    test.assertTrue(kind, f"no output block after:\n{script}")
    with test.subTest(script=script.strip()):
      if kind == "json":
        assert_same_shape(test, json.loads(expected), json.loads(run.stdout))
      else:
        test.assertEqual(mask_numbers(expected), mask_numbers(run.stdout))
