"""Tests for the benchmark tool: target parsing, the table, a smoke run.

The smoke run starts the floor baselines and the naive gRPC server for half a
second each and checks that every request succeeded and every figure was
filled in. It checks the tool works, not how fast anything is.
"""

import json
import os
import sys
from unittest import mock

from absl import flags
from absl.testing import absltest
from absl.testing import flagsaver

from tensorflow_serving.tools.benchmark import benchmark
from tensorflow_serving.tools.benchmark import load_generator

FLAGS = flags.FLAGS


def _result(target, qps, cpu, protocol="grpc"):
  return benchmark.Result(
      target=target, protocol=protocol, concurrency=16, rows=1, duration_s=1,
      requests=int(qps), qps=qps, rows_per_s=qps, p50_ms=1, p90_ms=2,
      p99_ms=3, errors={}, server_cpu_us_per_request=cpu,
      client_cpu_us_per_request=10)


class ParseTargetTest(absltest.TestCase):

  def test_kinds(self):
    t = benchmark.parse_target("naive_rest")
    self.assertEqual((t.protocol, t.kind, t.pid), ("rest", "naive_rest", None))
    self.assertEqual(benchmark.parse_target("server_grpc").protocol, "grpc")

  def test_external(self):
    t = benchmark.parse_target("grpc:10.0.0.1:8500:4242")
    self.assertEqual((t.protocol, t.kind, t.host, t.port, t.pid),
                     ("grpc", "external", "10.0.0.1", 8500, 4242))
    self.assertIsNone(benchmark.parse_target("rest:localhost:8501").pid)

  def test_server_variant(self):
    t = benchmark.parse_target("server_grpc:batching")
    self.assertEqual((t.spec, t.protocol, t.kind, t.variant),
                     ("server_grpc:batching", "grpc", "server_grpc",
                      "batching"))
    self.assertEqual(benchmark.parse_target("server_rest:a-1").protocol,
                     "rest")
    self.assertEqual(benchmark.parse_target("server_grpc").variant, "")

  def test_v2_kinds(self):
    t = benchmark.parse_target("server_v2_rest_binary")
    self.assertEqual((t.protocol, t.api, t.binary), ("rest", "v2", True))
    t = benchmark.parse_target("mlserver_v2_grpc")
    self.assertEqual((t.protocol, t.api, t.binary), ("grpc", "v2", False))
    t = benchmark.parse_target("server_v2_grpc:batching")
    self.assertEqual((t.kind, t.variant, t.api),
                     ("server_v2_grpc", "batching", "v2"))
    t = benchmark.parse_target("v2rest_binary:localhost:8501:9")
    self.assertEqual((t.protocol, t.api, t.binary, t.port, t.pid),
                     ("rest", "v2", True, 8501, 9))
    self.assertEqual(benchmark.parse_target("server_grpc").api, "tfs")

  def test_bad(self):
    for spec in ("fast_grpc", "grpc:localhost", "rest:h:port",
                 "server_grpc:", "server_grpc:a b", "floor_grpc:x"):
      with self.assertRaises(ValueError):
        benchmark.parse_target(spec)

  def test_server_variants(self):
    self.assertEqual(
        benchmark.parse_server_variants(
            ["batching=--enable_batching --grpc_max_threads=64", "plain="]),
        {"batching": ["--enable_batching", "--grpc_max_threads=64"],
         "plain": []})
    for values in (["nameless"], ["a b=--x"], ["a=--x", "a=--y"]):
      with self.assertRaises(ValueError):
        benchmark.parse_server_variants(values)


class ShorthandTest(absltest.TestCase):

  @flagsaver.flagsaver(compare=["floor_grpc", "naive_rest"])
  def test_compare(self):
    self.assertEqual(benchmark.target_specs(), ["floor_grpc", "naive_rest"])

  @flagsaver.flagsaver(target="localhost:8501", protocol="rest",
                       server_pid=77)
  def test_target(self):
    self.assertEqual(benchmark.target_specs(), ["rest:localhost:8501:77"])

  @flagsaver.flagsaver(baseline="naive_grpc")
  def test_baseline(self):
    self.assertEqual(benchmark.target_specs(), ["naive_grpc"])


