"""Keeps STYLE.md's package layering true: which package may import which.

The servable manager must stay free of TensorFlow, numpy, gRPC and HTTP, the
examples must stay pure clients, and so on (STYLE.md, "Which package may
import which"). Reviews miss a stray import; this test does not. It parses
every .py file under tensorflow_serving/ with `ast` (nothing is imported or
run), collects its imports (also relative ones and
`importlib.import_module("literal")`), and checks each against _RULES.

Finding the files: a Bazel glob cannot reach into subpackages that have their
own BUILD file, so the test follows its own source file (a symlink in the
runfiles tree) back to the workspace and walks tensorflow_serving/ there. The
BUILD target is tagged "external" so that Bazel never serves a cached result
after some other file changed. The test fails if it finds no files, so it
cannot pass by scanning nothing.
"""

import ast
import dataclasses
import os
import re
import sys
from typing import Dict, FrozenSet, Iterator, List, Tuple

from absl.testing import absltest

# --- Third-party groups ------------------------------------------------------
# Module prefix -> group; the longest matching prefix wins. Whatever is not
# listed is "stdlib" if it is in the standard library and "other" otherwise.
# Generated TensorFlow protos (tensorflow.**._pb2) form the "tf_protos" group.
_GROUPS: Dict[str, str] = {
    "google.protobuf": "protobuf",
    "numpy": "numpy",
    "ml_dtypes": "numpy",  # numpy dtypes (bfloat16 ...)
    # JSON parsers in C, for the JSON codec (util/json_tensor).
    "simdjson": "json",
    "orjson": "json",
    "tensorflow": "tensorflow",
    "keras": "tensorflow",
    "tf_keras": "tensorflow",
    "grpc": "grpc",
    "grpc_tools": "grpc",
    "grpc_health": "grpc",
    "grpc_reflection": "grpc",
    "grpc_status": "grpc",
    # HTTP servers and clients, standard library ones included.
    "http.server": "http",
    "http.client": "http",
    "urllib.request": "http",
    "socketserver": "http",
    "wsgiref": "http",
    "xmlrpc": "http",
    "aiohttp": "http",
    "requests": "http",
    "httpx": "http",
    "urllib3": "http",
    "tornado": "http",
    "flask": "http",
    "fastapi": "http",
    "starlette": "http",
    "uvicorn": "http",
    "werkzeug": "http",
    "gunicorn": "http",
    # Command-line parsing: only programs parse flags.
    "absl.flags": "flags",
    "absl.app": "flags",
    "argparse": "flags",
    "getopt": "flags",
    "optparse": "flags",
    # Test libraries.
    "absl.testing": "test",
    "unittest": "test",
    "portpicker": "test",
    "hypothesis": "test",
    # absl's logging is as harmless as the standard library's.
    "absl.logging": "stdlib",
    # Object-store clients: only the storage-path file systems use them.
    "boto3": "object_store",
    "botocore": "object_store",
    "s3transfer": "object_store",
    "google.cloud": "object_store",
    "google.auth": "object_store",
    "google.api_core": "object_store",
    "google.resumable_media": "object_store",
}


@dataclasses.dataclass(frozen=True)
class Rule:
  """What the files of one package may import.

  Both fields are space-separated words; "*" means anything. Our packages may
  carry a qualifier: "apis:protos" allows only the generated *_pb2 modules of
  apis/, "util:codecs" only the codec modules of util/. A group may carry
  ":codecs" too: allowed only in codec modules (see _is_codec).
  Everyone may use the standard library (less the "http" and "flags"
  groups) and absl.logging.
  """
  ours: str
  groups: str

  def words(self, which: str) -> FrozenSet[str]:
    return frozenset(getattr(self, which).split())


