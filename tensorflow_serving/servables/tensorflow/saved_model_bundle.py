"""SavedModelBundle: a loaded SavedModel, ready to run.

Upstream's SavedModelBundle is a session plus its MetaGraphDef. Ours adds what
the Python side needs to be fast: a TensorFlow callable per feed/fetch set,
made once (from CallableOptions, like upstream's C++ Session::Run it feeds
tensors without checking them against the placeholders' static shapes) and
reused by every request, plus each signature's aliases, tensor names and
dtypes worked out at load time.

Unless the session config asks for inter-op threads, each run executes its
ops in the calling thread (RunOptions.inter_op_thread_pool = -1) instead of
handing them to TensorFlow's inter-op pool and waiting: for a model whose
run takes microseconds, the hand-off and the pool's spinning threads cost
several times the run itself (docs/performance.md). Each op still uses the
intra-op pool, and concurrent requests still run in parallel.

Deadlines. run(deadline=...) bounds the TensorFlow run by the request's
deadline, as upstream sets RunOptions.timeout_in_ms from the gRPC deadline
or --rest_api_timeout_in_ms: when it passes, TensorFlow cancels the run
(its loops and queues check the step's cancellation) and the call fails
with DEADLINE_EXCEEDED. TensorFlow only honours the timeout when the run
is handed to a thread pool, never for a run in the calling thread (measured:
a 300 ms timeout on a run in the caller's thread does nothing); so a run
with a deadline is a "timed" run (a TF_SessionRun with per-call RunOptions:
timeout_in_ms, the session's inter-op pool), which costs the pool hand-off
(about 15-20 us of CPU, docs/performance.md). To keep that off the common
path, each prepared callable learns how long its runs take (_RunPath): once
16 of its runs took under 1 ms each and no untimed run used 20 ms of CPU
or more, a call whose deadline is at least 100 ms away runs in the calling
thread, untimed, as before (such a run cannot outlive that deadline); every
other call with a deadline is timed. One untimed run of 20 ms or more makes
every later call with a deadline on that callable timed, for good (measured
in the calling thread's CPU time, which waits for the interpreter lock or a
core on a busy machine do not inflate; see _RunPath). What this does not bound: on a
callable proven fast, the first run that turns out slow (a model whose cost
depends on its input) is not cut off; the ones after it are. With an
inter-op pool configured (runs_in_caller_thread() false) every call with a
deadline is timed: the hand-off is paid anyway.

SavedModelBundle.run() is the model-run step: tensor names and arrays in,
arrays out, nothing else. Predict, Classify, Regress and MultiInference all go
through it. Batching is decided when the bundle is built: given a `batcher`,
run() queues each call on the batch scheduler (batching_session.
BatchingRunner) instead of running it at once; the bundle never changes its
run step afterwards.

TF1 SavedModels (SavedModelBuilder) and TF2 ones (tf.saved_model.save, Keras
model.export) load the same way: TF2 exports keep a MetaGraphDef with
signature_defs that a TF1 session runs, which is how upstream serves them.
"""

import dataclasses
import math
import os
import threading
import time
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from tensorflow.core.protobuf import config_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.client import pywrap_tf_session
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.servables.tensorflow import batching_session
from tensorflow_serving.servables.tensorflow import util
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec

# Callables for feed/fetch sets beyond this many (e.g. many distinct Predict
# output_filters) are made per request instead of cached, so a client cannot
# make the server hold unbounded TensorFlow state.
MAX_CACHED_CALLABLES = 256


@dataclasses.dataclass(frozen=True)
class Signature:
  """One SignatureDef, resolved once at load time.

  Attributes:
    name: the signature key.
    signature_def: the SignatureDef itself.
    input_aliases: the input aliases, sorted (the feed order).
    input_names: alias -> tensor name.
    input_dtypes: alias -> the DataType enum the signature declares.
    defaults: alias -> array for inputs with a default value.
    output_aliases: the output aliases, sorted (the default fetch order).
    output_names: alias -> tensor name.
    unsupported: why the signature cannot be run by name (a sparse or
      composite tensor), or "" when it can.
    feed_names: the input tensor names in input_aliases order.
    fetch_names: the output tensor names in output_aliases order.
  """

  name: str
  signature_def: meta_graph_pb2.SignatureDef
  input_aliases: tuple[str, ...]
  input_names: Mapping[str, str]
  input_dtypes: Mapping[str, int]
  defaults: Mapping[str, np.ndarray]
  output_aliases: tuple[str, ...]
  output_names: Mapping[str, str]
  unsupported: str = ""
  feed_names: tuple[str, ...] = ()
  fetch_names: tuple[str, ...] = ()

  @property
  def method_name(self) -> str:
    return self.signature_def.method_name


