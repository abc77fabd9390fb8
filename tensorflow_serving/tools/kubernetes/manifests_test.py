"""The Kubernetes and KServe manifests: valid, and consistent with each other.

Every Kubernetes object is validated strictly (unknown fields are errors)
against the schemas of the oldest and the newest Kubernetes this is meant
for, with kubernetes-validate, which ships Kubernetes' OpenAPI schemas (no
cluster, no network). KServe's kinds have no schema there: their containers
are validated as a Pod's, and the rest is checked against the facts of
KServe's kserve-tensorflow-serving runtime. What makes the manifests work
together (ports, names, probes, grace period, image name) is checked too;
that the image really behaves as they say is //tensorflow_serving/tools/
docker:image_test.
"""

import glob
import os
import re

from absl.testing import absltest
import kubernetes_validate
import yaml

_WORKSPACE = "tf_serving"
_KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
_KSERVE_KINDS = ("ClusterServingRuntime", "InferenceService")
# The image tools/build_image.sh builds.
_IMAGE = "localhost/tensorflow-serving-py:latest"
# The server's drain bound (model_servers/server.py, http_server.py: 10 s
# for in-flight requests, 5 more for the REST loop to close): the grace
# period must cover it after the preStop pause.
_SERVER_DRAIN_SECONDS = 15
# KServe's kserve-tensorflow-serving runtime, as KServe ships it.
_KSERVE_ARGS = [
    "--model_name={{.Name}}",
    "--port=9000",
    "--rest_api_port=8080",
    "--model_base_path=/mnt/models",
    "--rest_api_timeout_in_ms=60000",
]


def _runfiles(*parts: str) -> str:
  return os.path.join(os.environ["TEST_SRCDIR"],
                      os.environ.get("TEST_WORKSPACE", _WORKSPACE), *parts)


def _manifest_dir() -> str:
  return _runfiles("tensorflow_serving", "tools", "kubernetes")


def load(relative_path: str) -> list[dict]:
  """The YAML documents of one manifest file (relative to kubernetes/)."""
  with open(os.path.join(_manifest_dir(), relative_path)) as f:
    return [doc for doc in yaml.safe_load_all(f) if doc]


def load_one(relative_path: str) -> dict:
  docs = load(relative_path)
  if len(docs) != 1:
    raise AssertionError(f"{relative_path}: {len(docs)} documents, want 1")
  return docs[0]


def _flag(args: list[str], name: str) -> str:
  values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
  if len(values) != 1:
    raise AssertionError(f"--{name} given {len(values)} times in {args}")
  return values[0]


class ManifestsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    root = _manifest_dir()
    self.files = sorted(
        os.path.relpath(p, root)
        for p in glob.glob(os.path.join(root, "**", "*.yaml"), recursive=True))

  def test_there_are_manifests(self):
    for name in ("deployment.yaml", "service.yaml", "hpa.yaml",
                 "models-pvc.yaml", "s3/deployment.yaml", "s3/secret.yaml",
                 "autoscaling/hpa-requests.yaml",
                 "kserve/cluster-serving-runtime.yaml",
                 "kserve/inference-service.yaml"):
      self.assertIn(name, self.files)

  def test_every_kubernetes_object_validates_strictly(self):
    validated = 0
    for name in self.files:
      for doc in load(name):
        if doc["kind"] in _KSERVE_KINDS:
          continue
        for version in _KUBERNETES_VERSIONS:
          with self.subTest(file=name, kind=doc["kind"], version=version):
            kubernetes_validate.validate(doc, version, strict=True)
            validated += 1
    self.assertGreaterEqual(validated, 7 * len(_KUBERNETES_VERSIONS))

  def test_validation_catches_a_bad_field(self):
    # The check above can fail: a misspelt field is an error.
    doc = load_one("deployment.yaml")
    doc["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with self.assertRaises(kubernetes_validate.ValidationError):
      kubernetes_validate.validate(doc, _KUBERNETES_VERSIONS[-1], strict=True)

  def test_kserve_containers_validate_as_a_pods(self):
    for name in self.files:
      for doc in load(name):
        if doc["kind"] != "ClusterServingRuntime":
          continue
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "runtime"},
               "spec": {"containers": doc["spec"]["containers"]}}
        for version in _KUBERNETES_VERSIONS:
          with self.subTest(file=name, version=version):
            kubernetes_validate.validate(pod, version, strict=True)

  def test_cluster_serving_runtime_is_a_drop_in_for_kserves(self):
    runtime = load_one("kserve/cluster-serving-runtime.yaml")
    self.assertEqual(runtime["apiVersion"], "serving.kserve.io/v1alpha1")
    self.assertEqual(runtime["metadata"]["name"], "kserve-tensorflow-serving")
    spec = runtime["spec"]
    self.assertEqual(
        sorted((f["name"], f["version"], f["autoSelect"], f["priority"])
               for f in spec["supportedModelFormats"]),
        [("tensorflow", "1", True, 2), ("tensorflow", "2", True, 2)])
    self.assertContainsSubset(["v1", "grpc-v1", "v2", "grpc-v2"],
                              spec["protocolVersions"])
    (container,) = spec["containers"]
    self.assertEqual(container["name"], "kserve-container")
    self.assertEqual(container["image"], _IMAGE)
    self.assertEqual(container["command"], ["/usr/bin/tensorflow_model_server"])
    self.assertEqual(container["args"][:len(_KSERVE_ARGS)], _KSERVE_ARGS)
    # The metrics annotations point at the REST port, and the added flag
    # turns the page on (image_test proves the page answers there).
    self.assertEqual(spec["annotations"]["prometheus.kserve.io/port"],
                     _flag(container["args"], "rest_api_port"))
    self.assertEqual(spec["annotations"]["prometheus.kserve.io/path"],
                     "/metrics")
    self.assertEqual(_flag(container["args"], "monitoring_config_file"),
                     "/etc/tensorflow_serving/monitoring.config")
    security = container["securityContext"]
    self.assertEqual(security["runAsUser"], 1000)
    self.assertTrue(security["runAsNonRoot"])
    self.assertFalse(security["allowPrivilegeEscalation"])
    self.assertFalse(security["privileged"])
    self.assertEqual(security["capabilities"], {"drop": ["ALL"]})

  def test_inference_service_picks_the_runtime_by_format(self):
    service = load_one("kserve/inference-service.yaml")
    self.assertEqual(service["apiVersion"], "serving.kserve.io/v1beta1")
    model = service["spec"]["predictor"]["model"]
    self.assertEqual(model["modelFormat"]["name"], "tensorflow")
    self.assertRegex(model["storageUri"], r"^(s3|gs|pvc)://")

  def _deployments(self) -> dict[str, dict]:
    return {name: load_one(name)
            for name in ("deployment.yaml", "s3/deployment.yaml")}

  def test_deployments_run_the_image_like_upstreams_with_probes(self):
    service = load_one("service.yaml")
    for name, deployment in self._deployments().items():
      with self.subTest(file=name):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        self.assertEqual(container["image"], _IMAGE)
        self.assertNotIn("command", container)  # The image's entrypoint.
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        self.assertEqual(ports, {"grpc": 8500, "http": 8501})
        self.assertEqual(
            {p["name"]: (p["port"], p["targetPort"])
             for p in service["spec"]["ports"]},
            {"grpc": (8500, "grpc"), "http": (8501, "http")})
        self.assertEqual(service["spec"]["selector"],
                         deployment["spec"]["selector"]["matchLabels"])
        self.assertEqual(
            deployment["spec"]["template"]["metadata"]["labels"],
            deployment["spec"]["selector"]["matchLabels"])
        # Model-independent health on the REST port.
        self.assertEqual(container["readinessProbe"]["httpGet"],
                         {"path": "/v2/health/ready", "port": "http"})
        self.assertEqual(container["livenessProbe"]["httpGet"],
                         {"path": "/v2/health/live", "port": "http"})
        self.assertEqual(container["startupProbe"]["httpGet"]["port"], "http")
        env = {e["name"]: e.get("value") for e in container["env"]}
        self.assertEqual(env["MODEL_NAME"], "mnist")
        self.assertIn("MODEL_BASE_PATH", env)
        self.assertEqual(
            deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
            0)

  def test_grace_period_covers_the_pre_stop_pause_and_the_drain(self):
    for name, deployment in self._deployments().items():
      with self.subTest(file=name):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        self.assertEqual(command[0], "sleep")
        pause = int(command[1])
        self.assertGreaterEqual(pod["terminationGracePeriodSeconds"],
                                pause + _SERVER_DRAIN_SECONDS + 5)

  def test_deployments_run_as_non_root_without_capabilities(self):
    for name, deployment in self._deployments().items():
      with self.subTest(file=name):
        pod = deployment["spec"]["template"]["spec"]
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertEqual(pod["securityContext"]["runAsUser"], 1000)
        security = pod["containers"][0]["securityContext"]
        self.assertFalse(security["allowPrivilegeEscalation"])
        self.assertEqual(security["capabilities"], {"drop": ["ALL"]})
        self.assertTrue(security["readOnlyRootFilesystem"])
        mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        self.assertIn("/tmp", mounts)  # Writable scratch space.
        self.assertIn("memory", pod["containers"][0]["resources"]["limits"])
        self.assertIn("cpu", pod["containers"][0]["resources"]["requests"])

  def test_deployments_differ_only_in_where_models_come_from(self):
    volume, s3 = (d["spec"]["template"]["spec"]
                  for d in self._deployments().values())
    self.assertEqual(
        volume["containers"][0]["volumeMounts"][0],
        {"name": "models", "mountPath": "/models", "readOnly": True})
    self.assertEqual(
        volume["volumes"][0]["persistentVolumeClaim"]["claimName"],
        load_one("models-pvc.yaml")["metadata"]["name"])
    s3_env = {e["name"]: e for e in s3["containers"][0]["env"]}
    self.assertTrue(s3_env["MODEL_BASE_PATH"]["value"].startswith("s3://"))
    self.assertIn("AWS_ENDPOINT_URL", s3_env)
    secret = load_one("s3/secret.yaml")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
      ref = s3_env[key]["valueFrom"]["secretKeyRef"]
      self.assertEqual(ref["name"], secret["metadata"]["name"])
      self.assertIn(ref["key"], secret["stringData"])
    for key in ("args", "ports", "readinessProbe", "livenessProbe",
                "startupProbe", "lifecycle", "securityContext", "image"):
      self.assertEqual(volume["containers"][0][key], s3["containers"][0][key],
                       key)
    self.assertEqual(volume["securityContext"], s3["securityContext"])
    self.assertEqual(volume["terminationGracePeriodSeconds"],
                     s3["terminationGracePeriodSeconds"])

  def test_autoscalers_target_the_deployment(self):
    deployment = load_one("deployment.yaml")
    for name in ("hpa.yaml", "autoscaling/hpa-requests.yaml"):
      with self.subTest(file=name):
        hpa = load_one(name)
        self.assertEqual(hpa["spec"]["scaleTargetRef"], {
            "apiVersion": deployment["apiVersion"],
            "kind": "Deployment",
            "name": deployment["metadata"]["name"]})
        self.assertGreaterEqual(hpa["spec"]["minReplicas"], 2)

  def test_image_name_is_the_one_build_image_builds(self):
    with open(_runfiles("tools", "build_image.sh")) as f:
      match = re.search(r'^TAG="([^"]+)"', f.read(), re.M)
    self.assertEqual(match.group(1), _IMAGE)


if __name__ == "__main__":
  absltest.main()
