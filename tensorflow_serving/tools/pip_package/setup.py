"""Packaging metadata of the tensorflow-serving-py wheel.

build_pip_package copies the server's modules, the generated protos and the
example clients into a staging directory next to this file and runs
setuptools' wheel hook there (see build_pip_package.py); run it through
Bazel, not by hand.

The dependencies are ranges, not pins: tools/requirements.txt pins the one
set the tests run with, and it satisfies every range below
(build_pip_package_test checks that, and that every third-party module the
packaged code imports is declared here).
"""

import os
import re

import setuptools

_HERE = os.path.dirname(os.path.abspath(__file__))

# TensorFlow: the CPU-only build where PyPI has one (x86-64 Linux and
# Windows; also what the container image installs), the regular one
# elsewhere (macOS on Apple silicon, aarch64 Linux).
_X86 = 'platform_machine == "x86_64" or platform_machine == "AMD64"'
_NOT_X86 = 'platform_machine != "x86_64" and platform_machine != "AMD64"'

REQUIRED_PACKAGES = [
    "absl-py>=2.1,<3",
    "aiohttp>=3.9,<4",
    # Models and config files on s3:// (sources/storage_path/s3_file_system).
    "boto3>=1.35,<2",
    "botocore>=1.35,<2",
    # ... and on gs:// (sources/storage_path/gcs_file_system).
    "google-cloud-storage>=2.18,<4",
    # The generated *_pb2_grpc.py files refuse an older grpcio than the
    # grpcio-tools that generated them (tools/requirements.txt).
    "grpcio>=1.85.1,<2",
    "grpcio-health-checking>=1.85.1,<2",
    "ml_dtypes>=0.5.1,<1",
    "numpy>=1.26,<3",
    "orjson>=3.9,<4",
    "prometheus-client>=0.20,<1",
    # The generated *_pb2.py files need a protobuf runtime of the same major
    # version and at least the protoc version that generated them.
    "protobuf>=7.35.1,<8",
    # REST JSON bodies are parsed straight into arrays (util/json_tensor).
    "pysimdjson>=7,<8",
    # --log_format=json (model_servers/log_format).
    "python-json-logger>=3.1,<5",
    f"tensorflow-cpu>=2.21,<3; {_X86}",
    f"tensorflow>=2.21,<3; {_NOT_X86}",
]


def _version() -> str:
  """The upstream release this server matches (model_servers/version.py)."""
  path = os.path.join(_HERE, "tensorflow_serving", "model_servers",
                      "version.py")
  with open(path) as f:
    match = re.search(r'^SERVING_VERSION = "([^"]+)"', f.read(), re.M)
  if not match:
    raise RuntimeError(f"no SERVING_VERSION in {path}")
  return match.group(1)


setuptools.setup(
    name="tensorflow-serving-py",
    version=_version(),
    description="TensorFlow Serving in Python: tensorflow_model_server, "
    "wire-compatible with upstream's gRPC and REST APIs",
    long_description=(
        "The tensorflow_model_server command (upstream's flags), the serving "
        "protos (tensorflow_serving.apis, .config) and the MNIST example "
        "clients. Clients written for TensorFlow Serving work against it "
        "unchanged."),
    license="Apache-2.0",
    packages=setuptools.find_packages(
        include=["tensorflow_serving", "tensorflow_serving.*"]),
    python_requires=">=3.11",
    install_requires=REQUIRED_PACKAGES,
    entry_points={
        "console_scripts": [
            "tensorflow_model_server = "
            "tensorflow_serving.model_servers.main:run",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Operating System :: OS Independent",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    zip_safe=False,
)