def _resolve_signature(name: str,
                       signature_def: meta_graph_pb2.SignatureDef) -> Signature:
  unsupported = []
  for kind, infos in (("input", signature_def.inputs),
                      ("output", signature_def.outputs)):
    for alias, info in infos.items():
      if info.WhichOneof("encoding") != "name":
        unsupported.append(f"{kind} {alias} is a sparse or composite tensor")
  defaults = {}
  for alias, proto in signature_def.defaults.items():
    try:
      defaults[alias] = tensor_codec.tensor_proto_to_ndarray(proto)
    except status.ServingError as e:
      unsupported.append(f"default of {alias} is malformed: {e.message}")
  input_aliases = tuple(sorted(signature_def.inputs))
  output_aliases = tuple(sorted(signature_def.outputs))
  return Signature(
      name=name,
      signature_def=signature_def,
      input_aliases=input_aliases,
      input_names={a: i.name for a, i in signature_def.inputs.items()},
      input_dtypes={a: i.dtype for a, i in signature_def.inputs.items()},
      defaults=defaults,
      output_aliases=output_aliases,
      output_names={a: i.name for a, i in signature_def.outputs.items()},
      unsupported="; ".join(unsupported),
      feed_names=tuple(signature_def.inputs[a].name for a in input_aliases),
      fetch_names=tuple(signature_def.outputs[a].name for a in output_aliases),
  )


def runs_in_caller_thread(
    session_config: Optional[config_pb2.ConfigProto]) -> bool:
  """True unless the session config gives runs an inter-op thread pool.

  A config that sets inter_op_parallelism_threads > 0, or names
  session_inter_op_thread_pool entries, or use_per_session_threads, keeps
  TensorFlow's pools; a negative inter_op_parallelism_threads already means
  the caller's thread.
  """
  if session_config is None:
    return True
  return (session_config.inter_op_parallelism_threads <= 0 and
          not session_config.session_inter_op_thread_pool and
          not session_config.use_per_session_threads)


# Given the bundle's unbatched run step, returns its batched twin (e.g.
# batching_parameters_util.wrap_bundle_run_for_batching on a scheduler).
Batcher = Callable[[batching_session.BundleRunFn],
                   batching_session.BatchingRunner]


class _RunPath:
  """Decides, per call with a deadline, between an untimed and a timed run.

  See the module doc ("Deadlines"). Fed with every run's duration, from any
  thread; the counters are updated without a lock (a lost update only
  delays or hastens the switch by a run).

  An untimed run is measured in the CPU time of the calling thread, which
  runs its ops (and takes its share of an op split over the intra-op pool,
  so that it keeps pace with the run's wall time): unlike wall time, it does
  not grow while the thread waits for the interpreter lock or for a core on
  a loaded machine, so a busy server does not mistake a fast model for a
  slow one. A timed run's ops run on the pool, so it is measured in wall
  time, and only ever counts as fast (it is bounded anyway).
  """

  # A run shorter than this counts as fast; at 1 ms the timed run's
  # hand-off (15-40 us) would cost a few percent of a run.
  FAST_RUN_SECONDS = 0.001
  # An untimed run using this much CPU or more makes the callable's calls
  # with a deadline timed for good (well below the margin below).
  SLOW_RUN_SECONDS = 0.02
  # Fast runs (in all) before calls with a deadline may run untimed.
  PROVEN_RUNS = 16
  # A call whose deadline is nearer than this is timed whatever the history:
  # an untimed run shorter than SLOW_RUN_SECONDS cannot outlive it.
  MIN_UNTIMED_REMAINING_SECONDS = 0.1

  __slots__ = ("fast_runs", "slow")

  def __init__(self) -> None:
    self.fast_runs = 0
    self.slow = False

  def untimed_run(self, cpu_seconds: float) -> None:
    """Notes the CPU time one untimed run took on its thread."""
    if cpu_seconds < self.FAST_RUN_SECONDS:
      self.fast_runs += 1
    elif cpu_seconds >= self.SLOW_RUN_SECONDS:
      self.slow = True

  def timed_run(self, seconds: float) -> None:
    """Notes the wall time one timed run took."""
    if seconds < self.FAST_RUN_SECONDS:
      self.fast_runs += 1

  def timed(self, remaining: float) -> bool:
    """True: run with a timeout; False: run in the calling thread, untimed
    (the callable's runs are short, and the deadline is far)."""
    return (self.slow or self.fast_runs < self.PROVEN_RUNS or
            remaining < self.MIN_UNTIMED_REMAINING_SECONDS)


