#!/usr/bin/env bash
# Builds the container image localhost/tensorflow-serving-py:latest with
# podman, offline: no image registry is needed (docs/deploy.md).
#
#   tools/build_image.sh [--tag=IMAGE] [--wheel=PATH] [--cache_dir=DIR] [--force]
#
# (--cache_dir default: ~/.cache/tensorflow-serving-py.)
#
#  1. Base image localhost/tensorflow-serving-py-base:bookworm: a Debian
#     bookworm root file system from debootstrap (minbase, python3,
#     python3-venv, ca-certificates) from the Debian mirror apt uses, imported
#     with `podman import`. Built once; rebuilt only when its recipe changes.
#  2. The wheel: --wheel=PATH, else built with Bazel
#     (//tensorflow_serving/tools/pip_package:build_pip_package).
#  3. Its dependencies as wheels, downloaded on the host with pip at the
#     versions of tools/requirements.txt into DIR/wheels/<key>; reused while
#     the requirements and the wheel's dependency list stay the same.
#  4. `podman build --network=none` of tensorflow_serving/tools/docker/
#     Dockerfile with those wheels in the context.
#
# Cheap when nothing changed: the image carries a label with a hash of every
# input (Dockerfile, entrypoint, monitoring config, this script, the wheel's
# bytes, the dependency wheels' names, the base image's ID); if the existing
# image has the same label it is kept (--force rebuilds anyway).
#
# Needs root (debootstrap), podman and debootstrap: tools/configure.sh
# installs them. Environment: PYTHON (default .venv/bin/python3) runs pip;
# DEBIAN_MIRROR overrides the mirror.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$ROOT/tools/$(basename "${BASH_SOURCE[0]}")"
TAG="localhost/tensorflow-serving-py:latest"
BASE_TAG="localhost/tensorflow-serving-py-base:bookworm"
CACHE_DIR=""
WHEEL=""
FORCE=0
PYTHON="${PYTHON:-$ROOT/.venv/bin/python3}"
DOCKER_DIR="$ROOT/tensorflow_serving/tools/docker"
REQUIREMENTS="$ROOT/tools/requirements.txt"
LABEL_INPUTS="org.tensorflow-serving-py.inputs"
LABEL_RECIPE="org.tensorflow-serving-py.base-recipe"

log() { echo "build_image: $*" >&2; }
die() { echo "build_image: ERROR: $*" >&2; exit 1; }

for arg in "$@"; do
  case "$arg" in
    --tag=*) TAG="${arg#*=}" ;;
    --wheel=*) WHEEL="${arg#*=}" ;;
    --cache_dir=*) CACHE_DIR="${arg#*=}" ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

if [[ -z "$CACHE_DIR" ]]; then
  home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
  CACHE_DIR="${XDG_CACHE_HOME:-$home/.cache}/tensorflow-serving-py"
fi
command -v podman >/dev/null || die "podman is not installed; run tools/configure.sh"
[[ -x "$PYTHON" ]] || die "no Python at $PYTHON; run tools/configure.sh or set PYTHON"
mkdir -p "$CACHE_DIR"
start=$SECONDS

label_of() {  # label_of IMAGE LABEL: the label's value, empty if none.
  podman image inspect --format "{{index .Labels \"$2\"}}" "$1" 2>/dev/null \
    | sed 's/^<no value>$//' || true
}

# --- 1. The base image ------------------------------------------------------
mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  mirror="$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -v security | head -1 || true)"
fi
if [[ -z "$mirror" ]]; then
  mirror="$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"
BASE_PACKAGES="python3,python3-venv,ca-certificates"
# The recipe names everything that shapes the base; the mirror does not.
recipe="bookworm minbase $BASE_PACKAGES slim-v1"
recipe_hash="$(printf '%s' "$recipe" | sha256sum | cut -c1-16)"
if [[ "$(label_of "$BASE_TAG" "$LABEL_RECIPE")" == "$recipe_hash" ]]; then
  log "base image $BASE_TAG is up to date"
