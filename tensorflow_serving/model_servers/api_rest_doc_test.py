"""Runs every curl example of docs/api_rest.md against a real MNIST server.

The tutorial's exporter (example/mnist_saved_model.py) trains and exports the
MNIST model (on the real MNIST files when $MNIST_DATA_DIR has them, else on
synthetic digits); a real ServerCore loads it and HttpRestServer serves it
with the options the doc's server command sets. Then each ```shell block of
the doc runs, in order, with real curl, and its output is compared with the
block that follows it (test_util/doc_examples).

  python tensorflow_serving/model_servers/api_rest_doc_test.py --print_outputs
prints what each block printed, for updating the doc.
"""

import os
import tempfile

from absl import flags
from absl.testing import absltest

from tensorflow_serving.config import monitoring_config_pb2
from tensorflow_serving.model_servers import data_plane
from tensorflow_serving.model_servers import http_server
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.model_servers.test_util import doc_examples
from tensorflow_serving.model_servers.test_util import server_core_test_util
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter

_PRINT_OUTPUTS = flags.DEFINE_bool(
    "print_outputs", False, "Print each example's output (to update the doc).")

_DOC_PORT = 8501
_TRAINING_ITERATIONS = 200


class ApiRestDocTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.scratch = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
    base_path = os.path.join(cls.scratch, "mnist")
    doc_examples.export_mnist(cls.scratch, base_path, _TRAINING_ITERATIONS)
    config = server_core_test_util.model_config(
        {"mnist": base_path}, platform=server_core_lib.TENSORFLOW_MODEL_PLATFORM)
    cls.core = server_core_lib.ServerCore.create(server_core_test_util.options(
        config, platform_source_adapters={
            server_core_lib.TENSORFLOW_MODEL_PLATFORM:
                saved_model_bundle_source_adapter.SavedModelBundleSourceAdapter
        }))
    # As the doc's command line: --monitoring_config_file enabling Prometheus.
    monitoring = monitoring_config_pb2.MonitoringConfig()
    monitoring.prometheus_config.enable = True
    cls.server = http_server.HttpRestServer(
        data_plane.DataPlane(cls.core), http_server.HttpRestServer.Options(
            num_threads=4, monitoring_config=monitoring, host="127.0.0.1"))
    cls.port = cls.server.start(0)

  @classmethod
  def tearDownClass(cls):
    cls.server.stop()
    cls.core.stop()
    super().tearDownClass()

  def test_every_curl_example_runs_as_documented(self):
    with open(doc_examples.doc_path("api_rest.md")) as f:
      doc = f.read()
    doc_examples.run_doc_examples(
        self, doc, {f"localhost:{_DOC_PORT}": f"localhost:{self.port}"},
        os.path.join(self.scratch, "examples"), _PRINT_OUTPUTS.value,
        min_examples=10, required=f"localhost:{_DOC_PORT}")


if __name__ == "__main__":
  absltest.main()
