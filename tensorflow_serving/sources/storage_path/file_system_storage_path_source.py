"""FileSystemStoragePathSource: aspires the version directories it finds.

The source at the start of the server's chain (as upstream's
sources/storage_path/file_system_storage_path_source.h). For each servable
in its FileSystemStoragePathSourceConfig it lists the base path, reads the
children whose names are non-negative integers as versions ("00000123" is
version 123; other names are ignored), picks versions by the servable's
ServableVersionPolicy (latest N, default 1; all; specific) and emits them as
ServableData[str] holding each version directory's path.

Polling: every file_system_poll_wait_seconds on its own thread; 0 polls once;
negative never polls on its own (tests then call
poll_file_system_and_invoke_callback()).
A missing base path or one with no versions is logged (upstream's messages)
and polling goes on: a base path created later is picked up, and nothing is
unloaded meanwhile because of a missing base path. A version whose directory
disappears is no longer aspired and so gets unloaded (unless
servable_versions_always_present refuses to unload a servable's last ones).
One servable's file-system error never affects the others.

Storage faults (not in upstream, which logs every failed poll): a base path
that cannot be listed (missing, unreadable, I/O errors, an object store down
or slow) emits nothing, so what is loaded keeps serving; the error is logged
once when the outage starts and once when a listing succeeds again, and
polling goes on. Only a successful listing without a version unaspires it.

The upload-complete guard (Options.version_readiness, not in upstream; see
version_readiness.py): when set, a version directory is a candidate only once
complete, and the version policy picks among complete versions, so a version
still being copied never displaces the one serving.

update_config() replaces the servables: removed ones get an empty
aspired-versions list at once (so they unload), and the new config is
polled right away, so a reload does not wait for the next poll.
"""

import dataclasses
import re
import threading

from absl import logging

from tensorflow_serving.config import file_system_storage_path_source_pb2
from tensorflow_serving.core import servable_data
from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.core import source as source_lib
from tensorflow_serving.sources.storage_path import file_system as fs_lib
from tensorflow_serving.sources.storage_path import file_system_registry
from tensorflow_serving.sources.storage_path import version_readiness as readiness_lib
from tensorflow_serving.util import status

Config = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig
ServableData = servable_data.ServableData

_VERSION_RE = re.compile(r"[0-9]+")
_MAX_VERSION = 2**63 - 1


_join = fs_lib.join


def _parse_version(child: str) -> int | None:
  if not _VERSION_RE.fullmatch(child):
    return None
  version = int(child)
  return version if version <= _MAX_VERSION else None


