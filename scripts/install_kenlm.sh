#!/usr/bin/env bash
# Build KenLM's `lmplz` (from the PyPI kenlm source distribution) and install the `kenlm`
# Python module into .venv. Idempotent: the binary is cached in $KENLM_HOME
# (default ~/.cache/vae-mine/kenlm) and reused by every clone; core finds it there.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.3.0
KENLM_HOME="${KENLM_HOME:-$HOME/.cache/vae-mine/kenlm}"
BIN="$KENLM_HOME/bin"
PY=.venv/bin/python
[ -x "$PY" ] || { echo "run scripts/setup.sh first (no .venv)" >&2; exit 1; }

missing=()
for pkg in build-essential cmake libboost-program-options-dev libboost-system-dev \
           libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

works() {  # lmplz --help exits 1, so check with a real (tiny) model instead
  printf 'the cat sat\nthe dog sat\n' | "$BIN/lmplz" -o 2 -S 100M --discount_fallback >/dev/null 2>&1
}

if [ ! -x "$BIN/lmplz" ] || ! works; then
  echo "building KenLM $VERSION lmplz into $BIN (about 2 minutes)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # --no-binary kenlm, not :all:, so that its build requirements (setuptools, cmake) come as wheels
  # instead of being compiled from source too (that took 23 minutes on 2 cores).
  "$PY" -m pip download -q --disable-pip-version-check --no-deps --no-binary kenlm \
        "kenlm==$VERSION" -d "$work"
  tar xzf "$work/kenlm-$VERSION.tar.gz" -C "$work"
  cmake -S "$work/kenlm-$VERSION" -B "$work/build" -DCMAKE_BUILD_TYPE=Release >"$work/cmake.log" 2>&1 \
    || { tail -30 "$work/cmake.log" >&2; exit 1; }
  cmake --build "$work/build" --target lmplz build_binary -j "$(nproc)" >"$work/build.log" 2>&1 \
    || { tail -30 "$work/build.log" >&2; exit 1; }
  mkdir -p "$BIN"
  cp "$work/build/bin/lmplz" "$work/build/bin/build_binary" "$BIN/"
fi

if ! "$PY" -c "import kenlm" 2>/dev/null; then
  echo "installing the kenlm Python module $VERSION"
  "$PY" -m pip install -q --disable-pip-version-check "kenlm==$VERSION"
fi
works || { echo "lmplz in $BIN does not run" >&2; exit 1; }
"$PY" -c "import kenlm"
echo "KenLM ready: $BIN/lmplz"