else
  [[ $(id -u) -eq 0 ]] || die "building the base image needs root (debootstrap)"
  command -v debootstrap >/dev/null || die "debootstrap is not installed; run tools/configure.sh"
  log "building base image $BASE_TAG with debootstrap from $mirror (about a minute)"
  rootfs="$(mktemp -d /var/tmp/tensorflow-serving-py-rootfs.XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$rootfs" "$mirror" \
    > "$CACHE_DIR/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $CACHE_DIR/debootstrap.log"
  # Slim it as Debian's -slim images do: no package lists or caches, no
  # manuals, no translations; each package keeps its copyright file.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/log/* "$rootfs"/tmp/*
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  tar --numeric-owner -C "$rootfs" -c . \
    | podman import --change "LABEL $LABEL_RECIPE=$recipe_hash" \
        --change 'CMD ["/bin/bash"]' - "$BASE_TAG" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  log "base image built ($((SECONDS - start)) s)"
fi
base_id="$(podman image inspect --format '{{.Id}}' "$BASE_TAG")"

# --- 2. The wheel -----------------------------------------------------------
work="$(mktemp -d /var/tmp/tensorflow-serving-py-build.XXXXXX)"
trap 'rm -rf "$work"' EXIT
if [[ -z "$WHEEL" ]]; then
  log "building the wheel with Bazel"
  (cd "$ROOT" && bazel build -c opt //tensorflow_serving/tools/pip_package:build_pip_package >&2)
  WHEEL="$("$ROOT/bazel-bin/tensorflow_serving/tools/pip_package/build_pip_package" "$work/dist" | tail -1)"
fi
[[ -f "$WHEEL" ]] || die "no wheel at $WHEEL"

# --- 3. Dependency wheels ---------------------------------------------------
requires="$("$PYTHON" - "$WHEEL" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as whl:
  name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
  lines = whl.read(name).decode().splitlines()
print("\n".join(sorted(l for l in lines if l.startswith("Requires-Dist:"))))
EOF
)"
deps_key="$( (cat "$REQUIREMENTS"; echo "$requires"; "$PYTHON" -c 'import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform())') \
  | sha256sum | cut -c1-16)"
deps_dir="$CACHE_DIR/wheels/$deps_key"
if [[ ! -f "$deps_dir/.complete" ]]; then
  log "downloading dependency wheels into $deps_dir"
  rm -rf "$deps_dir.tmp" && mkdir -p "$deps_dir.tmp"
  "$PYTHON" -m pip download --disable-pip-version-check --quiet --only-binary=:all: \
    --dest "$deps_dir.tmp" --constraint "$REQUIREMENTS" "$WHEEL" >&2 \
    || die "pip download failed"
  rm -f "$deps_dir.tmp"/tensorflow_serving_py-*.whl
  touch "$deps_dir.tmp/.complete"
  rm -rf "$deps_dir" && mv "$deps_dir.tmp" "$deps_dir"
fi

# --- 4. The image -----------------------------------------------------------
inputs_hash="$( (
  set -e
  cd "$DOCKER_DIR" && sha256sum Dockerfile tf_serving_entrypoint.sh monitoring.config
  sha256sum < "$SELF"
  sha256sum < "$WHEEL"
  (cd "$deps_dir" && ls -1 -- *.whl)
  echo "$base_id"
) | sha256sum | cut -c1-32)"
if [[ $FORCE -eq 0 && "$(label_of "$TAG" "$LABEL_INPUTS")" == "$inputs_hash" ]]; then
  log "$TAG is up to date (inputs $inputs_hash)"
  echo "$TAG"
  exit 0
fi

context="$work/context"
mkdir -p "$context/wheels"
cp "$DOCKER_DIR/Dockerfile" "$DOCKER_DIR/tf_serving_entrypoint.sh" "$DOCKER_DIR/monitoring.config" "$context/"
cp "$WHEEL" "$context/wheels/"
cp -l "$deps_dir"/*.whl "$context/wheels/" 2>/dev/null || cp "$deps_dir"/*.whl "$context/wheels/"
old_id="$(podman image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)"
log "building $TAG (inputs $inputs_hash)"
podman build --network=none --pull=never --layers=false \
  --build-arg "BASE_IMAGE=$BASE_TAG" --label "$LABEL_INPUTS=$inputs_hash" \
  --tag "$TAG" --file "$context/Dockerfile" "$context" >&2
new_id="$(podman image inspect --format '{{.Id}}' "$TAG")"
if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
  podman rmi "$old_id" >/dev/null 2>&1 || true  # Still in use: keep it.
fi
size="$(podman image inspect --format '{{.Size}}' "$TAG")"
log "built $TAG: $((size / 1000000)) MB, in $((SECONDS - start)) s"
echo "$TAG"
