"""The wheel from build_pip_package: its contents, and that it serves once installed.

The wheel is built by the real builder (this test's data), then installed
with pip into a fresh virtualenv, offline (--no-index). TensorFlow and the
other dependencies come from the pinned environment (tools/requirements.txt),
layered under the fresh one by a .pth file: installing them afresh would copy
about 1.5 GB per run; the container image (tools/build_image.sh) installs them
from wheels for real. `pip check` then proves that the wheel's dependency
ranges are met by the pinned versions.

Served with the installed `tensorflow_model_server` command: a model exported
by the installed exporter (tensorflow_serving.example.mnist_saved_model,
briefly trained on MNIST), answering gRPC Predict, the installed mnist_client
and REST :predict. Needs MNIST_DATA_DIR (tools/run_tests.sh passes it).
"""

import ast
import email.parser
import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
import zipfile

from absl.testing import absltest
import grpc
import numpy as np
from packaging import requirements
from packaging import utils as packaging_utils

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.util import tensor_codec

_WORKSPACE = "tf_serving"
_START_TIMEOUT = 180.0
_MNIST_ENV = "MNIST_DATA_DIR"


def _runfile(*parts: str) -> str:
  path = os.path.join(os.environ["TEST_SRCDIR"],
                      os.environ.get("TEST_WORKSPACE", _WORKSPACE), *parts)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} is missing from the test's data")
  return path


