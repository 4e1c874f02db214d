# Everything a fresh machine needs is installed by these targets; nothing is expected by hand.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TOOLS_BIN := $(CURDIR)/.tools/bin
TOOLS_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/d8registry/tools

# Go tools, built from their Go modules at pinned versions.
HELM_VERSION := v3.22.0
DMT_VERSION := v0.1.64
# The test nginx: the upstream tarball of Debian's source package, built with images/registry-nginx/configure-flags.
NGINX_VERSION := 1.22.1
# kube-apiserver + kubectl for the admission and rendered-object tests (tests/apiserver)
KUBE_VERSION := v1.37.2
CONTAINERD2_VERSION := v2.4.2
# regsync (Local replication, SPEC 5.8) and regctl (the OCI push client of the Local e2e tests, up, bench)
REGCLIENT_VERSION := v0.11.7
# crane: go-containerregistry's CLI, the library under `d8 mirror push` (the Local push endpoint's e2e test)
CRANE_VERSION := v0.22.1
# Debian packages used by lint and tests (installed only when running as root and missing).
DEBS := shellcheck containerd jq build-essential libpcre2-dev libssl-dev etcd-server
# failover faults: a private network namespace (ip), a drop rule in it (nft), who streams a layer (ss)
DEBS += nftables iproute2

export GOTOOLCHAIN := local
export GOFLAGS := -mod=mod

.PHONY: help deps venv tools debs bytecode sim test lint unit fuzz bench clean bundle

help:
	@echo "make sim   - run the main job (installs what it needs)"
	@echo "make test  - run lint and the whole test suite (installs what it needs)"
	@echo "make bench - run the benchmarks"
	@echo "make bundle - assemble the module bundle's file tree with the hooks' runtime in build/bundle"

deps: debs venv tools bytecode

# The hooks and the CLI byte-compiled ahead: with PYTHONDONTWRITEBYTECODE set in the environment (as on CI
# machines) every hook process the simulator and the tests start would otherwise compile hooks/lib again.
bytecode: venv
	@$(PY) -m compileall -q hooks cli bench

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

tools: $(TOOLS_BIN)/helm
	@bash tools/build-go-tool.sh optional dmt github.com/deckhouse/dmt $(DMT_VERSION) "$(TOOLS_CACHE)" "$(TOOLS_BIN)"
	@# CNCF distribution v3: the real registry the checker's loopback tests (tests/e2e) talk to
	@bash tools/build-go-tool.sh required registry github.com/distribution/distribution/v3/cmd/registry v3.1.2 "$(TOOLS_CACHE)" "$(TOOLS_BIN)"
	@# distribution's own token server (removed in v3; docker_auth is refused by the Go proxy here)
	@bash tools/build-go-tool.sh optional token-server github.com/docker/distribution/contrib/token-server v2.8.3+incompatible "$(TOOLS_CACHE)" "$(TOOLS_BIN)"
	@# CRI client: the data-plane e2e tests pull through containerd's CRI API like kubelet (not ctr, SPEC 12.3)
	@bash tools/build-go-tool.sh required crictl sigs.k8s.io/cri-tools/cmd/crictl v1.34.0 "$(TOOLS_CACHE)" "$(TOOLS_BIN)"
	@# nginx as the registry image builds it (same configure flags): fronts, node LB and gateways in tests/up/bench
	@nice -n 10 bash tools/build-nginx.sh $(NGINX_VERSION) images/registry-nginx/configure-flags "$(TOOLS_CACHE)" "$(TOOLS_BIN)"
	@# the real API server for tests/apiserver (a wrapper module: k8s.io/kubernetes cannot be `go install`ed)
	@nice -n 10 bash tools/build-kube.sh $(KUBE_VERSION) "$(TOOLS_CACHE)" "$(TOOLS_BIN)"
	@# Prometheus' rule engine: checks and unit-tests the alerts under monitoring/ (tests/monitoring)
	@nice -n 10 bash tools/build-go-tool.sh required promtool github.com/prometheus/prometheus/cmd/promtool v0.316.0 "$(TOOLS_CACHE)" "$(TOOLS_BIN)"
	@# regsync runs the Local replicas' sync in e2e tests and `up`; regctl pushes image indexes like a user's client
	@nice -n 10 bash tools/build-go-tool.sh required regsync github.com/regclient/regclient/cmd/regsync $(REGCLIENT_VERSION) "$(TOOLS_CACHE)" "$(TOOLS_BIN)"
	@nice -n 10 bash tools/build-go-tool.sh required regctl github.com/regclient/regclient/cmd/regctl $(REGCLIENT_VERSION) "$(TOOLS_CACHE)" "$(TOOLS_BIN)"
	@nice -n 10 bash tools/build-go-tool.sh required crane github.com/google/go-containerregistry/cmd/crane $(CRANE_VERSION) "$(TOOLS_CACHE)" "$(TOOLS_BIN)"
	@# containerd 2.x (config version 3) for the node-step e2e tests; Debian's containerd is 1.6 (version 2)
	@nice -n 10 bash tools/build-go-tool.sh required containerd2 github.com/containerd/containerd/v2/cmd/containerd $(CONTAINERD2_VERSION) "$(TOOLS_CACHE)" "$(TOOLS_BIN)" "no_btrfs no_devmapper no_zfs"

$(TOOLS_BIN)/helm:
	bash tools/build-go-tool.sh required helm helm.sh/helm/v3/cmd/helm $(HELM_VERSION) "$(TOOLS_CACHE)" "$(TOOLS_BIN)"

debs:
	@missing=(); for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing+=($$p); done; \
	if [ $${#missing[@]} -eq 0 ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "not root: install $${missing[*]} yourself"; exit 0; fi; \
	echo "installing Debian packages: $${missing[*]}"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$${missing[@]}" >/dev/null

sim: deps
	$(PY) -m d8registry

lint: deps
	$(VENV)/bin/ruff check hooks cli tests bench
	@# each step as the chart composes it: shared helpers, then the body (each file without its define/end lines)
	@for body in containerd node-lb nodeservices; do \
	  sed -s '1d;$$d' templates/node/_lib.sh.tpl "templates/node/_$$body.sh.tpl" | shellcheck -s bash - || exit 1; done

unit: deps
	$(PY) -m pytest -q tests/unit

# Tests mostly wait on servers and subprocesses: 4 workers on 2 cores; tests sharing a fixed resource carry
# one xdist_group (tests/conftest.py) and run on one worker. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 4
test: lint
	$(PY) -m pytest -q -p no:cacheprovider --benchmark-disable -n $(TEST_WORKERS) --dist loadgroup tests

fuzz: deps
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -p no:cacheprovider --benchmark-disable tests -k "propert or fuzz"

bench: deps
	$(PY) bench/hook_process.py
	$(PY) bench/state_machine.py
	$(PY) bench/checker_throughput.py
	$(PY) bench/dataplane_pull.py
	$(PY) bench/local_push.py
	$(PY) bench/simulate.py
	$(PY) bench/cli_large.py
	@# the whole suite on a fresh clone of HEAD, as CI runs it (takes as long as `make test`)
	$(PY) bench/suite.py

# The tree of the bundle image (werf.yaml, .werf/stages/bundle.yaml) with the hooks' runtime for this Python.
bundle: venv
	$(PY) tools/build_bundle.py all build/bundle

clean:
	rm -rf $(VENV) .tools .pytest_cache .hypothesis build