class _Runner:
  """A callable for one feed/fetch set; fetches duplicate names only once.

  run(feeds) runs it untimed; run_before(feeds, deadline, ...) runs the same
  feeds and fetches so that the run stops at the deadline (see the module
  doc).
  """

  def __init__(self, session: tf.compat.v1.Session, feed_names: Sequence[str],
               fetch_names: Sequence[str], in_caller_thread: bool) -> None:
    unique = list(dict.fromkeys(fetch_names))
    options = config_pb2.CallableOptions(feed=list(feed_names), fetch=unique)
    if in_caller_thread:
      # -1: execute in the thread that calls, with no pool hand-off.
      options.run_options.inter_op_thread_pool = -1
    # pylint: disable=protected-access
    self.call = session._make_callable_from_options(options)
    # pylint: enable=protected-access
    self.session = session
    self.feed_names = tuple(feed_names)
    self.unique_fetch_names = tuple(unique)
    # The TF_Outputs of the timed run, made on its first use.
    self._timed_args: Optional[tuple[list, list]] = None
    self.path = _RunPath()
    if len(unique) == len(fetch_names):
      self.gather = None
    else:
      position = {n: i for i, n in enumerate(unique)}
      self.gather = [position[n] for n in fetch_names]

  def run(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Runs untimed, noting the CPU time the run took."""
    start = time.thread_time_ns()
    try:
      return self.call(*feeds)
    finally:
      self.path.untimed_run((time.thread_time_ns() - start) * 1e-9)

  def run_before(self, feeds: Sequence[np.ndarray], deadline: float,
                 untimed_allowed: bool) -> list[np.ndarray]:
    """Runs so that the run stops at `deadline` (see the module doc).

    untimed_allowed: the callable runs in the calling thread, so a run
    proven fast may skip the timeout (with an inter-op pool, the timeout
    costs nothing and every run gets it).
    """
    start = time.monotonic()
    remaining = deadline - start
    if untimed_allowed and not self.path.timed(remaining):
      return self.run(feeds)
    if remaining <= 0:
      raise status.deadline_exceeded(
          "Deadline exceeded before the model run started")
    first = self._timed_args is None
    try:
      return self._call_timed(feeds, math.ceil(remaining * 1000))
    finally:
      # The first timed run also builds TensorFlow's executors for it: its
      # time says nothing about the model.
      if not first:
        self.path.timed_run(time.monotonic() - start)

  def _call_timed(self, feeds: Sequence[np.ndarray],
                  timeout_ms: int) -> list[np.ndarray]:
    """Runs with RunOptions.timeout_in_ms on the session's inter-op pool.

    The callable's RunOptions are fixed when it is made, so this goes
    through TF_SessionRun, whose RunOptions are per call (the same C++
    Session::Run: feeds are not checked against static shapes either).
    TensorFlow makes (and keeps) a second set of executors for it.
    """
    args = self._timed_args
    if args is None:
      graph = self.session.graph
      # pylint: disable=protected-access
      args = ([graph.get_tensor_by_name(n)._as_tf_output()
               for n in self.feed_names],
              [graph.get_tensor_by_name(n)._as_tf_output()
               for n in self.unique_fetch_names])
      # pylint: enable=protected-access
      self._timed_args = args
    feed_outputs, fetch_outputs = args
    run_options = pywrap_tf_session.TF_NewBufferFromString(
        config_pb2.RunOptions(timeout_in_ms=timeout_ms).SerializeToString())
    try:
      # pylint: disable=protected-access
      return self.session._call_tf_sessionrun(
          run_options, dict(zip(feed_outputs, feeds)), fetch_outputs, [], None)
      # pylint: enable=protected-access
    finally:
      pywrap_tf_session.TF_DeleteBuffer(run_options)


class SavedModelBundle:
  """A loaded SavedModel: its session, MetaGraphDef and signatures.

  Thread-safe: run() may be called from many request threads at once (the
  TensorFlow session and its callables are). close() must be called once, after
  the last run().
  """

  def __init__(self, session: tf.compat.v1.Session,
               meta_graph_def: meta_graph_pb2.MetaGraphDef,
               export_dir: str = "",
               run_in_caller_thread: bool = True,
               batcher: Optional[Batcher] = None) -> None:
    """Args:

    session: the session the SavedModel was loaded into.
    meta_graph_def: its MetaGraphDef.
    export_dir: where it was loaded from.
    run_in_caller_thread: run each request's ops in the calling thread
      rather than in the session's inter-op pool (see the module doc;
      runs_in_caller_thread(session_config) decides it at load).
    batcher: makes run() batch (see the module doc); None: no batching.
    """
    self.session = session
    self.meta_graph_def = meta_graph_def
    self.export_dir = export_dir
    self.run_in_caller_thread = run_in_caller_thread
    self.signatures: Mapping[str, Signature] = {
        name: _resolve_signature(name, sig)
        for name, sig in meta_graph_def.signature_def.items()
    }
    self._mu = threading.Lock()
    # (feed names, fetch names) -> _Runner. Written under self._mu, read
    # without it (a dict lookup is atomic).
    self._runners: dict[tuple[tuple[str, ...], tuple[str, ...]], _Runner] = {}
    self._batched_run: Optional[batching_session.BatchingRunner] = (
        batcher(self._run_now) if batcher is not None else None)

  def prepare(self) -> None:
    """Makes the callable of every runnable signature (all inputs, outputs).

    Called at load time so the first request does not pay for it. Signatures
    whose callables TensorFlow refuses (e.g. __saved_model_init_op, whose
    "output" is an op) are left for run() to report if anyone asks.
    """
    for signature in self.signatures.values():
      if signature.unsupported:
        continue
      try:
        self._runner(signature.feed_names, signature.fetch_names)
      except Exception:  # pylint: disable=broad-except
        pass

  def _runner(self, feed_names: tuple[str, ...],
              fetch_names: tuple[str, ...]) -> _Runner:
    key = (feed_names, fetch_names)
    runner = self._runners.get(key)
    if runner is not None:
      return runner
    with self._mu:
      runner = self._runners.get(key)
      if runner is None:
        # Beyond the cap the runner serves this request only; TensorFlow
        # releases its callable when the runner is collected.
        runner = _Runner(self.session, feed_names, fetch_names,
                         self.run_in_caller_thread)
        if len(self._runners) < MAX_CACHED_CALLABLES:
          self._runners[key] = runner
    return runner

  def run(self, feed_names: tuple[str, ...], feeds: Sequence[np.ndarray],
          fetch_names: tuple[str, ...],
          deadline: Optional[float] = None) -> list[np.ndarray]:
    """Runs the graph: the model-run step every API goes through.

    Args:
      feed_names: tensor names to feed, in the order of `feeds`.
      feeds: the arrays, fed as they are (no shape check against the graph's
        placeholders, as upstream).
      fetch_names: tensor names to fetch (repeats allowed).
      deadline: the request's absolute deadline (time.monotonic() seconds),
        or None; the run is cut off when it passes (see the module doc).

    Returns:
      One array per fetch name, in order.

    Raises:
      ServingError: with TensorFlow's code and message when the run fails
        (DEADLINE_EXCEEDED when the deadline cut it off); with batching,
        also the batching errors (a full queue: UNAVAILABLE).
    """
    batched = self._batched_run
    if batched is not None:
      return batched(feed_names, feeds, fetch_names, deadline)
    return self._run_now(feed_names, feeds, fetch_names, deadline)

  def _run_now(self, feed_names: tuple[str, ...], feeds: Sequence[np.ndarray],
               fetch_names: tuple[str, ...],
               deadline: Optional[float] = None) -> list[np.ndarray]:
    """run() without batching (what a batch thread calls with a batch)."""
    try:
      runner = self._runner(feed_names, fetch_names)
      if deadline is None:
        outputs = runner.run(feeds)
      else:
        outputs = runner.run_before(feeds, deadline, self.run_in_caller_thread)
    except tf.errors.OpError as e:
      message = e.message
      if (isinstance(e, tf.errors.InvalidArgumentError) and
          message.startswith("Type mismatch: ")):
        message = self._feed_type_mismatch(feed_names, feeds) or message
      raise status.ServingError(e.error_code, message) from None
    except (TypeError, ValueError) as e:
      # TensorFlow refused the feeds or fetches before running (e.g. a tensor
      # name that is not in the graph).
      raise status.invalid_argument(str(e)) from None
    if runner.gather is not None:
      outputs = [outputs[i] for i in runner.gather]
    return outputs

  def _feed_type_mismatch(self, feed_names: Sequence[str],
                          feeds: Sequence[np.ndarray]) -> Optional[str]:
    """Upstream's text for a feed of the wrong dtype, or None if none is.

    A callable reports "Type mismatch: actual X vs. expect Y" and names a
    graph node; upstream's Session::Run says "Expects arg[i] to be Y but X
    is provided", numbering the feeds by sorted tensor name. Worked out only
    on this error path, so a good run pays nothing for it.
    """
    order = sorted(feed_names)
    for name, feed in zip(feed_names, feeds):
      try:
        expected = self.session.graph.get_tensor_by_name(name).dtype
        actual = tensor_codec.from_numpy_dtype(np.asarray(feed).dtype)
      except (KeyError, ValueError, status.ServingError):
        return None
      if actual != expected.as_datatype_enum:
        return (f"Expects arg[{order.index(name)}] to be "
                f"{util.dtype_string(expected.as_datatype_enum)} but "
                f"{util.dtype_string(actual)} is provided")
    return None

  def close(self) -> None:
    """Releases the callables (and batching queues) and closes the session."""
    batched = self._batched_run
    if batched is not None:
      batched.close()
    with self._mu:
      self._runners.clear()
    self.session.close()


def _saved_model_file_exists(export_dir: str) -> bool:
  return any(
      os.path.isfile(os.path.join(export_dir, name))
      for name in ("saved_model.pb", "saved_model.pbtxt"))


def load_saved_model_bundle(
    export_dir: str,
    tags: Sequence[str] = ("serve",),
    session_config: Optional[config_pb2.ConfigProto] = None,
    batcher: Optional[Batcher] = None,
) -> SavedModelBundle:
  """Loads the SavedModel at export_dir into a new session.

  Args:
    export_dir: the version directory (holds saved_model.pb).
    tags: the MetaGraphDef's tag set (--saved_model_tags).
    session_config: the session's ConfigProto (thread pools etc.).
    batcher: batch the bundle's runs (see SavedModelBundle); None: don't.

  Returns:
    The bundle, with its callables prepared.

  Raises:
    ServingError: NOT_FOUND for a missing SavedModel or tag set (upstream's
      texts), or the TensorFlow error that failed the load.
  """
  if not _saved_model_file_exists(export_dir):
    raise status.not_found(
        "Could not find SavedModel .pb or .pbtxt at supplied export directory "
        f"path: {export_dir}. Check that the directory exists and that you "
        "have the right permissions for accessing it.")
  graph = tf.Graph()
  session = tf.compat.v1.Session(graph=graph, config=session_config)
  try:
    with graph.as_default():
      loader = loader_impl.SavedModelLoader(export_dir)
      try:
        loader.get_meta_graph_def_from_tags(list(tags))
      except RuntimeError:
        raise status.not_found(
            "Could not find meta graph def matching supplied tags: { "
            + " ".join(tags) + " }. To inspect available tag-sets in the "
            "SavedModel, please use the SavedModel CLI: `saved_model_cli`"
        ) from None
      meta_graph_def = loader.load(session, list(tags))
    graph.finalize()
    bundle = SavedModelBundle(
        session, meta_graph_def, export_dir,
        run_in_caller_thread=runs_in_caller_thread(session_config),
        batcher=batcher)
    bundle.prepare()
    return bundle
  except status.ServingError:
    session.close()
    raise
  except tf.errors.OpError as e:
    session.close()
    raise status.from_exception(e) from e
  except Exception as e:  # pylint: disable=broad-except
    session.close()
    raise status.from_exception(e).with_prefix(
        f"Failed to load SavedModel at {export_dir}: ") from e

