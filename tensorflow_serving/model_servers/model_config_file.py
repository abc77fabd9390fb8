"""--model_config_file: reading it, polling it, and the single-model config.

tensorflow_model_server serves either one model (--model_name,
--model_base_path) or the models of a text-format ModelServerConfig file
(--model_config_file), re-read every --model_config_file_poll_wait_seconds
and applied with ServerCore.reload_config(), as upstream's server.cc does.
The file may be on an object store (s3://, gs://; not in upstream).
"""

import threading

from absl import logging

from tensorflow_serving.config import model_server_config_pb2
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.sources.storage_path import file_system as fs_lib
from tensorflow_serving.util import proto_util
from tensorflow_serving.sources.storage_path import file_system_registry
from tensorflow_serving.util import status

ModelServerConfig = model_server_config_pb2.ModelServerConfig


def build_single_model_config(
    model_name: str,
    model_base_path: str,
    model_platform: str = server_core_lib.TENSORFLOW_MODEL_PLATFORM
) -> ModelServerConfig:
  """The config of single-model mode (--model_name, --model_base_path)."""
  logging.info(
      "Building single TensorFlow model file config:  model_name: %s "
      "model_base_path: %s", model_name, model_base_path)
  config = ModelServerConfig()
  model = config.model_config_list.config.add()
  model.name = model_name
  model.base_path = model_base_path
  model.model_platform = model_platform
  return config


def parse_model_server_config_file(
    path: str,
    file_system: fs_lib.FileSystem | None = None) -> ModelServerConfig:
  """Reads a text-format ModelServerConfig file.

  Args:
    path: the file (any file system `file_system` can read).
    file_system: default: s3:// and gs:// through their object-store
      clients (not in upstream), other paths through tf.io.gfile, as
      upstream reads through TF's Env.

  Raises:
    ServingError: the file cannot be read (its code), or INVALID_ARGUMENT
      "Invalid protobuf file: '<path>'. Error parsing text-format
      tensorflow.serving.ModelServerConfig: <line>:<column>: <what>".
  """
  data = (file_system or
          file_system_registry.SchemeFileSystem()).read_file(path)
  try:
    return proto_util.parse_text_proto(path, data, ModelServerConfig())
  except status.ServingError as e:
    # Upstream's parser logs the line and column; they are in the status too.
    logging.error("%s", e.message)
    raise


class ModelConfigFilePoller:
  """Re-reads --model_config_file periodically and reloads ServerCore.

  The first read happens poll_wait_seconds after start() (the server has
  just loaded the file). A file that cannot be read or parsed, or a config
  that ServerCore rejects, is logged with upstream's messages ("Failed to
  read ModelServerConfig file: ...", "PollFilesystemAndReloadConfig failed to
  ReloadConfig: ...") and the config in force stays. A file whose config
  equals the last one applied successfully is not reloaded again.
  """

  def __init__(self,
               server_core: server_core_lib.ServerCore,
               path: str,
               poll_wait_seconds: float,
               file_system: fs_lib.FileSystem | None = None) -> None:
    if poll_wait_seconds <= 0:
      raise status.invalid_argument(
          "ModelConfigFilePoller needs a positive poll_wait_seconds")
    self._core = server_core
    self._path = path
    self._poll_wait_seconds = poll_wait_seconds
    self._file_system = file_system
    self._mu = threading.Lock()  # Serializes polls.
    self._applied = server_core.config  # guarded by self._mu
    self._stop_event = threading.Event()
    self._thread: threading.Thread | None = None

  def start(self) -> None:
    """Starts the polling thread."""
    if self._thread is not None:
      return
    self._thread = threading.Thread(
        target=self._loop, name="ModelConfigFilePoller", daemon=True)
    self._thread.start()

  def stop(self) -> None:
    """Stops polling; waits for a poll (and its reload) in progress."""
    self._stop_event.set()
    thread, self._thread = self._thread, None
    if thread is not None:
      thread.join()

  def poll_once(self) -> bool:
    """Reads the file and reloads if it changed; True if a reload succeeded."""
    with self._mu:
      try:
        config = parse_model_server_config_file(self._path, self._file_system)
      except status.ServingError as e:
        logging.error("Failed to read ModelServerConfig file: %s", e.message)
        return False
      if config == self._applied:
        return False
      try:
        self._core.reload_config(config)
      except status.ServingError as e:
        logging.error(
            "PollFilesystemAndReloadConfig failed to ReloadConfig: %s",
            e.message)
        return False
      self._applied = config
      return True

  def _loop(self) -> None:
    while not self._stop_event.wait(self._poll_wait_seconds):
      try:
        self.poll_once()
      except Exception:  # pylint: disable=broad-except
        logging.exception("ModelConfigFilePoller poll failed")
