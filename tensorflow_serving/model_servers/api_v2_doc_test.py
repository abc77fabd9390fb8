"""Runs every curl example of docs/api_v2.md against a real MNIST server.

The tutorial's exporter trains and exports the MNIST model (on the real
MNIST files when $MNIST_DATA_DIR has them, else on synthetic digits); a
Server (this process, real gRPC and HTTP ports) serves it as the doc's
command line does. Then each ```shell block of the doc runs, in order, with
real curl, and its output is compared with the block that follows it
(test_util/doc_examples); the doc's port 8501 and model path /tmp/mnist
are replaced with the test's.

  python tensorflow_serving/model_servers/api_v2_doc_test.py --print_outputs
prints what each block printed, for updating the doc.
"""

import os
import tempfile

from absl import flags
from absl.testing import absltest

from tensorflow_serving.model_servers import server as server_lib
from tensorflow_serving.model_servers.test_util import doc_examples
from tensorflow_serving.model_servers.test_util import model_server_process

_PRINT_OUTPUTS = flags.DEFINE_bool(
    "print_outputs", False, "Print each example's output (to update the doc).")

_DOC_PORT = 8501
_DOC_MODEL_PATH = "/tmp/mnist"
_TRAINING_ITERATIONS = 200


class ApiV2DocTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.scratch = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
    cls.base_path = os.path.join(cls.scratch, "mnist")
    doc_examples.export_mnist(cls.scratch, cls.base_path,
                              _TRAINING_ITERATIONS)
    # As the doc's command line.
    cls.server = server_lib.Server()
    cls.server.build_and_start(server_lib.ServerOptions(
        port=model_server_process.free_port(),
        rest_api_port=model_server_process.free_port(), model_name="mnist",
        model_base_path=cls.base_path, rest_api_num_threads=4,
        grpc_max_threads=4))

  @classmethod
  def tearDownClass(cls):
    cls.server.stop()
    super().tearDownClass()

  def test_every_curl_example_runs_as_documented(self):
    with open(doc_examples.doc_path("api_v2.md")) as f:
      doc = f.read()
    doc_examples.run_doc_examples(
        self, doc, {
            f"localhost:{_DOC_PORT}": f"localhost:{self.server.rest_port}",
            _DOC_MODEL_PATH: self.base_path,
        }, os.path.join(self.scratch, "examples"), _PRINT_OUTPUTS.value,
        min_examples=10, required=f"localhost:{_DOC_PORT}")


if __name__ == "__main__":
  absltest.main()
