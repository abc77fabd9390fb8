"""--restricted_api on the REST port: URL -> API group, and the 403.

ApiGroupTest checks the routing table (http_server.api_group) on its own.
RestRestrictedApiTest runs an in-process Server whose every group is
guarded by a header of its own, and calls each group's /v1 and /v2 URLs
over a real socket: without the header, with a wrong value and with another
group's header the answer is 403 {"error": <the gRPC side's message>}
before any work (a body that would not even inflate is not looked at), and
is counted with entrypoint REST; with the header (its name in any case) the
call is served; the CORS preflight and unknown paths need nothing.
"""

import http.client
import json
import os

from absl.testing import absltest

from tensorflow_serving.model_servers import http_server
from tensorflow_serving.model_servers import restricted_api
from tensorflow_serving.model_servers import server as server_lib
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import metrics

_G = restricted_api.ApiGroup
_METRICS_PATH = "/monitoring/prometheus/metrics"
# Each group its own header, so a URL in the wrong group cannot pass.
_HEADERS = {
    _G.INFERENCE: ("x-api-key", "k1"),
    _G.METADATA: ("x-meta-key", "m2"),
    _G.MODEL_MANAGEMENT: ("x-admin-key", "s3cret"),
    _G.METRICS: ("x-metrics-key", "p4"),
    _G.HEALTH: ("x-health-key", "h5"),
}
_FLAG = ";".join(f"{group.value}:{key}={value}"
                 for group, (key, value) in _HEADERS.items())
_V2_INFER = json.dumps({"inputs": [{"name": "x", "shape": [1, 1],
                                    "datatype": "FP32", "data": [1.0]}]})

# method, path, body, group, the status once allowed.
_CALLS = (
    ("POST", "/v1/models/half:predict", '{"instances": [[1.0]]}',
     _G.INFERENCE, 200),
    ("POST", "/v1/models/half/versions/123:predict", "{}", _G.INFERENCE, 404),
    ("POST", "/v1/models/half:classify", "{}", _G.INFERENCE, 400),
    ("POST", "/v1/models/half/labels/stable:regress", "{}", _G.INFERENCE,
     400),
    ("POST", "/v2/models/half/infer", _V2_INFER, _G.INFERENCE, 200),
    ("POST", "/v2/models/half/versions/123/infer", _V2_INFER, _G.INFERENCE,
     404),
    ("GET", "/v1/models/half", "", _G.METADATA, 200),
    ("GET", "/v1/models/half/metadata", "", _G.METADATA, 200),
    ("GET", "/v1/models", "", _G.METADATA, 200),
    ("GET", "/v2", "", _G.METADATA, 200),
    ("GET", "/v2/models/half", "", _G.METADATA, 200),
    ("POST", "/v2/repository/index", "{}", _G.METADATA, 200),
    ("POST", "/v2/repository/models/nope/load", "{}", _G.MODEL_MANAGEMENT,
     None),
    ("POST", "/v2/repository/models/nope/unload", "{}", _G.MODEL_MANAGEMENT,
     None),
    ("GET", _METRICS_PATH, "", _G.METRICS, 200),
    ("GET", "/v2/health/live", "", _G.HEALTH, 200),
    ("GET", "/v2/health/ready", "", _G.HEALTH, 200),
    ("GET", "/v2/models/half/ready", "", _G.HEALTH, 200),
    # URLs that name no call: the strictest group, then the handler's 400.
    ("GET", "/v1/nonsense", "", _G.MODEL_MANAGEMENT, 400),
    ("POST", "/v2/models/half/ready", "", _G.MODEL_MANAGEMENT, 400),
)


def _message(group: restricted_api.ApiGroup) -> str:
  return (f"The {group.value} API is restricted: the request must carry the "
          f"header '{_HEADERS[group][0]}' with the value configured by "
          "--restricted_api")


class ApiGroupTest(absltest.TestCase):

  def test_routing(self):
    for method, path, _, group, _ in _CALLS:
      self.assertEqual(
          http_server.api_group(method, path, _METRICS_PATH), group, path)
    cases = (
        # The /v1 URLs match without regard to case, as the handler's.
        ("POST", "/V1/MODELS/half:PREDICT", _G.INFERENCE),
        ("GET", "/v1/Models/half/Versions/2", _G.METADATA),
        # A verb the handler does not serve there.
        ("GET", "/v1/models/half:predict", _G.MODEL_MANAGEMENT),
        ("POST", "/v1/models/half", _G.MODEL_MANAGEMENT),
        ("HEAD", "/v2/health/ready", _G.MODEL_MANAGEMENT),
        ("DELETE", "/v2/models/half", _G.MODEL_MANAGEMENT),
        ("POST", _METRICS_PATH, _G.METRICS),
        # Open: the CORS preflight, and what is a plain 404.
        ("OPTIONS", "/v1/models/half:predict", None),
        ("OPTIONS", "/v2/models/half/infer", None),
        ("GET", "/", None),
        ("GET", "/v3/models", None),
        ("GET", "/v10/models/half", None),
    )
    for method, path, group in cases:
      self.assertEqual(
          http_server.api_group(method, path, _METRICS_PATH), group,
          f"{method} {path}")
    # Without the metrics page or the V2 handler, those URLs are 404s.
    self.assertIsNone(http_server.api_group("GET", _METRICS_PATH))
    self.assertIsNone(
        http_server.api_group("GET", "/v2/health/ready", v2=False))


class RestRestrictedApiTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    base = half_plus_two.fresh_dir("rest_restricted")
    half_plus_two.write_tf1(os.path.join(base, "1"))
    monitoring = os.path.join(base, "monitoring.config")
    with open(monitoring, "w") as f:
      f.write("prometheus_config { enable: true }")
    cls.server = server_lib.Server()
    cls.server.build_and_start(server_lib.ServerOptions(
        port=model_server_process.free_port(),
        rest_api_port=model_server_process.free_port(),
        model_name="half", model_base_path=base,
        monitoring_config_file=monitoring, rest_api_enable_cors_support=True,
        restricted_api=_FLAG))

  @classmethod
  def tearDownClass(cls):
    cls.server.stop()
    super().tearDownClass()

  def call(self, method: str, path: str, body: str = "",
           headers: dict[str, str] = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("localhost", self.server.rest_port,
                                      timeout=60)
    try:
      conn.request(method, path, body=body.encode() or None,
                   headers=headers or {})
      response = conn.getresponse()
      return response.status, response.read()
    finally:
      conn.close()

  def test_each_group_needs_its_header(self):
    for method, path, body, group, allowed in _CALLS:
      name = f"{method} {path}"
      key, value = _HEADERS[group]
      other = _G.HEALTH if group is not _G.HEALTH else _G.METRICS
      cell = restricted_api.DENIED_COUNT.get_cell(group.value, metrics.REST)
      refusals = (
          {},  # no header
          {key: value + "x"},  # a wrong value
          {_HEADERS[other][0]: _HEADERS[other][1]},  # another group's
      )
      for headers in refusals:
        before = cell.value()
        status, reply = self.call(method, path, body, headers)
        self.assertEqual(status, 403, f"{name} {headers}: {reply!r}")
        self.assertEqual(json.loads(reply), {"error": _message(group)}, name)
        self.assertEqual(cell.value(), before + 1, name)
      # The header's name in another case, as HTTP allows.
      status, reply = self.call(method, path, body, {key.upper(): value})
      self.assertNotEqual(status, 403, f"{name}: {reply!r}")
      if allowed is not None:
        self.assertEqual(status, allowed, f"{name}: {reply!r}")

  def test_refused_before_the_body_is_read(self):
    served = self.served()
    headers = {"Content-Encoding": "gzip"}
    status, reply = self.call("POST", "/v1/models/half:predict",
                              "not gzip at all", headers)
    self.assertEqual(status, 403, reply)
    self.assertEqual(json.loads(reply), {"error": _message(_G.INFERENCE)})
    self.assertEqual(self.served(), served)  # Nothing ran.
    # Allowed, the same body is a decoding error.
    headers["x-api-key"] = "k1"
    status, _ = self.call("POST", "/v1/models/half:predict",
                          "not gzip at all", headers)
    self.assertEqual(status, 400)

  def served(self) -> int:
    return sum(cell.value() for labels, cell in metrics.REQUEST_COUNT.cells()
               if labels[:2] == ("half", "OK"))

  def test_preflight_and_unknown_paths_are_open(self):
    status, _ = self.call("OPTIONS", "/v1/models/half:predict",
                          headers={"Origin": "http://example.com"})
    self.assertEqual(status, 200)
    status, _ = self.call("OPTIONS", "/v2/models/half/infer",
                          headers={"Origin": "http://example.com"})
    self.assertEqual(status, 200)
    status, _ = self.call("GET", "/nothing/here")
    self.assertEqual(status, 404)

  def test_refusal_carries_cors_headers(self):
    conn = http.client.HTTPConnection("localhost", self.server.rest_port,
                                      timeout=60)
    self.addCleanup(conn.close)
    conn.request("GET", "/v1/models/half")
    response = conn.getresponse()
    response.read()
    self.assertEqual(response.status, 403)
    self.assertEqual(response.getheader("Content-Type"), "application/json")
    self.assertEqual(response.getheader("Access-Control-Allow-Origin"), "*")
    # The connection stays usable.
    conn.request("GET", "/v1/models/half", headers={"x-meta-key": "m2"})
    response = conn.getresponse()
    response.read()
    self.assertEqual(response.status, 200)


if __name__ == "__main__":
  absltest.main()
