#!/usr/bin/env bash
# Set-up for building and testing TensorFlow Serving in Python: the counterpart
# of upstream's ./configure. Idempotent: a second run checks, changes nothing,
# and takes seconds.
#
#  1. Debian packages: Bazel 4.2.3 (bazel-bootstrap) and the rules it needs.
#  2. .venv: a virtualenv with exactly tools/requirements.txt.
#  3. .oracle: the official tensorflow-serving-api package, installed apart
#     (never importable together with ours) for the conformance test.
#  3b. .v2_clients/{tritonclient,kserve}: the V2 protocol's client packages,
#     each in its own virtualenv, for the V2 tests (.tf_serving_v2_clients.bazelrc).
#  4. .tf_serving_configure.bazelrc: points Bazel's Python toolchain at .venv.
#  5. Containers: podman, runc and debootstrap, and a containers.conf drop-in,
#     for tools/build_image.sh and the image test (docs/deploy.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# openssl and curl: the TLS tests make certificates; the REST doc test runs
# the documented curl commands.
DEBIAN_PACKAGES=(bazel-bootstrap bazel-rules-java bazel-platforms openssl curl)
ORACLE_PACKAGE="tensorflow-serving-api==2.21.0"
VENV="$ROOT/.venv"
ORACLE="$ROOT/.oracle"
PYTHON_FOR_VENV="${PYTHON:-python3.11}"

log() { echo "configure: $*" >&2; }
die() { echo "configure: ERROR: $*" >&2; exit 1; }

# --- 1. Debian packages ----------------------------------------------------
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    die "missing Debian packages: ${missing[*]}.
  Install them as root, then run this script again:
    apt-get update && apt-get install -y ${missing[*]}"
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v bazel >/dev/null || die "bazel is not on PATH after installing bazel-bootstrap"

# --- 2. The virtualenv -----------------------------------------------------
command -v "$PYTHON_FOR_VENV" >/dev/null \
  || die "$PYTHON_FOR_VENV not found; install Python 3.11 (or set PYTHON=...)"
req_hash="$(sha256sum tools/requirements.txt | cut -c1-16)"
if [[ ! -x "$VENV/bin/python3" ]]; then
  log "creating $VENV (first run: a few minutes)"
  "$PYTHON_FOR_VENV" -m venv "$VENV"
fi
if [[ "$(cat "$VENV/.requirements_hash" 2>/dev/null)" != "$req_hash" ]]; then
  log "installing tools/requirements.txt into $VENV"
  "$VENV/bin/python3" -m pip install -q --disable-pip-version-check -r tools/requirements.txt 2>&1 \
    | grep -v "is neither a file nor a directory" >&2 || true
  "$VENV/bin/python3" -c "import tensorflow, grpc, grpc_tools, absl, numpy, boto3, google.cloud.storage" \
    || die "the virtualenv is incomplete; see the pip output above"
  echo "$req_hash" > "$VENV/.requirements_hash"
fi

# --- 3. The conformance oracle, isolated ------------------------------------
if [[ "$(cat "$ORACLE/.installed" 2>/dev/null)" != "$ORACLE_PACKAGE" ]]; then
  log "installing $ORACLE_PACKAGE into $ORACLE (isolated, for conformance tests)"
  rm -rf "$ORACLE"
  "$VENV/bin/python3" -m pip install -q --disable-pip-version-check --no-deps \
    --target "$ORACLE" "$ORACLE_PACKAGE" 2>&1 | grep -v "is neither a file nor a directory" >&2 || true
  [[ -d "$ORACLE/tensorflow_serving/apis" ]] || die "could not install $ORACLE_PACKAGE"
  echo "$ORACLE_PACKAGE" > "$ORACLE/.installed"
fi

