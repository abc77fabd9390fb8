"""SavedModelBundleSourceAdapter: version directory path -> Loader.

The "tensorflow" platform's adapter: the file system source emits a version
directory per aspired version; this adapter turns each into a Loader that,
when the manager loads it, reads the SavedModel into a TensorFlow session and
exposes it as a SavedModelServable. convert() itself is cheap (it must not
load). Its options come from the platform's SessionBundleConfig
(model_servers/platform_config_util), whether the server's flags or
--platform_config_file wrote it; with a batch scheduler, each bundle is built
batching.

The loaders make no resource estimate: no manager here asks for one (there
is no memory limit to check it against; upstream's is unlimited unless a
program sets it), and upstream's estimate walks the version directory, which
would cost a listing of every file of every version on object stores for a
figure nobody reads.
"""

import dataclasses
import functools
import time
from typing import Any, Optional, Sequence

from absl import logging

from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.core import loader as loader_lib
from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.core import simple_loader
from tensorflow_serving.core import source_adapter
from tensorflow_serving.servables.tensorflow import batching_parameters_util
from tensorflow_serving.servables.tensorflow import saved_model_bundle
from tensorflow_serving.servables.tensorflow import saved_model_servable
from tensorflow_serving.servables.tensorflow import saved_model_warmup
from tensorflow_serving.util import metrics


def parse_saved_model_tags(flag_value: str) -> tuple[str, ...]:
  """Splits --saved_model_tags ("serve" or "tpu,serve") into a tag tuple."""
  return tuple(tag for tag in flag_value.split(",") if tag)


@dataclasses.dataclass(frozen=True)
class SavedModelBundleSourceAdapterOptions:
  """How SavedModels are loaded and served. Defaults are the server's.

  Attributes:
    saved_model_tags: the MetaGraphDef tag set to load (--saved_model_tags,
      see parse_saved_model_tags).
    session_config: every session's ConfigProto (None: TensorFlow's
      defaults).
    enable_signature_method_name_check: --enable_signature_method_name_check.
    batch_scheduler: the platform's SharedBatchScheduler, which its owner
      (platform_config_util.PlatformAdapters) stops; None: no batching.
    batching_parameters: the BatchingParameters its queues use.
    enable_model_warmup: replay the version's assets.extra/
      tf_serving_warmup_requests before it serves (--enable_model_warmup);
      a failed warmup fails the load.
    model_warmup_options: iterations per warmup record and threads (None:
      one each; --num_request_iterations_for_warmup sets the iterations).
  """

  saved_model_tags: Sequence[str] = ("serve",)
  session_config: Optional[config_pb2.ConfigProto] = None
  enable_signature_method_name_check: bool = False
  batch_scheduler: Optional[Any] = None
  batching_parameters: Optional[Any] = None
  enable_model_warmup: bool = True
  model_warmup_options: Optional[
      saved_model_warmup.ModelWarmupOptions] = None


class SavedModelBundleSourceAdapter(source_adapter.SourceAdapter[
    str, loader_lib.Loader]):
  """Makes a Loader of a SavedModelServable for each version directory."""

  Options = SavedModelBundleSourceAdapterOptions

  def __init__(self,
               options: SavedModelBundleSourceAdapterOptions = (
                   SavedModelBundleSourceAdapterOptions())) -> None:
    super().__init__()
    self._tags = tuple(options.saved_model_tags)
    self._session_config = options.session_config
    self._batcher: Optional[saved_model_bundle.Batcher] = None
    if options.batch_scheduler is not None:
      self._batcher = functools.partial(
          batching_parameters_util.wrap_bundle_run_for_batching,
          scheduler=options.batch_scheduler,
          params=options.batching_parameters)
    self._enable_model_warmup = options.enable_model_warmup
    self._model_warmup_options = (options.model_warmup_options or
                                  saved_model_warmup.ModelWarmupOptions())
    self._servable_options = saved_model_servable.SavedModelServableOptions(
        enable_signature_method_name_check=(
            options.enable_signature_method_name_check))

  @property
  def session_config(self) -> Optional[config_pb2.ConfigProto]:
    """The ConfigProto every session gets (for tests and logs)."""
    return self._session_config

  def convert(self, servable_id: servable_id_lib.ServableId,
              data: str) -> loader_lib.Loader:
    path = data
    return simple_loader.SimpleLoader(
        creator=lambda: self._load(servable_id, path),
        unloader=lambda servable: servable.close())

  def _load(self, servable_id: servable_id_lib.ServableId,
            path: str) -> saved_model_servable.SavedModelServable:
    tags = " ".join(self._tags)
    logging.info("Reading SavedModel from: %s with tags { %s }", path, tags)
    start = time.monotonic()
    try:
      bundle = saved_model_bundle.load_saved_model_bundle(
          path, self._tags, self._session_config, self._batcher)
    except Exception:
      metrics.record_load_attempt(path, ok=False)
      raise
    latency_us = (time.monotonic() - start) * 1e6
    metrics.record_load_attempt(path, ok=True, latency_us=latency_us)
    logging.info("SavedModel load for tags { %s }; Status: success: OK. "
                 "Took %d microseconds.", tags, int(latency_us))
    servable = saved_model_servable.SavedModelServable(
        servable_id, bundle, self._servable_options)
    if self._enable_model_warmup:
      try:
        saved_model_warmup.run_saved_model_warmup(self._model_warmup_options,
                                                  path, servable)
      except BaseException:
        servable.close()
        raise
    return servable
