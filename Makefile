# fleetbench: the commands users, CI and the nightly scale jobs run.
# Every target works on a fresh Debian 12 machine after `make setup`.

CARGO        ?= cargo
PROVIDER     ?= embedded
OUT          ?= out/conformance
RELEASE_BIN  := target/release

.PHONY: help setup build release test test-images lint fmt conformance bench report images kind-up kind-down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

setup: ## install what a fresh Debian 12 machine lacks (apt packages)
	./.ci/setup

build: ## debug build of every crate
	$(CARGO) build --workspace --all-targets

release: ## optimised binaries: fleetbench, fleet-controller
	$(CARGO) build --release --bins

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

# `test` lints in the same compile that builds the tests: the workspace's crates go through
# clippy's driver (.ci/lint-rustc), so clippy's findings and warnings fail the build exactly
# as `make lint` would, without type-checking every dependency a second time.
LINTING := RUSTC_WORKSPACE_WRAPPER=$(CURDIR)/.ci/lint-rustc

test: ## rustfmt, clippy, unit, integration and smoke-suite tests (docker ones too, where an engine runs)
	$(CARGO) fmt --all -- --check
	$(LINTING) $(CARGO) test --workspace --all-targets --no-run
	@$(MAKE) --no-print-directory test-images
	$(LINTING) FLEETBENCH_CONTROLLER_BIN=$(CURDIR)/target/debug/fleet-controller $(CARGO) test --workspace

# The docker provider's tests run the images, so they are built from this checkout's test
# build (one compile, not a second optimised one); without a reachable engine those tests
# skip with a message, and so does this step.
test-images:
	@if docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; then \
		images/build.sh --debug; \
	else \
		echo "make: no Docker engine reachable: skipping the images; the docker-provider tests will skip"; \
	fi

conformance: release ## every suite in suites/ at full scale on $(PROVIDER); report in $(OUT)
	$(RELEASE_BIN)/fleetbench conformance --provider $(PROVIDER) --out $(OUT)

images: ## the docker provider's images (fleetbench/<component>:dev) from release binaries; nothing pulled
	images/build.sh

kind-up: ## kind clusters by hand: fleetbench-mgmt + DOWNSTREAM (default 2) downstream; kubeconfigs in out/kind
	kind-configs/kind-up.sh $(DOWNSTREAM)

kind-down: ## delete the clusters kind-up created
	kind-configs/kind-down.sh

bench: ## criterion benchmarks of every crate
	$(CARGO) bench --workspace

clean: ## remove build output and run results
	$(CARGO) clean
	rm -rf out
