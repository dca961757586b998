# weightlab — the two entry points. Both install what is missing first (engine/scripts/setup.sh).
.PHONY: quickstart test setup build plugins

CARGO ?= cargo

quickstart: build
	$(CARGO) run --release -q -p weightlab-cli -- run experiments/quickstart.toml
	@echo "Report: $$(pwd)/reports/quickstart/report.html"

test: setup plugins
	$(CARGO) test --workspace --release --no-fail-fast

setup:
	@bash engine/scripts/setup.sh

# Built-in plugins: every crate under plugins/baselines and plugins/generators, copied to
# plugins/dist/<crate name>.wasm where the engine finds them.
plugins: setup
	$(CARGO) build --release --manifest-path plugins/Cargo.toml --target wasm32-wasip2
	@mkdir -p plugins/dist
	@wasmdir="$$($(CARGO) metadata --format-version 1 --no-deps --manifest-path plugins/Cargo.toml | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/wasm32-wasip2/release"; \
	for dir in plugins/baselines/*/ plugins/generators/*/; do \
	  [ -f "$$dir/Cargo.toml" ] || continue; name=$$(basename $$dir); \
	  cp "$$wasmdir/$$(echo $$name | tr - _).wasm" "plugins/dist/$$name.wasm"; \
	done

build: setup plugins
	$(CARGO) build --release -p weightlab-cli
