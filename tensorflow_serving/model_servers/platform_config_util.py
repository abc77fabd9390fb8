"""PlatformConfigMap -> the platforms' source adapters: how platforms are built.

As upstream (model_servers/platform_config_util and ServerCore's adapter
creation), a PlatformConfigMap names each platform a model_config may ask
for and packs, in PlatformConfig.source_adapter_config (an Any), the config
of the source adapter that loads it. The adapter is picked by the Any's
message type, from a registry (ADAPTER_FACTORIES); the platform name is free,
so "tensorflow" and, say, "tensorflow_gpu_like" can both be SavedModel
platforms with different settings.

There is one way to build the platforms: the map comes either from
--platform_config_file or, as upstream's server.cc does, from the flags
(the server folds --enable_batching, --batching_parameters_file, the session
and thread flags, --saved_model_tags and the warmup flags into a
SessionBundleConfig; tensorflow_platform_config_map() wraps it), and
create_platform_adapters() builds the adapters of either the same way.

The one type registered here is tensorflow.serving.
SavedModelBundleSourceAdapterConfig, whose legacy_config (SessionBundleConfig)
gives the session ConfigProto, the MetaGraph tags, batching
(batching_parameters: one batch scheduler per platform, owned by the
returned PlatformAdapters) and warmup (enable_model_warmup,
model_warmup_options).

Errors are upstream's: an Any whose type is not a compiled-in message is
INTERNAL "Unable to find compiled-in proto descriptor of type X"; a known
type nobody registered is INVALID_ARGUMENT "Couldn't find factory for config
proto message type X ...".
"""

import dataclasses
from typing import Callable, Optional

from google.protobuf import descriptor_pool
from google.protobuf import message as message_lib

from tensorflow_serving.batching import shared_batch_scheduler
from tensorflow_serving.config import platform_config_pb2
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.servables.tensorflow import batching_parameters_util
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter as adapter_lib
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter_pb2
from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2
from tensorflow_serving.util import proto_util
from tensorflow_serving.util import status

PlatformConfigMap = platform_config_pb2.PlatformConfigMap
SavedModelBundleSourceAdapterConfig = (
    saved_model_bundle_source_adapter_pb2.SavedModelBundleSourceAdapterConfig)
SessionBundleConfig = session_bundle_config_pb2.SessionBundleConfig


@dataclasses.dataclass(frozen=True)
class AdapterSettings:
  """What the server passes to every adapter, whatever its config says.

  Attributes:
    enable_signature_method_name_check: --enable_signature_method_name_check
      (a serving option, not a loading one, so not in the platform config).
  """

  enable_signature_method_name_check: bool = False


@dataclasses.dataclass
class PlatformAdapters:
  """The adapters of a PlatformConfigMap, and the batch schedulers they use.

  The one owner of the batch schedulers: stop() them after ServerCore has
  unloaded every model (unloading a version closes its queues).

  Attributes:
    factories: platform name -> factory of its source adapter (for
      ServerCore.Options.platform_source_adapters).
    batch_schedulers: platform name -> the scheduler its batching_parameters
      started (platforms without batching have none).
  """

  factories: dict[str, Callable[[], object]] = dataclasses.field(
      default_factory=dict)
  batch_schedulers: dict[str, shared_batch_scheduler.SharedBatchScheduler] = (
      dataclasses.field(default_factory=dict))

  def stop(self) -> None:
    """Stops the batch schedulers (idempotent)."""
    schedulers = list(self.batch_schedulers.values())
    self.batch_schedulers.clear()
    for scheduler in schedulers:
      scheduler.stop()


def read_platform_config_map(path: str) -> PlatformConfigMap:
  """Parses a text-format PlatformConfigMap file.

  Raises:
    ServingError: the file system's error ("<path>; No such file or
      directory", NOT_FOUND) if it cannot be read, INVALID_ARGUMENT "Invalid
      protobuf file: '<path>'. ..." (upstream's words) if it does not parse.
  """
  return proto_util.parse_proto_text_file(path, PlatformConfigMap())