# --- The table (STYLE.md, "Which package may import which") ------------------
# Row key: the first directory under tensorflow_serving/ ("" for files
# directly in it). Read a row as "files of <package> may import <our
# packages> and <third-party groups>".
# pylint: disable=line-too-long
_RULES: Dict[str, Rule] = {
    #                our packages                                               third-party groups
    "":              Rule("",                                                   ""),
    "apis":          Rule("apis config",                                        "protobuf tf_protos"),
    "config":        Rule("apis config",                                        "protobuf tf_protos"),
    "util":          Rule("util apis config",                                   "protobuf tf_protos numpy:codecs json:codecs"),
    "core":          Rule("core util apis:protos config:protos",                "protobuf"),
    "sources":       Rule("sources core util config",                           "protobuf tensorflow tf_protos object_store"),
    "batching":      Rule("batching util",                                      ""),
    "servables":     Rule("servables core util sources batching apis config",   "protobuf tf_protos tensorflow numpy other"),
    "model_servers": Rule("*",                                                  "*"),
    "example":       Rule("example apis config util:codecs",                    "*"),
    "tools":         Rule("*",                                                  "*"),  # developer scripts
}

# Test code (*_test.py, *test_util.py, test_util/, testdata/) may import what
# its package may, plus these ("*" row: every package's tests).
_TEST_RULES: Dict[str, Rule] = {
    #                our packages                                               third-party groups
    "*":             Rule("",                                                   "test"),
    "util":          Rule("",                                                   "test tensorflow"),  # codec tests compare with TF
    "example":       Rule("*",                                                  "*"),  # end-to-end tests
    "model_servers": Rule("*",                                                  "*"),  # end-to-end tests
}
# pylint: enable=line-too-long

_OUR_PACKAGE = "tensorflow_serving"


def _is_codec(module_or_path: str) -> bool:
  """Tensor/JSON codec modules: util/*codec*.py and util/json_tensor*.py
  (json_tensor.py and its tests)."""
  stem = re.split(r"[./]", module_or_path.removesuffix(".py"))[-1]
  return "codec" in stem or stem.startswith("json_tensor")


def _is_test_code(parts: Tuple[str, ...]) -> bool:
  """Whether a module (path parts, no .py) is test code or a test helper."""
  stem = parts[-1] if parts else ""
  return (stem.endswith("_test") or stem.endswith("test_util") or
          "test_util" in parts[:-1] or "testdata" in parts[:-1])


def _group(module: str) -> str:
  """The third-party group of an absolute module name outside our package."""
  parts = module.split(".")
  if parts[0] == "tensorflow" and parts[-1].endswith("_pb2"):
    return "tf_protos"
  for i in range(len(parts), 0, -1):
    group = _GROUPS.get(".".join(parts[:i]))
    if group:
      return group
  if parts[0] in sys.stdlib_module_names:
    return "stdlib"
  return "other"


def _imports(tree: ast.AST, package: str) -> Iterator[Tuple[int, str]]:
  """Yields (line, absolute module name) for every import in a module.

  `from a import b` yields "a.b" (b may be a module); relative imports are
  resolved against `package`; importlib.import_module / __import__ calls
  with a literal name count too.
  """
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield node.lineno, alias.name
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        anchor = package.split(".")
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
      for alias in node.names:
        yield node.lineno, base if alias.name == "*" else f"{base}.{alias.name}"
    elif isinstance(node, ast.Call) and node.args:
      func = node.func
      name = (func.attr if isinstance(func, ast.Attribute) else
              func.id if isinstance(func, ast.Name) else None)
      arg = node.args[0]
      if (name in ("import_module", "__import__") and
          isinstance(arg, ast.Constant) and isinstance(arg.value, str) and
          not arg.value.startswith(".")):
        yield node.lineno, arg.value


def _allowed_ours(rule_words: FrozenSet[str], target: Tuple[str, ...]) -> bool:
  """Whether importing our tensorflow_serving.<target...> is allowed."""
  if "*" in rule_words:
    return True
  if not target:  # the bare tensorflow_serving package
    return True
  layer = target[0]
  if layer in rule_words:
    return True
  if f"{layer}:protos" in rule_words:
    return len(target) > 1 and target[-1].endswith("_pb2")
  if f"{layer}:codecs" in rule_words:
    return len(target) > 1 and _is_codec(target[-1])
  return False


