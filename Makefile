# One-command set-up: every target installs what it needs, idempotently, under .venv/ and .cache/.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
CACHE := .cache
PIP := $(VENV)/bin/pip
PY := $(VENV)/bin/python
VENV_STAMP := $(CACHE)/venv-$(shell sha256sum pyproject.toml | cut -c1-16).stamp
PYTEST_ARGS ?=

.PHONY: all venv controlplane images test demo crds clean-cache help

all: test

help:
	@echo "make demo   - the SPE installed on the local control plane's real node, a dataset ingested, a workspace"
	@echo "              to start; prints the URL and the demo users (Ctrl-C stops)"
	@echo "make test   - install everything needed and run the whole test suite"
	@echo "make crds   - regenerate crds/ from the resource models"

$(VENV_STAMP):
	@mkdir -p $(CACHE)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check --upgrade pip setuptools wheel
	$(PIP) install --quiet --disable-pip-version-check -e '.[test]'
	@rm -f $(CACHE)/venv-*.stamp && touch $@

venv: $(VENV_STAMP)

controlplane:
	@bash tests/controlplane/build.sh

# The project's images for spe-dev's real node (mmdebstrap base + buildah, no Docker engine);
# needs the Debian packages of scripts/deps.d/node.sh. Built before the tests: registries are
# unreachable from inside the test run.
images:
	@bash images/build-local.sh

crds: venv
	$(VENV)/bin/spe-operator crds
	$(VENV)/bin/spe-operator crds -o manifests/base/crds

# Set-up that needs the package registries runs first (scripts/test-deps.sh: the Go builds and
# the downloads and images side by side); then pytest runs in a network namespace of its own with
# only loopback up (scripts/in-netns.sh): the suite cannot reach off the machine. It ends with
# the 25 slowest tests and fixtures, where a longer CI run shows first.
test: venv
	bash scripts/test-deps.sh
	$(VENV)/bin/lint-imports
	bash scripts/in-netns.sh $(VENV)/bin/pytest --durations=25 $(PYTEST_ARGS)

# The programs the demo runs (the control plane, the real node, Keycloak, the storage
# provisioner) and the images, set up side by side as for the tests.
DEMO_DEPS := node keycloak local-path-provisioner configurable-http-proxy
demo: venv
	bash scripts/test-deps.sh $(DEMO_DEPS)
	bash scripts/demo.sh

clean-cache:
	rm -rf $(CACHE)
