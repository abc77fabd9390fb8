"""The session ConfigProto of the server's thread flags.

As upstream's bundle_factory_util, kept apart from the loader so that the
server's flag handling can be tested without TensorFlow sessions. (Upstream's
resource estimate, the files' size times 1.2, is not made: see
saved_model_bundle_source_adapter.)
"""

from typing import Optional

from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.util import status

def build_session_config(
    session_parallelism: int = 0,
    intra_op_parallelism: int = 0,
    inter_op_parallelism: int = 0,
    base: Optional[config_pb2.ConfigProto] = None,
) -> config_pb2.ConfigProto:
  """Returns the session ConfigProto for the server's thread flags.

  --tensorflow_session_parallelism sets both thread pools; the intra/inter
  flags set them one by one and win when either is set; 0 leaves a pool to
  TensorFlow's auto-configuration. Setting all three is refused, as upstream.

  Args:
    session_parallelism: --tensorflow_session_parallelism.
    intra_op_parallelism: --tensorflow_intra_op_parallelism.
    inter_op_parallelism: --tensorflow_inter_op_parallelism.
    base: a ConfigProto to start from (--tensorflow_session_config_file); the
      thread counts above override its own only when they are set (> 0).

  Raises:
    ServingError: INVALID_ARGUMENT when all three flags are set.
  """
  if (session_parallelism > 0 and intra_op_parallelism > 0 and
      inter_op_parallelism > 0):
    raise status.invalid_argument(
        "Either configure server_options.tensorflow_session_parallelism or "
        "(server_options.tensorflow_intra_op_parallelism, "
        "server_options.tensorflow_inter_op_parallelism) separately. You "
        "cannot configure both.")
  config = config_pb2.ConfigProto()
  if base is not None:
    config.CopyFrom(base)
  if intra_op_parallelism > 0 or inter_op_parallelism > 0:
    intra, inter = intra_op_parallelism, inter_op_parallelism
  else:
    intra = inter = session_parallelism
  if intra > 0:
    config.intra_op_parallelism_threads = intra
  if inter > 0:
    config.inter_op_parallelism_threads = inter
  return config

