"""Runs some of a test's own functions inside another Python interpreter.

Client packages written by others (tritonclient, kserve, and upstream's
tensorflow-serving-api, the "oracle") pin protobuf < 7 or clash with our
own tensorflow_serving package, so tools/configure.sh installs each apart
(.v2_clients/<client>, .oracle). A test that compares our wire format with
theirs runs code there: the source text of its functions
(inspect.getsource) becomes a script, which the other interpreter runs in a
clean environment (no inherited PYTHONPATH, which Bazel fills with our
runfiles; -P keeps the script's directory off sys.path, -s the user
site-packages). The request goes in as a JSON file and the reply comes back
as one, so both sides need nothing but the standard library to talk.
"""

import inspect
import json
import os
import subprocess
import tempfile
from typing import Any, Callable, Mapping, Sequence

# The V2 (KServe / Triton) client packages: the variable that names the
# Python of each one's virtualenv (set by tools/configure.sh through
# .tf_serving_v2_clients.bazelrc).
V2_CLIENT_PYTHON_ENV = {
    "tritonclient": "TRITONCLIENT_PYTHON",
    "kserve": "KSERVE_PYTHON",
}

# What the script runs with unless the caller says otherwise: no PYTHONPATH.
_CLEAN_ENV = {"PYTHONNOUSERSITE": "1", "PATH": "/usr/bin:/bin"}


def v2_client_python(client: str) -> str:
  """The interpreter of `client`'s virtualenv ("tritonclient" or "kserve").

  Raises:
    AssertionError: saying how to make it, if it is not there.
  """
  env_var = V2_CLIENT_PYTHON_ENV[client]
  python = os.environ.get(env_var)
  if not python or not os.access(python, os.X_OK):
    raise AssertionError(
        f"{env_var} is {python!r}; it must name the Python of the {client} "
        "virtualenv that tools/configure.sh makes (.v2_clients/"
        f"{client}/bin/python3) and passes to Bazel with `test --test_env` "
        "in .tf_serving_v2_clients.bazelrc. Run tools/configure.sh.")
  return python


def run_functions(python: str,
                  functions: Sequence[Callable[..., Any]],
                  main: Callable[..., None],
                  args: Sequence[Any],
                  request: Any,
                  *,
                  what: str,
                  env: Mapping[str, str] | None = None,
                  timeout: float = 300.0) -> Any:
  """Runs main(*args, request_path, reply_path) in `python`; returns the reply.

  Args:
    python: the interpreter to run.
    functions: helpers `main` calls; their source goes into the script first.
    main: a module-level function that reads the JSON request at
      request_path and writes its JSON reply to reply_path. It and
      `functions` may import only what the other interpreter has.
    args: literal leading arguments (str, bool, numbers: written with repr).
    request: what goes to request_path (JSON-serializable).
    what: the name for the subprocess in a failure ("the kserve subprocess").
    env: the subprocess's whole environment (default: PATH and no user
      site-packages, nothing else).
    timeout: seconds before the subprocess is killed.

  Raises:
    AssertionError: with the subprocess's stderr, if it exits non-zero.
  """
  script = "\n\n".join([
      # The functions' type hints name typing classes the script may lack.
      "from __future__ import annotations",
      "from typing import Any, Callable, Dict, List, Optional, Tuple",
      *(inspect.getsource(f) for f in functions),
      inspect.getsource(main),
      f"import sys\n{main.__name__}(*{list(args)!r}, sys.argv[1], "
      "sys.argv[2])\n",
  ])
  with tempfile.TemporaryDirectory() as tmp:
    script_path = os.path.join(tmp, "script.py")
    request_path = os.path.join(tmp, "request.json")
    reply_path = os.path.join(tmp, "reply.json")
    with open(script_path, "w") as f:
      f.write(script)
    with open(request_path, "w") as f:
      json.dump(request, f)
    result = subprocess.run(
        [python, "-P", "-s", script_path, request_path, reply_path],
        cwd=tmp, env=dict(_CLEAN_ENV if env is None else env),
        capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
      raise AssertionError(f"{what} failed (exit {result.returncode}):\n"
                           f"{result.stderr}")
    with open(reply_path) as f:
      return json.load(f)