class FileSystemStoragePathSource(source_lib.Source):
  """Emits version directories found under base paths. See the module doc."""

  @dataclasses.dataclass(frozen=True)
  class Options:
    """FileSystemStoragePathSource options.

    Attributes:
      file_system: how paths are read (None: SchemeFileSystem: s3:// and
        gs:// through their object-store clients, every other path through
        tf.io.gfile, imported on first use).
      poll_wait_seconds: overrides the config's integer
        file_system_poll_wait_seconds when set (sub-second polling for tests).
      version_readiness: turns the upload-complete guard on (None: off, as
        upstream). Unset, its stability_seconds is the poll interval (0,
        i.e. no stability check, when polling is not periodic) and its
        trust_mtime "not on an object store".
    """

    file_system: fs_lib.FileSystem | None = None
    poll_wait_seconds: float | None = None
    version_readiness: readiness_lib.VersionReadiness.Options | None = None

  def __init__(self,
               config: Config,
               options: "FileSystemStoragePathSource.Options | None" = None
              ) -> None:
    """Use create(), which validates the config."""
    self._options = options or FileSystemStoragePathSource.Options()
    self._fs = (self._options.file_system or
                file_system_registry.SchemeFileSystem())
    self._readiness: readiness_lib.VersionReadiness | None = None
    readiness = self._options.version_readiness
    if readiness is not None:
      if readiness.stability_seconds is None:
        readiness = dataclasses.replace(
            readiness,
            stability_seconds=max(self._poll_wait_seconds(config), 0))
      if readiness.trust_mtime is None:
        readiness = dataclasses.replace(
            readiness,
            trust_mtime=(
                lambda path: not file_system_registry.needs_local_copy(path)))
      self._readiness = readiness_lib.VersionReadiness(self._fs, readiness)
    # Held while polling and emitting, so emissions are serialized.
    self._mu = threading.RLock()
    self._config = Config()  # guarded by self._mu
    self._callback: source_lib.AspiredVersionsCallback | None = (
        None)  # guarded by self._mu
    # name -> versions emitted last, to log changes only.
    self._last_emitted: dict[str, list[int]] = {}  # guarded by self._mu
    # name -> the error of a storage outage in progress (logged once).
    self._outages: dict[str, str] = {}  # guarded by self._mu
    self._stop_event = threading.Event()
    self._thread: threading.Thread | None = None  # guarded by self._mu

  @classmethod
  def create(
      cls,
      config: Config,
      options: "FileSystemStoragePathSource.Options | None" = None
  ) -> "FileSystemStoragePathSource":
    """Builds a source for `config`; raises ServingError if it is invalid."""
    source = cls(config, options)
    source.update_config(config)
    return source

  @property
  def config(self) -> Config:
    with self._mu:
      copy = Config()
      copy.CopyFrom(self._config)
      return copy

  def _poll_wait_seconds(self, config: Config) -> float:
    if self._options.poll_wait_seconds is not None:
      return self._options.poll_wait_seconds
    return config.file_system_poll_wait_seconds

  def update_config(self, config: Config) -> None:
    """Replaces the servables to watch (see the module docstring).

    Raises:
      ServingError: INVALID_ARGUMENT "Changing file_system_poll_wait_seconds is
        not supported" once polling started; NOT_FOUND if
        fail_if_zero_versions_at_startup or servable_versions_always_present
        is set and a servable has no version.
    """
    with self._mu:
      if (self._thread is not None and config.file_system_poll_wait_seconds !=
          self._config.file_system_poll_wait_seconds):
        raise status.invalid_argument(
            "Changing file_system_poll_wait_seconds is not supported")
      if (config.fail_if_zero_versions_at_startup or
          config.servable_versions_always_present):
        self._fail_if_zero_versions(config)
      new_config = Config()
      new_config.CopyFrom(config)
      if self._callback is not None:
        kept = {s.servable_name for s in new_config.servables}
        for servable in self._config.servables:
          if servable.servable_name not in kept:
            self._emit(servable.servable_name, [])
      self._config = new_config
      kept_names = {s.servable_name for s in new_config.servables}
      for name in list(self._outages):
        if name not in kept_names:
          del self._outages[name]
      if self._callback is not None:
        self._poll_and_emit_locked()

  def set_aspired_versions_callback(
      self, callback: source_lib.AspiredVersionsCallback) -> None:
    with self._mu:
      if self._callback is not None:
        logging.error("SetAspiredVersionsCallback() called multiple times; "
                      "ignoring this call")
        return
      self._callback = callback
      if (self._poll_wait_seconds(self._config) >= 0 and
          not self._stop_event.is_set()):
        self._thread = threading.Thread(
            target=self._polling_loop,
            name="FileSystemStoragePathSource_filesystem_polling_thread",
            daemon=True)
        self._thread.start()

  def poll_file_system_and_invoke_callback(self) -> None:
    """Polls every servable once and emits (also the polling thread's job)."""
    with self._mu:
      self._poll_and_emit_locked()

  def stop(self) -> None:
    """Stops polling; waits for a poll in progress to finish."""
    self._stop_event.set()
    with self._mu:
      thread, self._thread = self._thread, None
    if thread is not None and thread is not threading.current_thread():
      thread.join()

  # --------------------------------------------------------------- internals

  def _polling_loop(self) -> None:
    interval = self._poll_wait_seconds(self._config)
    while not self._stop_event.is_set():
      try:
        self.poll_file_system_and_invoke_callback()
      except Exception:  # pylint: disable=broad-except
        logging.exception("FileSystemStoragePathSource poll failed")
      if interval <= 0:
        return
      self._stop_event.wait(interval)

  def _poll_and_emit_locked(self) -> None:
    if self._callback is None:
      return
    for servable in self._config.servables:
      name = servable.servable_name
      try:
        versions = self._poll_servable(servable)
      except status.ServingError as e:
        if name not in self._outages:
          logging.error(
              "FileSystemStoragePathSource encountered a filesystem access "
              "error: %s", e.message)
          logging.warning(
              "Servable %s keeps its loaded versions while %s cannot be "
              "listed; polling goes on (logged once per outage)", name,
              servable.base_path)
        self._outages[name] = e.message
        continue
      if self._outages.pop(name, None) is not None:
        logging.info("Base path %s of servable %s can be listed again",
                     servable.base_path, name)
      if not versions and self._config.servable_versions_always_present:
        logging.error("Refusing to unload all versions for Servable: %s",
                      servable.servable_name)
        continue
      self._emit(servable.servable_name, versions)

  def _emit(self, name: str, versions: list[ServableData]) -> None:
    numbers = sorted(v.id.version for v in versions)
    if self._last_emitted.get(name) != numbers:
      self._last_emitted[name] = numbers
      if numbers:
        for version in versions:
          logging.info("Aspiring version for servable %s from path: %s", name,
                       version.data)
      else:
        logging.info("No versions of servable %s are aspired any more", name)
    self._callback(name, versions)

  def _poll_servable(self, servable) -> list[ServableData]:
    """The aspired versions of one servable (raises ServingError)."""
    base = servable.base_path
    if not self._fs.exists(base):
      raise status.invalid_argument(
          f"Could not find base path {base} for servable "
          f"{servable.servable_name} with error NOT_FOUND: {base} not found")
    children = set()
    for child in self._fs.list_children(base):
      # Object stores may list deeper descendants ("1/saved_model.pb").
      children.add(child.split("/", 1)[0])
    children_by_version: dict[int, str] = {}
    for child in sorted(children):
      version = _parse_version(child)
      if version is None:
        continue
      if version in children_by_version:
        logging.warning(
            "Duplicate version directories detected. Version %d will be "
            "loaded from %s, %s will be ignored.", version, child,
            children_by_version[version])
      children_by_version[version] = child

    policy = servable.servable_version_policy
    choice = policy.WhichOneof("policy_choice")
    if self._readiness is not None:
      self._readiness.forget_except(
          {_join(base, c) for c in children_by_version.values()}, base)

    def complete(version: int) -> bool:
      if self._readiness is None:
        return True
      return self._readiness.is_complete(
          servable.servable_name, version,
          _join(base, children_by_version[version]))

    if choice == "all":
      chosen = [v for v in sorted(children_by_version) if complete(v)]
    elif choice == "specific":
      wanted = set(policy.specific.versions)
      chosen = sorted(v for v in children_by_version if v in wanted)
      for missing in sorted(wanted - set(chosen)):
        logging.warning(
            "Version %d of servable %s, which was requested to be served as a "
            "'specific' version in the servable's version policy, was not "
            "found in the file system", missing, servable.servable_name)
      chosen = [v for v in chosen if complete(v)]
    else:  # latest (the default): the newest complete ones.
      num_versions = max(policy.latest.num_versions, 1)
      chosen = []
      for version in sorted(children_by_version, reverse=True):
        if len(chosen) == num_versions:
          break
        if complete(version):
          chosen.append(version)
      chosen.sort()

    if not chosen and (self._readiness is None or not children_by_version):
      # (Versions waiting for their upload to finish are logged by the guard.)
      logging.warning(
          "No versions of servable %s found under base path %s. Did you "
          "forget to name your leaf directory as a number (eg. '/1/')?",
          servable.servable_name, base)
    return [
        ServableData.ok(
            servable_id_lib.ServableId(servable.servable_name, v),
            _join(base, children_by_version[v])) for v in chosen
    ]

  def _fail_if_zero_versions(self, config: Config) -> None:
    for servable in config.servables:
      if not self._poll_servable(servable):
        raise status.not_found(
            "Unable to find a numerical version path for servable "
            f"{servable.servable_name} at: {servable.base_path}")
