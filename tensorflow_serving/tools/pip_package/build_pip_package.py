"""build_pip_package OUT_DIR: writes the tensorflow-serving-py wheel there.

    bazel build -c opt //tensorflow_serving/tools/pip_package:build_pip_package
    bazel-bin/tensorflow_serving/tools/pip_package/build_pip_package /tmp/pip

(upstream's names for the builder of its API wheel). The wheel is pure
Python: the server with its console script `tensorflow_model_server`, every
generated *_pb2 module of tensorflow_serving/apis, config and
servables/tensorflow, and the example clients. What goes in is what Bazel put
in this binary's runfiles under tensorflow_serving/ (its `data` in BUILD),
less tensorflow_serving/tools/; setup.py holds the metadata. The same sources
give the same bytes: file times come from SOURCE_DATE_EPOCH (default
1980-01-01), so tools/build_image.sh can tell an unchanged wheel.
"""

import os
import shutil
import subprocess
import sys
import tempfile

_WORKSPACE = "tf_serving"
_PACKAGE = "tensorflow_serving"
# Developer tools (this builder, benchmarks) stay out of the wheel.
_EXCLUDED_DIRS = (os.path.join(_PACKAGE, "tools"),)
# 1980-01-01T00:00:00Z, the earliest time a zip file can hold.
_DEFAULT_SOURCE_DATE_EPOCH = "315532800"


def _runfiles_root() -> str:
  """The workspace directory of this binary's runfiles tree."""
  runfiles = os.environ.get("RUNFILES_DIR")
  if runfiles and os.path.isdir(os.path.join(runfiles, _WORKSPACE)):
    return os.path.join(runfiles, _WORKSPACE)
  # .../build_pip_package.runfiles/tf_serving/tensorflow_serving/tools/
  # pip_package/build_pip_package.py
  here = os.path.dirname(os.path.abspath(__file__))
  root = os.path.normpath(os.path.join(here, "..", "..", ".."))
  if not os.path.isdir(os.path.join(root, _PACKAGE, "apis")):
    sys.exit("build_pip_package: cannot find its runfiles; run it as "
             "bazel-bin/tensorflow_serving/tools/pip_package/build_pip_package")
  return root


def stage_sources(root: str, stage: str) -> list[str]:
  """Copies the packaged modules into `stage`; returns their relative paths.

  Every directory gets an __init__.py (an empty one where the runfiles have
  none), so that find_packages() sees each as a package.
  """
  copied = []
  for dirpath, dirnames, filenames in os.walk(os.path.join(root, _PACKAGE),
                                              followlinks=True):
    rel_dir = os.path.relpath(dirpath, root)
    if rel_dir.startswith(_EXCLUDED_DIRS):
      dirnames[:] = []
      continue
    dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
    sources = sorted(f for f in filenames if f.endswith(".py"))
    if not sources and not any(
        os.path.isdir(os.path.join(dirpath, d)) for d in dirnames):
      continue
    os.makedirs(os.path.join(stage, rel_dir), exist_ok=True)
    for name in sources:
      rel = os.path.join(rel_dir, name)
      shutil.copyfile(os.path.join(root, rel), os.path.join(stage, rel))
      copied.append(rel)
    init = os.path.join(stage, rel_dir, "__init__.py")
    if not os.path.exists(init):
      open(init, "w").close()  # pylint: disable=consider-using-with
  return copied


def build_wheel(out_dir: str) -> str:
  """Stages the sources, runs setuptools' wheel hook, returns the wheel path."""
  root = _runfiles_root()
  os.makedirs(out_dir, exist_ok=True)
  with tempfile.TemporaryDirectory(prefix="tf_serving_pip_") as stage:
    stage_sources(root, stage)
    shutil.copyfile(
        os.path.join(root, _PACKAGE, "tools", "pip_package", "setup.py"),
        os.path.join(stage, "setup.py"))
    env = dict(os.environ)
    env.setdefault("SOURCE_DATE_EPOCH", _DEFAULT_SOURCE_DATE_EPOCH)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    dist = os.path.join(stage, "dist")
    # A fresh interpreter in the staging directory: the PEP 517 hook that
    # `pip wheel` would call, without pip's index and cache settings.
    result = subprocess.run(
        [sys.executable, "-c",
         "import sys\n"
         "from setuptools import build_meta\n"
         "print(build_meta.build_wheel(sys.argv[1]))", dist],
        cwd=stage, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, check=False)
    if result.returncode != 0:
      sys.exit(f"build_pip_package: setuptools failed:\n{result.stdout}\n"
               f"{result.stderr}")
    name = result.stdout.strip().splitlines()[-1]
    target = os.path.join(out_dir, name)
    shutil.copyfile(os.path.join(dist, name), target)
  return target


def main(argv: list[str]) -> None:
  if len(argv) != 2:
    sys.exit(f"usage: {os.path.basename(argv[0])} OUT_DIR")
  print(build_wheel(os.path.abspath(argv[1])))


if __name__ == "__main__":
  main(sys.argv)
