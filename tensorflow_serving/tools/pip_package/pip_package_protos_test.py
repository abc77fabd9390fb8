"""Every .proto under tensorflow_serving/ ends up in the wheel.

build_pip_package packages the generated modules that all_py_pb2_library
collects in each proto package's BUILD file; a serving_proto_library declared
after that call, or in a package whose all_py_pb2 the pip package does not
depend on, would be silently left out. This test lists the .proto files in
the source tree (it follows its own source file, a symlink in the runfiles,
back to the workspace: a glob cannot cross into other packages) and checks
that each one's *_pb2.py is in the pip package's runfiles. Tagged "external"
in BUILD so that a new .proto file is never met by a cached result.
"""

import os

from absl.testing import absltest

_WORKSPACE = "tf_serving"
_PACKAGE = "tensorflow_serving"
# Protos that exist only for tests are not packaged.
_TEST_DIRS = ("test_util", "testdata")


def _workspace_root() -> str:
  here = os.path.dirname(os.path.realpath(__file__))
  return os.path.normpath(os.path.join(here, "..", "..", ".."))


class PipPackageProtosTest(absltest.TestCase):

  def test_every_proto_is_packaged(self):
    root = _workspace_root()
    protos = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, _PACKAGE)):
      dirnames[:] = [d for d in dirnames if d not in _TEST_DIRS]
      protos += [os.path.relpath(os.path.join(dirpath, f), root)
                 for f in filenames if f.endswith(".proto")]
    self.assertGreater(len(protos), 20, f"too few .proto files under {root}")
    runfiles = os.path.join(os.environ["TEST_SRCDIR"],
                            os.environ.get("TEST_WORKSPACE", _WORKSPACE))
    missing = [p for p in sorted(protos) if not os.path.exists(
        os.path.join(runfiles, p[:-len(".proto")] + "_pb2.py"))]
    self.assertEqual(
        missing, [], "not packaged: declare each with serving_proto_library "
        "above the all_py_pb2_library() call of its BUILD file, and make "
        "//tensorflow_serving/tools/pip_package:pip_package_srcs depend on "
        "that package's :all_py_pb2")


if __name__ == "__main__":
  absltest.main()
