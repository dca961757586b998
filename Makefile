# weightlab — the two entry points. Both install what is missing first (engine/scripts/setup.sh).
.PHONY: quickstart test setup build plugins docs figures

CARGO ?= cargo

# Where cargo puts binaries (the set-up points it at a shared cache folder).
TARGET_DIR = $$($(CARGO) metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

quickstart: build
	$(TARGET_DIR)/release/weightlab run experiments/quickstart.toml
	@echo "Report: $$(pwd)/reports/quickstart/report.html"

# The end-to-end tests run the `weightlab` binary, which `cargo test` does not build by itself.
# Formatting and lints are part of the tests: a warning fails them.
test: build
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --release --all-targets -- -D warnings
	$(CARGO) test --workspace --release --no-fail-fast

setup:
	@bash engine/scripts/setup.sh

# Built-in plugins: every crate under plugins/baselines, plugins/generators and plugins/probes, copied to
# plugins/dist/<crate name>.wasm where the engine finds them; benchmark plugins go to
# plugins/dist/bench/.
plugins: setup
	$(CARGO) build --release --manifest-path plugins/Cargo.toml --target wasm32-wasip2
	@mkdir -p plugins/dist
	@wasmdir="$(TARGET_DIR)/wasm32-wasip2/release"; \
	for dir in plugins/baselines/*/ plugins/generators/*/ plugins/probes/*/; do \
	  [ -f "$$dir/Cargo.toml" ] || continue; name=$$(basename $$dir); \
	  built="$$wasmdir/$$(echo $$name | tr - _).wasm"; \
	  if [ ! -f "plugins/dist/$$name.wasm" ] || [ "$$built" -nt "plugins/dist/$$name.wasm" ]; then cp -p "$$built" "plugins/dist/$$name.wasm"; fi; \
	done; \
	mkdir -p plugins/dist/bench; \
	for dir in plugins/bench/*/; do \
	  name=bench-$$(basename $$dir); cp "$$wasmdir/$$(echo $$name | tr - _).wasm" "plugins/dist/bench/$$name.wasm"; \
	done

# Always the whole workspace: building one package alone unifies features differently and
# would rebuild shared dependencies each time `make test` and `make build` alternate.
# The built-in plugins get their metadata section (what `weightlab plugin build` writes) before
# the engine that embeds them is compiled: `weightlab plugins` and `plugin inspect` read it
# without loading them. `weightlab-stamp` (the plugin host alone) describes them; only a plugin
# copied anew above lacks the section. `--workspace` keeps the features of a whole-workspace build.
build: setup plugins
	$(CARGO) build --release --workspace --bin weightlab-stamp
	$(TARGET_DIR)/release/weightlab-stamp plugins/dist/*.wasm
	$(CARGO) build --release --workspace

# The manual (docs/src, mdBook) into docs/book/. mdBook is installed once, pinned, from crates.io
# into the cache folder beside libtorch.
MDBOOK_VERSION = 0.4.52
TOOLS = $${WEIGHTLAB_CACHE:-$$HOME/.cache/weightlab}/tools
docs:
	@[ -x "$(TOOLS)/bin/mdbook" ] && "$(TOOLS)/bin/mdbook" --version | grep -q "v$(MDBOOK_VERSION)$$" || \
	  $(CARGO) install mdbook --version $(MDBOOK_VERSION) --locked --root "$(TOOLS)"
	"$(TOOLS)/bin/mdbook" build docs
	@echo "Manual: $$(pwd)/docs/book/index.html"

# Rewrites every figure the docs quote (`<!--wl RUN … COLUMN-->0.730<!--/wl-->`) from the
# committed `reports/<run>/summary.csv` and `frontier.csv`; `make test` fails while one differs.
figures:
	$(CARGO) run --release -q -p weightlab-results --example figures -- --write
