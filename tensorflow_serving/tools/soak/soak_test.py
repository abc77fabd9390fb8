"""Smoke test of the soak tool: a few hundred requests of its mix against
the built server; every outcome is one its kind may have."""

import io

from absl.testing import absltest

from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.tools.soak import soak


class SoakTest(absltest.TestCase):

  def test_a_short_soak_has_only_expected_outcomes(self):
    process, grpc_port, rest_port = soak.start_server(
        model_server_process.binary_path(), 1 << 20,
        self.create_tempdir().full_path)
    try:
      out = io.StringIO()
      counts, series = soak.soak(
          soak.Mix(grpc_port, rest_port, 1 << 20), process.pid, total=400,
          clients=4, report_every=200, seed=1, out=out)
    finally:
      process.terminate()
      process.wait(60)
    self.assertEqual(counts["UNEXPECTED"], 0, dict(counts))
    self.assertEqual(sum(n for k, n in counts.items() if "->" in k), 400)
    self.assertLen(series, 2)
    self.assertIn("RSS", out.getvalue())
    # Good and bad kinds both ran.
    self.assertTrue(any(k.startswith("rest predict -> 200") for k in counts))
    self.assertTrue(any("-> 413" in k for k in counts), dict(counts))


if __name__ == "__main__":
  absltest.main()