def _free_port() -> int:
  import socket  # pylint: disable=g-import-not-at-top
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
  """The test's environment less Bazel's PYTHONPATH (the runfiles' modules)."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env.update(extra)
  return env


def _pinned_versions() -> dict[str, str]:
  """Normalized name -> version, from tools/requirements.txt."""
  pins = {}
  with open(_runfile("tools", "requirements.txt")) as f:
    for line in f:
      line = line.split("#", 1)[0].strip()
      if line:
        name, version = line.split("==")
        pins[packaging_utils.canonicalize_name(name)] = version
  return pins


def _third_party_imports(source: str) -> set[str]:
  """Top-level names of the absolute imports in a module."""
  names = set()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      names.update(alias.name.split(".")[0] for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
      names.add(node.module.split(".")[0])
  return {n for n in names
          if n not in sys.stdlib_module_names and n != "tensorflow_serving"}


class BuildPipPackageTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
    out = os.path.join(cls.tmp, "dist")
    result = subprocess.run(
        [_runfile("tensorflow_serving", "tools", "pip_package",
                  "build_pip_package"), out],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        check=False)
    if result.returncode != 0:
      raise AssertionError(f"build_pip_package failed:\n{result.stderr}")
    cls.wheel = result.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(cls.wheel) as whl:
      cls.names = whl.namelist()
      cls.sources = {n: whl.read(n).decode() for n in cls.names
                     if n.endswith(".py")}
      dist_info = next(n for n in cls.names
                       if n.endswith(".dist-info/METADATA"))
      cls.metadata = email.parser.Parser().parsestr(
          whl.read(dist_info).decode())
      cls.entry_points = whl.read(
          dist_info.replace("METADATA", "entry_points.txt")).decode()

  def test_wheel_is_pure_python_and_named_after_the_version(self):
    self.assertRegex(os.path.basename(self.wheel),
                     r"^tensorflow_serving_py-\d+\.\d+\.\d+-py3-none-any\.whl$")
    self.assertFalse([n for n in self.names if n.endswith((".so", ".pyd"))])
    self.assertEqual(self.metadata["Name"], "tensorflow-serving-py")

  def test_console_script_is_the_server_entry_point(self):
    self.assertIn("[console_scripts]", self.entry_points)
    self.assertIn(
        "tensorflow_model_server = tensorflow_serving.model_servers.main:run",
        self.entry_points)

  def test_holds_the_server_protos_and_examples_but_no_tests(self):
    for name in ("tensorflow_serving/model_servers/main.py",
                 "tensorflow_serving/model_servers/server.py",
                 "tensorflow_serving/apis/predict_pb2.py",
                 "tensorflow_serving/apis/prediction_service_pb2_grpc.py",
                 "tensorflow_serving/config/model_server_config_pb2.py",
                 "tensorflow_serving/servables/tensorflow/"
                 "session_bundle_config_pb2.py",
                 "tensorflow_serving/example/mnist_client.py",
                 "tensorflow_serving/example/mnist_input_data.py",
                 "tensorflow_serving/example/mnist_saved_model.py"):
      self.assertIn(name, self.names)
    packages = {os.path.dirname(n) for n in self.sources}
    for package in packages:
      self.assertIn(f"{package}/__init__.py", self.names)
    self.assertFalse([n for n in self.sources
                      if n.endswith("_test.py") or "/test_util/" in n or
                      n.startswith("tensorflow_serving/tools/")])

  def test_dependencies_are_ranges_met_by_the_pinned_requirements(self):
    pins = _pinned_versions()
    applicable = 0
    for text in self.metadata.get_all("Requires-Dist"):
      req = requirements.Requirement(text)
      self.assertTrue(req.specifier, f"{text}: a range, not a bare name")
      self.assertNotIn("==", str(req.specifier), f"{text}: a range, not a pin")
      if req.marker is not None and not req.marker.evaluate():
        continue
      applicable += 1
      name = packaging_utils.canonicalize_name(req.name)
      self.assertIn(name, pins, f"{text}: not in tools/requirements.txt")
      self.assertIn(pins[name], req.specifier,
                    f"{text}: the pinned {pins[name]} is outside the range")
    self.assertGreater(applicable, 5)

  def test_every_third_party_import_is_a_declared_dependency(self):
    declared = {
        packaging_utils.canonicalize_name(requirements.Requirement(t).name)
        for t in self.metadata.get_all("Requires-Dist")}
    module_to_dists = importlib.metadata.packages_distributions()
    # The example scripts fall back to a bare import of their sibling when
    # run as files (`python mnist_client.py`).
    siblings = {os.path.basename(n)[:-3] for n in self.sources}
    undeclared = {}
    for name, source in self.sources.items():
      for module in _third_party_imports(source) - siblings:
        dists = {packaging_utils.canonicalize_name(d)
                 for d in module_to_dists.get(module, [])}
        if not dists & declared:
          undeclared.setdefault(module, []).append(name)
    self.assertEqual(undeclared, {}, "imported but not in setup.py's "
                     "REQUIRED_PACKAGES (module -> files)")

  def test_installed_in_a_fresh_venv_it_serves_mnist(self):
    data_dir = os.environ.get(_MNIST_ENV, "")
    if not data_dir:
      self.fail(f"{_MNIST_ENV} is not set; run with --test_env={_MNIST_ENV}="
                "<absolute path of ../shared/mnist> as tools/run_tests.sh does")
    venv = os.path.join(self.tmp, "venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv],
                   check=True)
    python = os.path.join(venv, "bin", "python")
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()"
         "['purelib'])"], stdout=subprocess.PIPE, text=True, check=True,
        env=_clean_env()).stdout.strip()
    with open(os.path.join(site_packages, "pinned_environment.pth"), "w") as f:
      f.write(sysconfig.get_paths()["purelib"] + "\n")

    def pip(*args: str) -> str:
      result = subprocess.run(
          [sys.executable, "-m", "pip", "--python", python,
           "--disable-pip-version-check", *args],
          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
          check=False, env=_clean_env())
      self.assertEqual(result.returncode, 0,
                       f"pip {' '.join(args)}:\n{result.stdout}")
      return result.stdout

    # No index: whatever a dependency range the pinned set did not meet
    # would make this fail rather than download something.
    pip("install", "--no-index", "--no-deps", self.wheel)
    pip("check")
    self.assertEqual(
        sorted(n for n in os.listdir(site_packages)
               if not n.startswith(("_", "pinned_environment"))),
        ["tensorflow_serving", "tensorflow_serving_py-2.21.0.dist-info"])
    where = subprocess.run(
        [python, "-c", "import tensorflow_serving.model_servers.main as m; "
         "print(m.__file__)"], stdout=subprocess.PIPE, text=True, check=True,
        env=_clean_env(), cwd=self.tmp).stdout.strip()
    self.assertTrue(where.startswith(site_packages), where)

    server_command = os.path.join(venv, "bin", "tensorflow_model_server")
    version = subprocess.run([server_command, "--version"],
                             stdout=subprocess.PIPE, text=True, check=True,
                             env=_clean_env(), cwd=self.tmp).stdout
    self.assertIn("TensorFlow ModelServer: 2.21.0", version)

    # The installed exporter, briefly trained: an MNIST model to serve.
    base = os.path.join(self.tmp, "mnist_model")
    export = subprocess.run(
        [python, "-m", "tensorflow_serving.example.mnist_saved_model",
         "--training_iteration=50", f"--work_dir={data_dir}", base],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        check=False, env=_clean_env(), cwd=self.tmp, timeout=600)
    self.assertEqual(export.returncode, 0, export.stdout[-4000:])
    self.assertEqual(os.listdir(base), ["1"])

    grpc_port, rest_port = _free_port(), _free_port()
    log_path = os.path.join(
        os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", self.tmp),
        "wheel_model_server.log")
    with open(log_path, "w") as log:
      server = subprocess.Popen(  # pylint: disable=consider-using-with
          [server_command, f"--port={grpc_port}",
           f"--rest_api_port={rest_port}", "--model_name=mnist",
           f"--model_base_path={base}"],
          stdout=log, stderr=subprocess.STDOUT, env=_clean_env(),
          cwd=self.tmp, start_new_session=True)
    self.addCleanup(lambda: server.poll() is None and os.killpg(
        server.pid, signal.SIGKILL))

    def server_log() -> str:
      with open(log_path, errors="replace") as f:
        return f.read()[-4000:]

    deadline = time.monotonic() + _START_TIMEOUT
    while f"Exporting HTTP/REST API at:localhost:{rest_port}" not in (
        server_log()):
      self.assertIsNone(server.poll(), server_log())
      self.assertLess(time.monotonic(), deadline, server_log())
      time.sleep(0.2)

    images = np.random.default_rng(7).random((3, 784), dtype=np.float32)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.model_spec.signature_name = "predict_images"
    request.inputs["images"].CopyFrom(
        tensor_codec.ndarray_to_tensor_proto(images))
    with grpc.insecure_channel(f"localhost:{grpc_port}") as channel:
      response = prediction_service_pb2_grpc.PredictionServiceStub(
          channel).Predict(request, timeout=30)
    self.assertEqual(
        [d.size for d in response.outputs["scores"].tensor_shape.dim], [3, 10])

    rest = json.loads(urllib.request.urlopen(  # pylint: disable=consider-using-with
        urllib.request.Request(
            f"http://localhost:{rest_port}/v1/models/mnist:predict",
            data=json.dumps({"signature_name": "predict_images",
                             "instances": images.tolist()}).encode()),
        timeout=30).read())
    self.assertEqual(np.asarray(rest["predictions"]).shape, (3, 10))

    client = subprocess.run(
        [python, "-m", "tensorflow_serving.example.mnist_client",
         "--num_tests=100", f"--server=localhost:{grpc_port}",
         f"--work_dir={data_dir}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        check=False, env=_clean_env(), cwd=self.tmp, timeout=300)
    self.assertEqual(client.returncode, 0, client.stdout[-4000:])
    rate = re.search(r"Inference error rate: ([\d.]+)%", client.stdout)
    self.assertIsNotNone(rate, client.stdout[-2000:])
    self.assertLess(float(rate.group(1)), 50.0)

    os.killpg(server.pid, signal.SIGTERM)
    self.assertEqual(server.wait(60), 0, server_log())


if __name__ == "__main__":
  absltest.main()