def saved_model_adapter_options(
    config: SessionBundleConfig,
    settings: AdapterSettings,
    batch_scheduler=None) -> adapter_lib.SavedModelBundleSourceAdapterOptions:
  """SessionBundleConfig -> the SavedModel adapter's options."""
  tags = tuple(config.saved_model_tags) or ("serve",)
  return adapter_lib.SavedModelBundleSourceAdapterOptions(
      saved_model_tags=tags,
      session_config=(config.session_config
                      if config.HasField("session_config") else None),
      enable_signature_method_name_check=(
          settings.enable_signature_method_name_check),
      batch_scheduler=batch_scheduler,
      batching_parameters=(config.batching_parameters
                           if batch_scheduler is not None else None),
      enable_model_warmup=config.enable_model_warmup,
      model_warmup_options=config.model_warmup_options)


def tensorflow_platform_config_map(
    session_bundle_config: SessionBundleConfig) -> PlatformConfigMap:
  """The map with one "tensorflow" platform loading SavedModels with
  `session_bundle_config` (upstream's CreateTensorFlowPlatformConfigMap)."""
  adapter_config = SavedModelBundleSourceAdapterConfig()
  adapter_config.legacy_config.CopyFrom(session_bundle_config)
  platform_config_map = PlatformConfigMap()
  platform_config_map.platform_configs[
      server_core_lib.TENSORFLOW_MODEL_PLATFORM].source_adapter_config.Pack(
          adapter_config)
  return platform_config_map


def _saved_model_adapter(config: SavedModelBundleSourceAdapterConfig,
                         settings: AdapterSettings,
                         scheduler_out: list) -> Callable[[], object]:
  legacy = config.legacy_config
  scheduler = None
  if legacy.HasField("batching_parameters"):
    scheduler = batching_parameters_util.create_batch_scheduler(
        legacy.batching_parameters)
    scheduler_out.append(scheduler)
  options = saved_model_adapter_options(legacy, settings, scheduler)
  # Fail on a bad config now rather than at the first load.
  adapter_lib.SavedModelBundleSourceAdapter(options)
  return lambda: adapter_lib.SavedModelBundleSourceAdapter(options)


# Any message type -> (its class, a builder of the adapter factory).
ADAPTER_FACTORIES = {
    SavedModelBundleSourceAdapterConfig.DESCRIPTOR.full_name:
        (SavedModelBundleSourceAdapterConfig, _saved_model_adapter),
}


def _type_name(type_url: str) -> str:
  return type_url.rsplit("/", 1)[-1]


def create_platform_adapters(
    platform_config_map: PlatformConfigMap,
    settings: Optional[AdapterSettings] = None) -> PlatformAdapters:
  """Builds the adapter factory of every platform in the map.

  Raises:
    ServingError: as the module docstring says; INVALID_ARGUMENT for an
      empty map or invalid batching parameters.
  """
  settings = settings or AdapterSettings()
  if not platform_config_map.platform_configs:
    raise status.invalid_argument(
        "PlatformConfigMap has no platform_configs")
  result = PlatformAdapters()
  try:
    for platform in sorted(platform_config_map.platform_configs):
      any_config = platform_config_map.platform_configs[
          platform].source_adapter_config
      type_name = _type_name(any_config.type_url)
      entry = ADAPTER_FACTORIES.get(type_name)
      if entry is None:
        try:
          descriptor_pool.Default().FindMessageTypeByName(type_name)
        except KeyError:
          raise status.internal(  # pylint: disable=raise-missing-from
              "Unable to find compiled-in proto descriptor of type "
              f"{type_name}")
        raise status.invalid_argument(
            "Couldn't find factory for config proto message type "
            f"{type_name}\nconfig={any_config}")
      message_class, build = entry
      config = message_class()
      try:
        unpacked = any_config.Unpack(config)
      except message_lib.DecodeError:
        unpacked = False
      if not unpacked:
        raise status.invalid_argument("Malformed content of Any.value")
      schedulers = []
      try:
        result.factories[platform] = build(config, settings, schedulers)
      finally:
        if schedulers:
          result.batch_schedulers[platform], = schedulers
  except BaseException:
    result.stop()
    raise
  return result
