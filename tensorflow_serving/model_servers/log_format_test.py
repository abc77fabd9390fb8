"""Tests of model_servers/log_format: the JSON lines of --log_format=json.

(The built binary's output is checked in main_test.)
"""

import io
import json
import logging
import warnings

from absl import logging as absl_logging
from absl.testing import absltest

from tensorflow_serving.model_servers import log_format


class JsonFormatterTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.stream = io.StringIO()
    handler = logging.StreamHandler(self.stream)
    handler.setFormatter(log_format.JsonFormatter())
    self.logger = logging.getLogger("log_format_test")
    self.logger.propagate = False
    self.logger.setLevel(1)
    self.logger.addHandler(handler)
    self.addCleanup(self.logger.removeHandler, handler)

  def records(self) -> list[dict]:
    lines = self.stream.getvalue().splitlines()
    return [json.loads(line) for line in lines]

  def test_one_line_per_record_with_the_fields(self):
    self.logger.warning("loaded %d of %s", 3, "mnist")
    [record] = self.records()
    self.assertEqual(
        list(record), ["time", "level", "logger", "message", "file", "thread"])
    self.assertEqual(record["level"], "WARNING")
    self.assertEqual(record["logger"], "log_format_test")
    self.assertEqual(record["message"], "loaded 3 of mnist")
    self.assertRegex(record["file"], r"^log_format_test\.py:\d+$")
    self.assertRegex(record["time"],
                     r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
    self.assertIsInstance(record["thread"], int)

  def test_a_traceback_stays_in_its_record(self):
    try:
      raise ValueError("bad\nthing")
    except ValueError:
      self.logger.exception("it failed")
    lines = self.stream.getvalue().splitlines()
    self.assertLen(lines, 1)
    record = json.loads(lines[0])
    self.assertEqual(record["level"], "ERROR")
    self.assertEqual(record["message"], "it failed")
    self.assertIn("Traceback (most recent call last)", record["exception"])
    self.assertIn("ValueError: bad\nthing", record["exception"])

  def test_extra_fields_and_odd_values(self):
    self.logger.info("with extras", extra={"model": "m", "when": object(),
                                           "_private": 1})
    [record] = self.records()
    self.assertEqual(record["model"], "m")
    self.assertIsInstance(record["when"], str)  # Not JSON: its str().
    self.assertNotIn("_private", record)

  def test_verbose_levels_are_debug(self):
    self.logger.log(5, "very verbose")
    self.assertEqual(self.records()[0]["level"], "DEBUG")


class ConfigureTest(absltest.TestCase):

  def test_unknown_format(self):
    with self.assertRaisesRegex(ValueError, "text, json"):
      log_format.configure("xml")

  def test_every_logger_goes_through_one_handler(self):
    absl_handler = absl_logging.get_absl_handler()
    tf_logger = logging.getLogger("tensorflow")
    tf_handler = logging.StreamHandler(io.StringIO())
    tf_logger.addHandler(tf_handler)
    old = absl_handler.python_handler.formatter
    self.addCleanup(absl_handler.setFormatter, old)
    self.addCleanup(logging.captureWarnings, False)
    log_format.configure("text")  # absl's format; TensorFlow's once.
    self.assertIs(absl_handler.python_handler.formatter, old)
    self.assertNotIn(tf_handler, tf_logger.handlers)
    self.assertTrue(tf_logger.propagate)
    tf_logger.addHandler(tf_handler)
    log_format.configure("json")
    self.assertIsInstance(absl_handler.python_handler.formatter,
                          log_format.JsonFormatter)
    self.assertNotIn(tf_handler, tf_logger.handlers)
    self.assertTrue(tf_logger.propagate)
    # Python warnings become log records (through the root logger).
    with self.assertLogs("py.warnings", level="WARNING"):
      warnings.warn("deprecated thing", UserWarning)


if __name__ == "__main__":
  absltest.main()
