"""PrometheusExporter: the server's metrics as a Prometheus text page.

Upstream's util/prometheus_exporter renders TensorFlow's monitoring registry;
ours renders util/metrics.REGISTRY through prometheus_client, the official
Python client, so the exposition format (escaping, histogram _bucket/_sum/
_count series, the +Inf bucket) is the library's, not hand-written. It lives
in model_servers/ because only this layer may depend on an HTTP/exposition
library; every other layer just records into util/metrics.

Names follow upstream: "/tensorflow/serving/request_count" is exported as
":tensorflow:serving:request_count" (':' is legal in Prometheus names), and a
counter keeps its name (no "_total" suffix), as upstream's page has it.
"""

import re

from prometheus_client import exposition
from prometheus_client import registry as prometheus_registry
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.core import Metric

from tensorflow_serving.util import metrics

# Where the page is served when MonitoringConfig leaves the path empty.
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def prometheus_name(name: str) -> str:
  """A TensorFlow metric name as upstream exports it: '/' becomes ':'."""
  return re.sub(r"[^a-zA-Z0-9_:]", "_", name.replace("/", ":"))


def _bucket_label(limit: float) -> str:
  # Upstream prints bucket limits with six significant digits.
  return "%.6g" % limit


class _Collector(prometheus_registry.Collector):
  """Bridges util/metrics to prometheus_client at scrape time."""

  def __init__(self, registry: metrics.Registry) -> None:
    self._registry = registry

  def collect(self):
    for metric in self._registry.metrics():
      name = prometheus_name(metric.name)
      if isinstance(metric, (metrics.Counter, metrics.Gauge)):
        family = Metric(name, metric.description, metric.kind)
        for labels, cell in metric.cells():
          family.add_sample(name, dict(zip(metric.label_names, labels)),
                            cell.value())
      else:
        family = HistogramMetricFamily(name, metric.description,
                                       labels=metric.label_names)
        les = [_bucket_label(le) for le in metric.bucket_limits] + ["+Inf"]
        for labels, cell in metric.cells():
          counts, total, _ = cell.snapshot()
          cumulative, running = [], 0
          for le, count in zip(les, counts):
            running += count
            cumulative.append((le, running))
          family.add_metric(list(labels), cumulative, total)
      yield family


class PrometheusExporter:
  """Renders a metrics registry as a Prometheus text exposition page.

  Thread-safe; generate_page() may be called concurrently from HTTP threads.
  """

  def __init__(self, registry: metrics.Registry = metrics.REGISTRY) -> None:
    self._registry = prometheus_registry.CollectorRegistry(auto_describe=False)
    self._registry.register(_Collector(registry))
    self._source = registry

  def generate_page(self) -> bytes:
    """The page, in Prometheus' text format."""
    page = exposition.generate_latest(self._registry).decode("utf-8")
    # prometheus_client names a counter family "<name>_total" in its HELP and
    # TYPE lines; upstream's page (and dashboards built on it) use the plain
    # name, which is also what the samples carry.
    for metric in self._source.metrics():
      if isinstance(metric, metrics.Counter):
        name = prometheus_name(metric.name)
        page = page.replace(f"# HELP {name}_total ", f"# HELP {name} ")
        page = page.replace(f"# TYPE {name}_total counter",
                            f"# TYPE {name} counter")
    return page.encode("utf-8")
