"""Tests for restricted_api: the flag's parsing, the groups and the check."""

from absl.testing import absltest
from absl.testing import parameterized

from tensorflow_serving.model_servers import restricted_api
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status

ApiGroup = restricted_api.ApiGroup
RestrictedApi = restricted_api.RestrictedApi


def _headers(**values):
  return lambda key: values.get(key.replace("-", "_"))


class ParseTest(parameterized.TestCase):

  def test_empty_guards_nothing(self):
    for text in ("", " ", ";;"):
      api = RestrictedApi.parse(text)
      self.assertFalse(api.enabled)
      for group in ApiGroup:
        self.assertIsNone(api.restriction(group))

  def test_groups_and_entries(self):
    api = RestrictedApi.parse(
        "model_management:X-Admin-Key=s3cret; inference , metadata:"
        "x-api-key=k=v")
    self.assertTrue(api.enabled)
    self.assertEqual(api.restriction(ApiGroup.MODEL_MANAGEMENT),
                     restricted_api.Restriction("x-admin-key", "s3cret"))
    # The value is everything after the first "=".
    for group in (ApiGroup.INFERENCE, ApiGroup.METADATA):
      self.assertEqual(api.restriction(group),
                       restricted_api.Restriction("x-api-key", "k=v"))
    self.assertIsNone(api.restriction(ApiGroup.HEALTH))
    self.assertIsNone(api.restriction(ApiGroup.METRICS))

  @parameterized.parameters(
      ("inference", "'inference' is not GROUPS:KEY=VALUE"),
      ("inference:key", "'inference:key' is not GROUPS:KEY=VALUE"),
      ("infer:k=v", "unknown API group 'infer' (known: inference, metadata, "
       "model_management, metrics, health)"),
      ("inference:k=v;inference:j=w", "API group 'inference' is restricted "
       "twice"),
      ("inference:k=", "the value of header 'k' must be printable ASCII and "
       "not empty"),
      ("inference:k=caf\u00e9", "the value of header 'k' must be printable "
       "ASCII and not empty"),
      ("inference:bad key=v", "'bad key' cannot be a header name"),
      ("inference:grpc-timeout=v", "'grpc-timeout' cannot be a header name"),
      ("inference:x-bin=v", "'x-bin' cannot be a header name"),
  )
  def test_errors(self, text, message):
    with self.assertRaises(status.ServingError) as ctx:
      RestrictedApi.parse(text)
    self.assertEqual(ctx.exception.code, status.Code.INVALID_ARGUMENT)
    self.assertStartsWith(ctx.exception.message, "Invalid --restricted_api: ")
    self.assertIn(message, ctx.exception.message)


class CheckTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.api = RestrictedApi.parse("model_management:x-admin-key=s3cret")

  def test_the_right_header_passes(self):
    self.api.check(ApiGroup.MODEL_MANAGEMENT, _headers(x_admin_key="s3cret"),
                   metrics.GRPC)

  def test_open_groups_need_nothing(self):
    self.api.check(ApiGroup.INFERENCE, _headers(), metrics.REST)

  def test_missing_or_wrong_header_is_denied_and_counted(self):
    cell = restricted_api.DENIED_COUNT.get_cell("model_management",
                                                metrics.REST)
    before = cell.value()
    for headers in (_headers(), _headers(x_admin_key="s3cre"),
                    _headers(x_admin_key="s3cret "),
                    _headers(x_other="s3cret")):
      with self.assertRaises(status.ServingError) as ctx:
        self.api.check(ApiGroup.MODEL_MANAGEMENT, headers, metrics.REST)
      self.assertEqual(ctx.exception.code, status.Code.PERMISSION_DENIED)
      self.assertEqual(
          ctx.exception.message,
          "The model_management API is restricted: the request must carry "
          "the header 'x-admin-key' with the value configured by "
          "--restricted_api")
      self.assertNotIn("s3cret", ctx.exception.message)
    self.assertEqual(cell.value(), before + 4)


class GrpcMethodGroupTest(absltest.TestCase):

  def test_known_methods(self):
    group = restricted_api.grpc_method_group
    self.assertEqual(group("/tensorflow.serving.PredictionService/Predict"),
                     ApiGroup.INFERENCE)
    self.assertEqual(group("/tensorflow.serving.ModelService/GetModelStatus"),
                     ApiGroup.METADATA)
    self.assertEqual(
        group("/tensorflow.serving.ModelService/HandleReloadConfigRequest"),
        ApiGroup.MODEL_MANAGEMENT)
    self.assertEqual(group("/grpc.health.v1.Health/Check"), ApiGroup.HEALTH)
    self.assertEqual(
        group("/inference.GRPCInferenceService/RepositoryModelLoad"),
        ApiGroup.MODEL_MANAGEMENT)

  def test_unknown_methods_fall_in_the_strictest_group(self):
    self.assertEqual(
        restricted_api.grpc_method_group("/some.New/Method"),
        ApiGroup.MODEL_MANAGEMENT)


if __name__ == "__main__":
  absltest.main()
