"""Tests for PrometheusExporter: upstream's names and a valid text page."""

from absl.testing import absltest
from prometheus_client import parser

from tensorflow_serving.model_servers import prometheus_exporter
from tensorflow_serving.util import metrics


class PrometheusExporterTest(absltest.TestCase):

  def test_names_use_colons(self):
    self.assertEqual(
        prometheus_exporter.prometheus_name("/tensorflow/serving/request_count"),
        ":tensorflow:serving:request_count")

  def test_counter_and_histogram_page(self):
    registry = metrics.Registry()
    counter = registry.register(metrics.Counter(
        "/tensorflow/serving/request_count", "The total number of requests.",
        ("model_name", "status")))
    sampler = registry.register(metrics.Sampler(
        "/tensorflow/serving/request_latency", "Latency.",
        ("model_name", "API", "entrypoint"), metrics.LATENCY_BUCKETS))
    counter.get_cell("mnist", "OK").increment_by(3)
    sampler.get_cell("mnist", "predict", "REST").add(15)
    sampler.get_cell("mnist", "predict", "REST").add(100)
    page = prometheus_exporter.PrometheusExporter(registry).generate_page()
    text = page.decode()
    self.assertIn("# TYPE :tensorflow:serving:request_count counter\n", text)
    self.assertIn(
        ':tensorflow:serving:request_count{model_name="mnist",status="OK"} 3',
        text)
    self.assertIn("# TYPE :tensorflow:serving:request_latency histogram", text)
    self.assertIn(
        ':tensorflow:serving:request_latency_bucket{API="predict",'
        'entrypoint="REST",le="10",model_name="mnist"} 0.0', text)
    self.assertIn('le="18",model_name="mnist"} 1.0', text)
    self.assertIn('le="+Inf",model_name="mnist"} 2.0', text)
    self.assertIn(":tensorflow:serving:request_latency_sum{", text)
    self.assertNotIn("_total", text)
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    self.assertEqual(families[":tensorflow:serving:request_count"].type,
                     "counter")
    buckets = [s for s in families[":tensorflow:serving:request_latency"]
               .samples if s.name.endswith("_bucket")]
    self.assertLen(buckets, 34)

  def test_gauge_page(self):
    registry = metrics.Registry()
    gauge = registry.register(metrics.Gauge(
        "/tensorflow/serving/model_version_state", "State.",
        ("model_name", "version")))
    gauge.get_cell("mnist", "1").set(30)
    text = prometheus_exporter.PrometheusExporter(registry).generate_page(
    ).decode()
    self.assertIn("# TYPE :tensorflow:serving:model_version_state gauge\n",
                  text)
    self.assertIn(':tensorflow:serving:model_version_state{model_name="mnist",'
                  'version="1"} 30.0', text)
    gauge.remove("mnist", "1")
    text = prometheus_exporter.PrometheusExporter(registry).generate_page(
    ).decode()
    self.assertNotIn('version="1"', text)

  def test_default_registry_has_upstream_metrics(self):
    text = prometheus_exporter.PrometheusExporter().generate_page().decode()
    for name in (":tensorflow:serving:request_count",
                 ":tensorflow:serving:request_latency",
                 ":tensorflow:cc:saved_model:load_attempt_count",
                 ":tensorflow:cc:saved_model:load_latency"):
      self.assertIn(f"# TYPE {name} ", text)


if __name__ == "__main__":
  absltest.main()
