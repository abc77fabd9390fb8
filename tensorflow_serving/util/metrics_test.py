"""Tests for the server's metrics library and recording functions."""

import threading

from absl.testing import absltest

from tensorflow_serving.util import metrics
from tensorflow_serving.util import status


class MetricsTest(absltest.TestCase):

  def test_exponential_buckets_match_upstream(self):
    limits = metrics.LATENCY_BUCKETS
    self.assertLen(limits, 33)
    self.assertEqual(limits[0], 10)
    self.assertAlmostEqual(limits[1], 18)
    self.assertAlmostEqual(limits[2], 32.4)
    self.assertAlmostEqual(limits[-1], 10 * 1.8**32, delta=1)

  def test_counter_cells_per_label_tuple(self):
    counter = metrics.Counter("/test/counter", "doc", ("a", "b"))
    counter.get_cell("x", "y").increment_by(2)
    counter.get_cell("x", "y").increment_by()
    counter.get_cell("x", "z").increment_by(5)
    self.assertEqual(dict((k, c.value()) for k, c in counter.cells()),
                     {("x", "y"): 3, ("x", "z"): 5})
    with self.assertRaises(ValueError):
      counter.get_cell("only-one")

  def test_sampler_buckets_sum_count(self):
    sampler = metrics.Sampler("/test/sampler", "doc", (), [10, 20])
    for value in (5, 10, 15, 25, 1000):
      sampler.get_cell().add(value)
    buckets, total, count = sampler.get_cell().snapshot()
    # As TensorFlow's Histogram: a value equal to a limit goes above it.
    self.assertEqual(buckets, [1, 2, 2])
    self.assertEqual(total, 1055)
    self.assertEqual(count, 5)

  def test_concurrent_increments_are_not_lost(self):
    counter = metrics.Counter("/test/concurrent", "doc", ())

    def work():
      for _ in range(2000):
        counter.get_cell().increment_by(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    self.assertEqual(counter.get_cell().value(), 16000)

  def test_registry_refuses_duplicates(self):
    registry = metrics.Registry()
    registry.register(metrics.Counter("/x", "doc", ()))
    with self.assertRaises(ValueError):
      registry.register(metrics.Counter("/x", "doc", ()))
    self.assertIsNotNone(registry.get("/x"))

  def test_record_request_counts_all_and_times_successes(self):
    ok = metrics.REQUEST_COUNT.get_cell("rr", "OK", "Predict", metrics.GRPC,
                                        "3", "sig")
    missing = metrics.REQUEST_COUNT.get_cell(
        "rr", "NOT_FOUND", "Predict", metrics.GRPC, metrics.UNKNOWN,
        metrics.UNKNOWN)
    latency = metrics.REQUEST_LATENCY.get_cell("rr", "Predict", metrics.GRPC,
                                               "3", "sig")
    before = (ok.value(), missing.value(), latency.snapshot()[2])
    metrics.record_request("rr", "3", "sig", "Predict", metrics.GRPC,
                           status.Code.OK, 120)
    metrics.record_request("rr", metrics.UNKNOWN, metrics.UNKNOWN, "Predict",
                           metrics.GRPC, status.Code.NOT_FOUND, 50)
    self.assertEqual(ok.value() - before[0], 1)
    self.assertEqual(missing.value() - before[1], 1)
    self.assertEqual(latency.snapshot()[2] - before[2], 1)

  def test_gauge_set_and_remove(self):
    registry = metrics.Registry()
    gauge = registry.register(metrics.Gauge("/g", "doc", ("model", "v")))
    gauge.get_cell("m", "1").set(30)
    gauge.get_cell("m", "1").set(40)
    gauge.get_cell("m", 2).set(10)  # Label values are kept as strings.
    self.assertEqual([(labels, cell.value()) for labels, cell in gauge.cells()],
                     [(("m", "1"), 40), (("m", "2"), 10)])
    gauge.remove("m", 1)
    gauge.remove("m", "9")  # None: nothing happens.
    self.assertEqual([labels for labels, _ in gauge.cells()], [("m", "2")])

  def test_version_state_and_load_latency(self):
    metrics.record_version_state("vs", 3, 30)
    metrics.record_version_load_latency("vs", 3, 1234.9)
    self.assertEqual(metrics.MODEL_VERSION_STATE.get_cell("vs", "3").value(),
                     30)
    self.assertEqual(
        metrics.MODEL_VERSION_LOAD_LATENCY.get_cell("vs", "3").value(), 1234)
    metrics.remove_version("vs", 3)
    self.assertNotIn(("vs", "3"),
                     dict(metrics.MODEL_VERSION_STATE.cells()))
    self.assertNotIn(("vs", "3"),
                     dict(metrics.MODEL_VERSION_LOAD_LATENCY.cells()))

  def test_record_load_attempt(self):
    metrics.record_load_attempt("/m/1", True, 1500.7)
    metrics.record_load_attempt("/m/1", False)
    self.assertEqual(
        metrics.LOAD_ATTEMPT_COUNT.get_cell("/m/1", "success").value(), 1)
    self.assertEqual(
        metrics.LOAD_ATTEMPT_COUNT.get_cell("/m/1", "fail").value(), 1)
    self.assertEqual(metrics.LOAD_LATENCY.get_cell("/m/1").value(), 1500)

  def test_record_batch(self):
    metrics.record_batch("bm", "op", 3, 4)
    metrics.record_queuing_latency("pool", 12.0)
    self.assertEqual(
        metrics.BATCHING_PADDING_SIZE.get_cell("bm", "4").snapshot()[1], 1)
    self.assertEqual(
        metrics.BATCHING_QUEUING_LATENCY.get_cell("pool").snapshot()[2], 1)


if __name__ == "__main__":
  absltest.main()