# --- 3b. V2 (Open Inference Protocol) clients, isolated ----------------------
# tritonclient and the kserve SDK need protobuf < 7, and the two cannot share a
# process (each registers the "inference.*" protos under its own file name), so
# each gets its own virtualenv with exact pins from tools/<name>_requirements.txt,
# reinstalled when that file changes. Tests find the interpreters through
# TRITONCLIENT_PYTHON and KSERVE_PYTHON (written to .tf_serving_v2_clients.bazelrc,
# which .bazelrc try-imports) and run them in a subprocess.
V2_CLIENTS="$ROOT/.v2_clients"
declare -A V2_CLIENT_SMOKE=(
  [tritonclient]="import tritonclient.grpc, tritonclient.http, numpy
i = tritonclient.grpc.InferInput('x', [1, 2], 'FP32')
i.set_data_from_numpy(numpy.zeros((1, 2), numpy.float32))"
  [kserve]="import kserve, numpy
from kserve import InferInput, InferRequest, InferenceGRPCClient, InferenceRESTClient
i = InferInput('x', [1, 2], 'FP32')
i.set_data_from_numpy(numpy.zeros((1, 2), numpy.float32))
InferRequest(model_name='m', infer_inputs=[i]).to_grpc()"
)
v2_rc=""
for client in tritonclient kserve; do
  reqs="tools/${client}_requirements.txt"
  env_dir="$V2_CLIENTS/$client"
  hash="$(sha256sum "$reqs" | cut -c1-16)"
  if [[ "$(cat "$env_dir/.requirements_hash" 2>/dev/null)" != "$hash" ]]; then
    log "installing $reqs into $env_dir (isolated, for the V2 tests)"
    rm -rf "$env_dir"
    "$PYTHON_FOR_VENV" -m venv "$env_dir"
    "$env_dir/bin/python3" -m pip install -q --disable-pip-version-check -r "$reqs" 2>&1 \
      | grep -v "is neither a file nor a directory" >&2 || true
    "$env_dir/bin/python3" -c "${V2_CLIENT_SMOKE[$client]}" \
      || die "$client does not import or build a request in $env_dir; see the pip output above"
    echo "$hash" > "$env_dir/.requirements_hash"
  fi
  v2_rc+="test --test_env=${client^^}_PYTHON=$env_dir/bin/python3
"
done
v2_rc="# Written by tools/configure.sh; do not edit, do not commit.
$v2_rc"
if [[ "$(cat "$ROOT/.tf_serving_v2_clients.bazelrc" 2>/dev/null)" != "$(printf "%s" "$v2_rc")" ]]; then
  printf '%s' "$v2_rc" > "$ROOT/.tf_serving_v2_clients.bazelrc"
  log "wrote $ROOT/.tf_serving_v2_clients.bazelrc"
fi

# --- 4. Bazel configuration --------------------------------------------------
rc="$ROOT/.tf_serving_configure.bazelrc"
new_rc="# Written by tools/configure.sh; do not edit, do not commit.
build --repo_env=PYTHON_BIN_PATH=$VENV/bin/python3
build --action_env=PYTHON_BIN_PATH=$VENV/bin/python3
test --test_env=TF_SERVING_API_ORACLE=$ORACLE
"
if [[ "$(cat "$rc" 2>/dev/null)" != "$(printf "%s" "$new_rc")" ]]; then
  printf '%s' "$new_rc" > "$rc"
  log "wrote $rc"
fi

# --- 5. Containers (tools/build_image.sh, the "podman"-tagged image test) ---
# podman runs with runc: crun, its default, fails on these machines ("cgroups
# in hybrid mode not supported"); the default ulimits raise limits above what
# the machine allows ("setrlimit ... Operation not permitted"). A drop-in
# changes only these two settings and leaves any containers.conf alone.
# Without root this part is skipped: exclude the image test with
# --test_tag_filters=-podman.
CONTAINER_PACKAGES=(podman runc debootstrap)
CONTAINERS_DROP_IN=/etc/containers/containers.conf.d/50-tensorflow-serving-py.conf
containers_conf='# Written by tensorflow_serving tools/configure.sh (docs/deploy.md).
[containers]
default_ulimits = []

[engine]
runtime = "runc"
'
missing=()
for pkg in "${CONTAINER_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$pkg")
done
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  if ((${#missing[@]})); then
    log "WARNING: not installing ${missing[*]} (needs root and apt-get); the image test will fail"
  fi
else
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if [[ "$(cat "$CONTAINERS_DROP_IN" 2>/dev/null)" != "$(printf "%s" "$containers_conf")" ]]; then
    mkdir -p "$(dirname "$CONTAINERS_DROP_IN")"
    printf '%s' "$containers_conf" > "$CONTAINERS_DROP_IN"
    log "wrote $CONTAINERS_DROP_IN"
  fi
fi

log "ready: $(bazel --version 2>/dev/null | head -1), $("$VENV/bin/python3" --version)"
