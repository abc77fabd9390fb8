"""Seldon MLServer serving the benchmark model, as a V2 protocol baseline.

MLServer (the V2 protocol's Python server) runs the same SavedModel through
a small custom MLModel: load() takes the signature with
tf.saved_model.load, predict() decodes the input with NumpyCodec, runs the
signature and encodes the output the same way. parallel_workers is 0, so
inference runs in MLServer's own process (as ours does), and its metrics
server is off.

MLServer pins libraries of its own (and protobuf < 7), so it lives in its
own virtualenv, made on first use and reused afterwards (the cache
directory, default $TMPDIR/tfs_benchmark_mlserver_env):

  python3.11 -m venv ENV && ENV/bin/python -m pip install \\
      mlserver==1.7.1 tensorflow-cpu==2.21.0

Nothing in the workspace's own environment changes; tools/configure.sh
does not install it.
"""

import json
import os
import subprocess
import tempfile

MLSERVER_VERSION = "1.7.1"
TENSORFLOW_VERSION = "2.21.0"
_PACKAGES = (f"mlserver=={MLSERVER_VERSION}",
             f"tensorflow-cpu=={TENSORFLOW_VERSION}")
_MARKER = ".tfs_benchmark_packages"

# The MLModel, written into the model repository as runtime.py. It imports
# MLServer and TensorFlow, which exist only in the MLServer virtualenv.
_RUNTIME = '''\
"""The benchmark model as an MLServer MLModel (tools/benchmark)."""

import tensorflow as tf
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class TFSignatureModel(MLModel):
  """Runs one signature of a SavedModel: input {input} -> output {output}."""

  async def load(self) -> bool:
    uri = await get_model_uri(self._settings)
    self._function = tf.saved_model.load(uri).signatures["{signature}"]
    return True

  async def predict(self, payload: InferenceRequest) -> InferenceResponse:
    images = NumpyCodec.decode_input(payload.inputs[0])
    scores = self._function({input}=tf.constant(images))["{output}"].numpy()
    return InferenceResponse(
        model_name=self.name, model_version=self.version,
        outputs=[NumpyCodec.encode_output("{output}", scores)])
'''


def default_env_dir() -> str:
  return os.path.join(tempfile.gettempdir(), "tfs_benchmark_mlserver_env")


def ensure_env(env_dir: str) -> str:
  """Makes (once) the MLServer virtualenv; returns its `mlserver` command.

  Raises:
    subprocess.CalledProcessError: python3.11 or pip failed.
  """
  mlserver = os.path.join(env_dir, "bin", "mlserver")
  marker = os.path.join(env_dir, _MARKER)
  wanted = "\n".join(_PACKAGES)
  if os.access(mlserver, os.X_OK) and os.path.exists(marker):
    with open(marker) as f:
      if f.read() == wanted:
        return mlserver
  print(f"Making the MLServer virtualenv {env_dir} "
        f"({', '.join(_PACKAGES)}); this takes a few minutes, once ...",
        flush=True)
  subprocess.run(["python3.11", "-m", "venv", env_dir], check=True)
  subprocess.run([os.path.join(env_dir, "bin", "python"), "-m", "pip",
                  "install", "--quiet", *_PACKAGES], check=True)
  with open(marker, "w") as f:
    f.write(wanted)
  return mlserver


def write_repository(directory: str, model_name: str, version_dir: str,
                     signature: str, input_name: str, output_name: str,
                     http_port: int, grpc_port: int) -> str:
  """Writes an MLServer model repository serving one SavedModel version.

  Returns:
    The directory to pass to `mlserver start`.
  """
  os.makedirs(directory, exist_ok=True)
  settings = {
      "parallel_workers": 0,
      "http_port": http_port,
      "grpc_port": grpc_port,
      "metrics_endpoint": None,
      "load_models_at_startup": True,
  }
  version = os.path.basename(os.path.normpath(version_dir))
  model_settings = {
      "name": model_name,
      "implementation": "runtime.TFSignatureModel",
      "parameters": {"uri": os.path.abspath(version_dir), "version": version},
  }
  with open(os.path.join(directory, "settings.json"), "w") as f:
    json.dump(settings, f, indent=2)
  with open(os.path.join(directory, "model-settings.json"), "w") as f:
    json.dump(model_settings, f, indent=2)
  with open(os.path.join(directory, "runtime.py"), "w") as f:
    f.write(_RUNTIME.replace("{signature}", signature)
            .replace("{input}", input_name).replace("{output}", output_name))
  return directory


def command(mlserver: str, repository: str) -> list[str]:
  """The command line that serves the repository."""
  return [mlserver, "start", repository]
