"""Tests for util/status.py: codes match TensorFlow's and gRPC's numbering."""

from absl.testing import absltest

from tensorflow_serving.util import status


class StatusTest(absltest.TestCase):

  def test_codes_have_canonical_numbers(self):
    self.assertEqual(status.Code.INVALID_ARGUMENT, 3)
    self.assertEqual(status.Code.NOT_FOUND, 5)
    self.assertEqual(status.Code.UNAVAILABLE, 14)
    self.assertEqual(status.Code.UNAUTHENTICATED, 16)
    self.assertLen(status.Code, 17)

  def test_error_carries_code_and_message(self):
    err = status.not_found("Servable not found for request: Latest(x)")
    self.assertEqual(err.code, status.Code.NOT_FOUND)
    self.assertEqual(str(err), "Servable not found for request: Latest(x)")
    self.assertIn("NOT_FOUND", repr(err))

  def test_with_prefix_keeps_code(self):
    err = status.invalid_argument("bad").with_prefix("input x: ")
    self.assertEqual(err.code, status.Code.INVALID_ARGUMENT)
    self.assertEqual(err.message, "input x: bad")

  def test_from_exception_keeps_serving_errors(self):
    err = status.not_found("gone")
    self.assertIs(status.from_exception(err), err)

  def test_from_exception_keeps_a_carried_code(self):

    class OpErrorLike(Exception):

      def __init__(self):
        super().__init__("ignored")
        self.error_code = 3
        self.message = "Matrix size-incompatible"

    err = status.from_exception(OpErrorLike())
    self.assertEqual(err.code, status.Code.INVALID_ARGUMENT)
    self.assertEqual(err.message, "Matrix size-incompatible")

  def test_from_exception_catch_all(self):
    self.assertEqual(status.CATCH_ALL_CODE, status.Code.UNKNOWN)
    err = status.from_exception(ValueError("bad file"))
    self.assertEqual(err.code, status.CATCH_ALL_CODE)
    self.assertEqual(err.message, "bad file")
    self.assertEqual(status.from_exception(KeyError()).message, "KeyError")
    # A code outside the canonical range is not trusted.
    odd = RuntimeError("odd")
    odd.error_code, odd.message = 99, "odd"
    self.assertEqual(status.from_exception(odd).code, status.CATCH_ALL_CODE)


if __name__ == "__main__":
  absltest.main()