def _allowed_group(rule_words: FrozenSet[str], group: str,
                   in_codec: bool) -> bool:
  return ("*" in rule_words or group in rule_words or
          (in_codec and f"{group}:codecs" in rule_words))


def check_source(rel_path: str, source: str) -> List[str]:
  """Returns the layering violations of one file (empty if none).

  Args:
    rel_path: the file's path relative to tensorflow_serving/, with "/"
      separators (e.g. "core/loader.py").
    source: the file's text.
  """
  parts = tuple(rel_path.removesuffix(".py").split("/"))
  layer = parts[0] if len(parts) > 1 else ""
  if layer not in _RULES:
    return [f"{rel_path}: no layering rule for package '{layer}/'; add a row "
            "to _RULES in tensorflow_serving/layering_test.py (and to "
            "STYLE.md's table)"]
  try:
    tree = ast.parse(source, filename=rel_path)
  except SyntaxError as e:
    return [f"{rel_path}:{e.lineno}: does not parse: {e.msg}"]

  is_test = _is_test_code(parts)
  rule = _RULES[layer]
  ours = set(rule.words("ours"))
  groups = set(rule.words("groups")) | {"stdlib"}
  if is_test:
    for key in ("*", layer):
      extra = _TEST_RULES.get(key)
      if extra:
        ours |= extra.words("ours")
        groups |= extra.words("groups")
  ours_words, group_words = frozenset(ours), frozenset(groups)
  in_codec = layer == "util" and _is_codec(parts[-1])

  # The package that relative imports start from (for __init__.py too).
  package = ".".join([_OUR_PACKAGE, *parts[:-1]])

  violations = []
  for line, module in _imports(tree, package):
    where = f"{rel_path}:{line}: {layer or 'tensorflow_serving'}/"
    mod_parts = module.split(".")
    if mod_parts[0] == _OUR_PACKAGE:
      target = tuple(mod_parts[1:])
      if target and target[-1].endswith("_pb2_grpc"):
        # gRPC stubs pull in grpc: they count as the grpc group.
        if not _allowed_group(group_words, "grpc", in_codec):
          violations.append(f"{where} must not import {module} (gRPC stubs)")
        continue
      if not is_test and _is_test_code(target):
        violations.append(f"{where} is not test code but imports {module}")
      elif not _allowed_ours(ours_words, target):
        violations.append(f"{where} must not import {module}")
    else:
      group = _group(module)
      if not _allowed_group(group_words, group, in_codec):
        violations.append(
            f"{where} must not import {module} (group '{group}')")
  return violations


def _source_root() -> str:
  """tensorflow_serving/ in the workspace, found through this file's symlink."""
  return os.path.dirname(os.path.realpath(__file__))


def _python_files(root: str) -> Iterator[str]:
  """Yields the .py files under root as "/"-separated relative paths."""
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames
                         if not d.startswith((".", "bazel-", "__pycache__")))
    for filename in sorted(filenames):
      if filename.endswith(".py"):
        rel = os.path.relpath(os.path.join(dirpath, filename), root)
        yield rel.replace(os.sep, "/")


