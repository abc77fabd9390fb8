"""A platform whose servable raises from every serving method: a bug on call.

For tests that a bug inside a servable fails only its request, with the
same code over every transport. The platform name is FAULTY_PLATFORM; any
version directory (e.g. a hashmap one) loads as a FaultyServable.
"""

from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.core import simple_loader
from tensorflow_serving.core import source_adapter
from tensorflow_serving.servables.tensorflow import servable

FAULTY_PLATFORM = "faulty"
# What every serving method raises.
ERROR_TEXT = "the servable has a bug"


class FaultyServable(servable.Servable):
  """Declares one float input "x" (so REST can decode), then raises."""

  def __init__(self, name: str, version: int) -> None:
    self._name = name
    self._version = version

  @property
  def name(self) -> str:
    return self._name

  @property
  def version(self) -> int:
    return self._version

  def get_signature_inputs(self, signature_name):
    return {"x": meta_graph_pb2.TensorInfo(name="x:0",
                                           dtype=types_pb2.DT_FLOAT)}

  def get_signature_outputs(self, signature_name):
    return {"y": meta_graph_pb2.TensorInfo(name="y:0",
                                           dtype=types_pb2.DT_FLOAT)}

  def predict(self, request, *, tensor_content=False, deadline=None,
              inputs=None):
    raise RuntimeError(ERROR_TEXT)

  def classify(self, request, *, deadline=None):
    raise RuntimeError(ERROR_TEXT)

  def regress(self, request, *, deadline=None):
    raise RuntimeError(ERROR_TEXT)

  def multi_inference(self, request, *, deadline=None):
    raise RuntimeError(ERROR_TEXT)

  def get_model_metadata(self, request):
    raise RuntimeError(ERROR_TEXT)


class FaultySourceAdapter(source_adapter.SourceAdapter):
  """SourceAdapter[str, Loader] of FaultyServables."""

  def convert(self, servable_id, data):
    del data  # Nothing is read.
    return simple_loader.SimpleLoader(
        lambda: FaultyServable(servable_id.name, servable_id.version))
