# weightlab — the two entry points. Both install what is missing first (engine/scripts/setup.sh).
.PHONY: quickstart test setup build plugins clean-cache

CARGO ?= cargo
WEIGHTLAB = $(shell $(CARGO) metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/weightlab

quickstart: build
	$(WEIGHTLAB) run experiments/quickstart.toml

test: setup plugins
	$(CARGO) test --workspace --release --no-fail-fast

setup:
	@bash engine/scripts/setup.sh

plugins: setup
	$(CARGO) build --release --manifest-path plugins/Cargo.toml --target wasm32-wasip2

build: setup plugins
	$(CARGO) build --release -p weightlab-cli