class TableTest(absltest.TestCase):

  def test_ratios_against_the_floor_of_the_same_protocol(self):
    table = benchmark.format_table([
        _result("floor_grpc", 10000, 100),
        _result("naive_grpc", 2500, 500),
        _result("naive_rest", 1000, 900, protocol="rest"),
    ])
    lines = table.splitlines()
    self.assertLen(lines, 5)
    naive = lines[3].split()
    self.assertEqual(naive[0], "naive_grpc")
    self.assertEqual(naive[-2:], ["0.25", "5.00"])
    self.assertEqual(lines[4].split()[-2:], ["-", "-"])  # no REST floor

  def test_summarize(self):
    load = load_generator.LoadResult(
        duration_s=2.0, latencies=[0.001, 0.003, 0.002, 0.004],
        errors={"UNAVAILABLE": 1}, client_cpu_seconds=0.0002)
    target = benchmark.parse_target("floor_grpc")
    r = benchmark.summarize(target, 4, 8, load, server_cpu_s=0.0004)
    self.assertEqual((r.requests, r.qps, r.rows_per_s), (4, 2.0, 16.0))
    self.assertEqual((r.p50_ms, r.p99_ms), (2.0, 4.0))
    self.assertAlmostEqual(r.server_cpu_us_per_request, 100.0)
    self.assertAlmostEqual(r.client_cpu_us_per_request, 50.0)
    self.assertEqual(r.errors, {"UNAVAILABLE": 1})


class PayloadTest(absltest.TestCase):

  @flagsaver.flagsaver(model_name="m", signature_name="sig",
                       input_name="images")
  def test_v2_payloads(self):
    from tensorflow_serving.apis import grpc_service_pb2  # pylint: disable=g-import-not-at-top
    request = grpc_service_pb2.ModelInferRequest.FromString(
        benchmark.v2_grpc_payload(3))
    self.assertEqual((request.model_name, list(request.inputs[0].shape)),
                     ("m", [3, 784]))
    self.assertLen(request.raw_input_contents[0], 3 * 784 * 4)
    self.assertEqual(request.parameters["signature_name"].string_param, "sig")
    binary = benchmark.v2_rest_payload("h", 1, 2, binary=True)
    head, _, body = binary.partition(b"\r\n\r\n")
    self.assertIn(b"POST /v2/models/m/infer HTTP/1.1", head)
    length = int(head.split(b"Inference-Header-Content-Length: ")[1]
                 .split(b"\r\n")[0])
    header = json.loads(body[:length])
    self.assertTrue(header["parameters"]["binary_data_output"])
    self.assertLen(body[length:], 2 * 784 * 4)
    plain = benchmark.v2_rest_payload("h", 1, 2, binary=False)
    doc = json.loads(plain.partition(b"\r\n\r\n")[2])
    self.assertLen(doc["inputs"][0]["data"], 2 * 784)

  def test_medians(self):
    medians = benchmark.median_results([
        _result("a", 100, 10), _result("a", 300, 30), _result("a", 200, 50)])
    self.assertLen(medians, 1)
    self.assertEqual((medians[0].qps, medians[0].server_cpu_us_per_request),
                     (200, 30))


class SmokeTest(absltest.TestCase):

  def test_baselines_answer_without_errors(self):
    out = os.path.join(self.create_tempdir().full_path, "results.json")
    argv = ["benchmark",
            "--targets=floor_grpc,floor_rest,naive_grpc",
            "--concurrency=2", "--rows=1,3", "--duration_s=0.5",
            "--warmup_s=0.3", f"--json_output={out}",
            f"--model_base_path={self.create_tempdir().full_path}/model"]
    with mock.patch.object(sys, "argv", argv), flagsaver.flagsaver():
      FLAGS(argv)
      from tensorflow_serving.tools.benchmark import export_model  # pylint: disable=g-import-not-at-top
      export_model.export(FLAGS.model_base_path)
      benchmark.main(["benchmark"])
    with open(out) as f:
      results = json.load(f)
    self.assertEqual([(r["target"], r["rows"]) for r in results],
                     [("floor_grpc", 1), ("floor_grpc", 3),
                      ("floor_rest", 1), ("floor_rest", 3),
                      ("naive_grpc", 1), ("naive_grpc", 3)])
    for r in results:
      self.assertGreater(r["requests"], 0, r)
      self.assertEqual(r["errors"], {}, r)
      self.assertGreater(r["server_cpu_us_per_request"], 0, r)


if __name__ == "__main__":
  absltest.main()