class LayeringTest(absltest.TestCase):

  def test_the_tree_follows_the_table(self):
    root = _source_root()
    files = list(_python_files(root))
    self.assertNotEmpty(files, f"found no .py files under {root}")
    # The walk must have reached real packages, not just this file.
    self.assertIn("layering_test.py", files)
    layers = {f.split("/")[0] for f in files if "/" in f}
    self.assertContainsSubset({"apis", "core", "util"}, layers,
                              f"scanned {root} but found only {layers}")
    violations = []
    for rel in files:
      with open(os.path.join(root, rel), encoding="utf-8") as f:
        violations.extend(check_source(rel, f.read()))
    if violations:
      self.fail(f"{len(violations)} layering violation(s) in {root}:\n  " +
                "\n  ".join(violations))

  # Self-checks on synthetic modules, so the scan cannot pass vacuously.

  def assertViolations(self, rel_path: str, source: str, count: int) -> None:
    violations = check_source(rel_path, source)
    self.assertLen(violations, count, violations)

  def test_core_violations_are_reported(self):
    self.assertViolations("core/bad.py", "\n".join([
        "import numpy as np",
        "import grpc",
        "from http import server",
        "import tensorflow as tf",
        "from tensorflow.core.framework import tensor_pb2",
        "from tensorflow_serving.model_servers import server_core",
        "from tensorflow_serving.apis import prediction_service_pb2_grpc",
        "from tensorflow_serving.apis import classifier",  # not a proto
        "from ..servables.tensorflow import predict_util",
        "import importlib",
        "importlib.import_module('aiohttp.web')",
        "def f():",
        "  from absl import flags",
    ]), 11)

  def test_core_may_use_util_and_protos(self):
    self.assertViolations("core/good.py", "\n".join([
        "import threading",
        "from absl import logging",
        "from google.protobuf import text_format",
        "from tensorflow_serving.util import status",
        "from . import loader",
        "from tensorflow_serving.apis import model_pb2",
        "from tensorflow_serving.config import model_server_config_pb2",
    ]), 0)

  def test_numpy_only_in_codecs(self):
    self.assertViolations("util/tensor_codec.py", "import numpy", 0)
    self.assertViolations("util/json_tensor.py", "import numpy", 0)
    self.assertViolations("util/status.py", "import numpy", 1)

  def test_examples_stay_clients(self):
    self.assertViolations("example/mnist_client.py", "\n".join([
        "import grpc",
        "import numpy",
        "from absl import flags",
        "from tensorflow_serving.apis import prediction_service_pb2_grpc",
        "from tensorflow_serving.util import tensor_codec",
    ]), 0)
    self.assertViolations("example/mnist_client.py", "\n".join([
        "from tensorflow_serving.core import aspired_versions_manager",
        "from tensorflow_serving.model_servers import server",
        "from tensorflow_serving.util import status",
    ]), 3)
    # End-to-end tests may start a server.
    self.assertViolations("example/mnist_e2e_test.py",
                          "from tensorflow_serving.model_servers import server",
                          0)

  def test_other_layers(self):
    core_loader = "from tensorflow_serving.core import loader"
    util_status = "from tensorflow_serving.util import status"
    self.assertViolations("batching/x.py", core_loader, 1)
    self.assertViolations("batching/x.py", util_status, 0)
    self.assertViolations("sources/storage_path/x.py", "import tensorflow", 0)
    self.assertViolations("sources/storage_path/x.py", "import numpy", 1)
    self.assertViolations("servables/tensorflow/x.py", "import tensorflow", 0)
    self.assertViolations(
        "servables/tensorflow/x.py",
        "from tensorflow_serving.model_servers import server_core", 1)
    self.assertViolations("apis/x.py", util_status, 1)
    self.assertViolations("model_servers/x.py", "import grpc, aiohttp", 0)
    self.assertViolations("newpackage/x.py", "", 1)

  def test_tests_get_test_libraries_only(self):
    absltest_import = "from absl.testing import absltest"
    fake = "from tensorflow_serving.core.test_util import fake_loader"
    self.assertViolations("core/x_test.py", absltest_import, 0)
    self.assertViolations("core/x_test.py", "import numpy", 1)
    self.assertViolations("core/test_util/fake.py", "import unittest.mock", 0)
    self.assertViolations("core/x.py", absltest_import, 1)
    # Production code never imports fakes; tests do.
    self.assertViolations("core/x.py", fake, 1)
    self.assertViolations("core/x_test.py", fake, 0)

  def test_unparsable_file_is_reported(self):
    self.assertViolations("core/broken.py", "def (:", 1)


if __name__ == "__main__":
  absltest.main()
