"""Measures REST JSON decoding and encoding against the model run, in process.

For MNIST-shaped predict bodies ({"signature_name": "predict_images",
"instances": [[784 floats], ...]}) of each --rows, this prints the best of
several interleaved rounds (so that load from other processes hits all
alike), in microseconds per call:

  decode     json_tensor.fill_predict_request_from_json, as the REST handler
             calls it (the simdjson path for such bodies)
  reference  the reference decoder alone (what bodies the fast path leaves,
             e.g. with NaN tokens, cost)
  baseline   the same public function from another copy of json_tensor.py
             (--baseline_module, e.g. the file at the branch point), so that
             before and after are measured side by side in one run
  orjson     orjson.loads alone: a Python object per number, the floor of
             any decoder that builds Python lists
  predict    servable.predict: the model run the body feeds
  encode     json_tensor.make_json_from_tensors of the response ([rows, 10]
             floats); "base enc" the baseline module's

A benchmark, not a test: run it on a quiet machine.

  bazel run -c opt //tensorflow_serving/tools/benchmark:json_decode_benchmark \
      -- --rows=1,256 --baseline_module=/tmp/base/json_tensor.py
"""

import importlib.util
import json
import math
import random
import tempfile
import time
from typing import Callable, Sequence

from absl import app
from absl import flags
import orjson

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter as adapter_lib
from tensorflow_serving.tools.benchmark import export_model
from tensorflow_serving.util import json_tensor

_ROUNDS = flags.DEFINE_integer("rounds", 7, "Interleaved rounds; best counts.")
_SECONDS = flags.DEFINE_float(
    "seconds", 0.2, "About how long each figure runs per round.")
_ROWS = flags.DEFINE_list("rows", ["1", "256"], "Rows per request body.")
_BASELINE = flags.DEFINE_string(
    "baseline_module", "",
    "Path of another json_tensor.py to measure side by side ('baseline').")


def _best_of(fns: dict[str, Callable[[], object]], rounds: int,
             seconds: float) -> dict[str, float]:
  calls = {}
  for name, fn in fns.items():
    start = time.perf_counter()
    fn()
    calls[name] = max(1, int(seconds / max(time.perf_counter() - start,
                                           1e-7)))
  best = {name: math.inf for name in fns}
  for _ in range(rounds):
    for name, fn in fns.items():
      start = time.perf_counter()
      for _ in range(calls[name]):
        fn()
      best[name] = min(best[name],
                       (time.perf_counter() - start) / calls[name])
  return best


def _load_module(path: str):
  spec = importlib.util.spec_from_file_location("baseline_json_tensor", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def main(argv: Sequence[str]) -> None:
  del argv
  path = export_model.export(tempfile.mkdtemp(prefix="json_decode_bench_"))
  loader = adapter_lib.SavedModelBundleSourceAdapter().convert(
      servable_id_lib.ServableId("mnist", 1), path)
  loader.load()
  servable = loader.servable()
  baseline = _load_module(_BASELINE.value) if _BASELINE.value else None
  rng = random.Random(0)

  def input_infos(name):
    return servable.signatures[name].signature_def.inputs

  print(f"best of {_ROUNDS.value} rounds, us per call")
  print(f"{'rows':>5} {'body KB':>8} {'decode':>9} {'reference':>10} "
        f"{'baseline':>9} {'orjson':>8} {'predict':>8} {'encode':>8} "
        f"{'base enc':>8}")
  for rows in map(int, _ROWS.value):
    body = json.dumps({"signature_name": "predict_images", "instances": [
        [round(rng.random(), 3) for _ in range(784)] for _ in range(rows)
    ]}).encode()

    def decode(module=json_tensor) -> predict_pb2.PredictRequest:
      request = predict_pb2.PredictRequest()
      request.model_spec.name = "mnist"
      module.fill_predict_request_from_json(
          body, input_infos, request, fast_loads=orjson.loads)
      return request

    def reference() -> None:
      json_tensor._fill_predict_request_exact(  # pylint: disable=protected-access
          body, input_infos, predict_pb2.PredictRequest())

    request = decode()
    response = servable.predict(request)
    fns = {
        "decode": decode,
        "reference": reference,
        "orjson": lambda: orjson.loads(body),
        "predict": lambda: servable.predict(request),
        "encode": lambda: json_tensor.make_json_from_tensors(
            response.outputs, json_tensor.JsonPredictRequestFormat.ROW),
    }
    if baseline is not None:
      fns["baseline"] = lambda: decode(baseline)
      fns["base_encode"] = lambda: baseline.make_json_from_tensors(
          response.outputs, baseline.JsonPredictRequestFormat.ROW)
    best = _best_of(fns, _ROUNDS.value, _SECONDS.value)
    base = f"{best['baseline'] * 1e6:9.1f}" if baseline else f"{'-':>9}"
    base_encode = (f"{best['base_encode'] * 1e6:8.1f}" if baseline else
                   f"{'-':>8}")
    print(f"{rows:>5} {len(body) / 1024:8.1f} {best['decode'] * 1e6:9.1f} "
          f"{best['reference'] * 1e6:10.1f} {base} "
          f"{best['orjson'] * 1e6:8.1f} {best['predict'] * 1e6:8.1f} "
          f"{best['encode'] * 1e6:8.1f} {base_encode}")
  loader.unload()


if __name__ == "__main__":
  app.run(main)
