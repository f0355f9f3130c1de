# The one entry point: make run | test | lint | proto | bench | image | images | compose-test.
# make test runs lint first: a change that breaks types or style does not land.
# Every target installs what it needs, so a fresh Debian 12 machine works.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
PACKAGES := cronfleet coordinator scheduler worker gateway launch cli

.PHONY: run test unit lint proto proto-check bench bench-deps chaos system-deps go-deps go-example k8s-deps deps docker image images image-deps compose-deps compose-test web web-test browser clean

# System packages from Debian when the machine lacks them: etcd, Postgres,
# (unless an engine already answers) Docker plus a static busybox for the
# runner image, Node for the dashboard, iptables for the chaos suite, a
# Docker registry and htpasswd for the image-pull tests (a registry on loopback).
system-deps:
	@need=""; \
	command -v etcd >/dev/null 2>&1 || need="$$need etcd-server"; \
	{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need="$$need postgresql"; \
	{ command -v dockerd >/dev/null 2>&1 || timeout 10 docker info >/dev/null 2>&1; } || need="$$need docker.io"; \
	ldd /bin/busybox 2>&1 | grep -q "not a dynamic" || need="$$need busybox-static"; \
	command -v npm >/dev/null 2>&1 || need="$$need nodejs npm"; \
	command -v iptables >/dev/null 2>&1 || need="$$need iptables"; \
	command -v docker-registry >/dev/null 2>&1 || need="$$need docker-registry"; \
	command -v htpasswd >/dev/null 2>&1 || need="$$need apache2-utils"; \
	if [ -n "$$need" ]; then \
	  echo "installing system packages:$$need"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null; \
	fi

# Go stubs and the Go example client (gen/go, examples/go): protoc with
# Debian's Go plugins, Go 1.19 and the Go gRPC and protobuf libraries that
# Debian packages under /usr/share/gocode (no Go module proxy is reachable,
# so the client builds in GOPATH mode against them). Debian's gRPC accepts
# either github.com/golang/protobuf 1.3 or 1.5 and apt picks 1.3, whose codec
# cannot decode the stubs' (APIv2) messages: ask for 1.5 by name. protoc
# reads google/protobuf/timestamp.proto from libprotobuf-dev (only a Recommends).
GO_DEBS := protobuf-compiler libprotobuf-dev protoc-gen-go protoc-gen-go-grpc golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
go-deps:
	@need=""; for p in $(GO_DEBS); do dpkg -s $$p >/dev/null 2>&1 || need="$$need $$p"; done; \
	if [ -n "$$need" ]; then \
	  echo "installing system packages:$$need"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null; \
	fi

# kubectl renders deploy/k8s offline (`kubectl kustomize`, no cluster) for
# the manifests' test; Debian's kubernetes-client when none is there.
k8s-deps:
	@command -v kubectl >/dev/null 2>&1 || { echo "installing system packages: kubernetes-client"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null; }

# The Go example client (examples/go/quickstart) into .cronfleet/bin.
go-example: go-deps
	@bash examples/go/build.sh

# constraints.txt pins every package to the versions the suite last passed
# with: a fresh resolve of the dev extras backtracked into a Python 2 only
# release (functools32, through moto's aws-sam-translator) and failed.
# Regenerate: .venv/bin/pip freeze --exclude-editable > constraints.txt
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PIP) install -q --upgrade pip >/dev/null
	@$(PIP) install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

deps: system-deps $(STAMP)

# Start dockerd when no engine answers (there is no init system to do it).
# A dockerd that is running but does not answer is killed and started again:
# Debian 12's engine (20.10.24) can deadlock when many containers exit at
# once (moby/moby#46661; README, Runs in Docker).
docker: system-deps
	@if ! timeout 20 docker info >/dev/null 2>&1; then \
	  if pidof dockerd >/dev/null; then echo "dockerd does not answer: restarting it"; \
	    kill -9 $$(pidof dockerd) $$(pidof containerd) 2>/dev/null || true; \
	    for i in $$(seq 1 20); do pidof dockerd containerd >/dev/null || break; sleep 0.5; done; \
	    rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid; fi; \
	  mkdir -p .cronfleet; echo "starting dockerd (log: .cronfleet/dockerd.log)"; \
	  (setsid dockerd > .cronfleet/dockerd.log 2>&1 &); \
	  for i in $$(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done; \
	fi
	@docker info >/dev/null 2>&1 || { echo "Docker engine did not start; see .cronfleet/dockerd.log"; exit 1; }

# The default runner image, made without a registry (deploy/runner-image.sh).
image: docker
	@bash deploy/runner-image.sh

# cronfleet's own images (Dockerfile), built without a registry: the base
# from Debian packages (deploy/base-image.sh: debootstrap, docker import),
# the Python dependencies as wheels made here and installed in the build
# with --no-index, the dashboard built here. TAG names the images' tag.
TAG ?= latest
BASE_IMAGE ?= cronfleet/debian:bookworm
WHEELHOUSE := build/wheelhouse
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

image-deps: docker
	@command -v debootstrap >/dev/null 2>&1 || { echo "installing system packages: debootstrap"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }

compose-deps: docker
	@$(COMPOSE) version >/dev/null 2>&1 || { echo "installing system packages: docker-compose"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }

images: image image-deps web $(STAMP)
	@bash deploy/base-image.sh $(BASE_IMAGE)
	@rm -rf $(WHEELHOUSE) build/dist
	$(PIP) wheel -q -c constraints.txt --wheel-dir $(WHEELHOUSE) '.[server]'
	@mkdir -p build/dist && mv $(WHEELHOUSE)/cronfleet-*.whl build/dist/
	@for target in postgres etcd cronfleet; do \
	  echo "building cronfleet/$$target:$(TAG)"; \
	  docker build -q --force-rm --build-arg BASE=$(BASE_IMAGE) --target $$target -t cronfleet/$$target:$(TAG) . >/dev/null || exit 1; \
	done

# Opt-in (slow; not part of make test): the Compose stack from fresh images,
# a job through the gateway, a scheduler container killed (tests/compose).
compose-test: images compose-deps
	CRONFLEET_COMPOSE_TEST=1 COMPOSE="$(COMPOSE)" CRONFLEET_TAG=$(TAG) $(PY) -m pytest -q -s -p no:cacheprovider tests/compose

# The dashboard (web/): packages from the committed lock file, built into
# web/dist, which the gateway serves at /.
WEB_STAMP := web/node_modules/.installed
$(WEB_STAMP): web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $(WEB_STAMP)

web: system-deps $(WEB_STAMP)
	cd web && npm run --silent build

web-test: $(WEB_STAMP)
	cd web && npm test --silent

# Debian's Chromium, which the dashboard's end-to-end tests drive (Playwright).
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# make run falls back to the process runtime if Docker cannot start here.
run: deps web
	@$(MAKE) --no-print-directory image || echo "no Docker engine: workers use the process runtime"
	$(VENV)/bin/cronfleet up

test: deps go-deps k8s-deps proto-check lint image web web-test browser
	$(PY) -m pytest -q tests

unit: $(STAMP) go-deps k8s-deps
	$(PY) -m pytest -q tests/unit

# ruff (lint + format) and mypy --strict (pyproject.toml) on everything but
# the generated stubs.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(PACKAGES) tests bench

# Generated stubs are committed; proto-check fails when they are stale.
# Python lands in cronfleet/v1, Go in gen/go/cronfleet/v1.
PROTOS := proto/cronfleet/v1/*.proto
GO_PROTOC := protoc -Iproto --go_opt=paths=source_relative --go-grpc_opt=paths=source_relative
proto: $(STAMP) go-deps
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)
	@mkdir -p gen/go
	$(GO_PROTOC) --go_out=gen/go --go-grpc_out=gen/go $(PROTOS)

proto-check: $(STAMP) go-deps
	@tmp=$$(mktemp -d); \
	$(PY) -m grpc_tools.protoc -Iproto --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTOS); \
	for f in $$tmp/cronfleet/v1/*.py $$tmp/cronfleet/v1/*.pyi; do \
	  cmp -s $$f cronfleet/v1/$$(basename $$f) || { echo "stale generated stub: cronfleet/v1/$$(basename $$f) (run make proto)"; rm -rf $$tmp; exit 1; }; \
	done; \
	mkdir -p $$tmp/go; $(GO_PROTOC) --go_out=$$tmp/go --go-grpc_out=$$tmp/go $(PROTOS); \
	diff -rq $$tmp/go/cronfleet/v1 gen/go/cronfleet/v1 >/dev/null || { \
	  diff -rq $$tmp/go/cronfleet/v1 gen/go/cronfleet/v1 | sed 's|'$$tmp/go'|(regenerated) gen/go|'; \
	  echo "stale generated Go stubs in gen/go/cronfleet/v1 (run make proto)"; rm -rf $$tmp; exit 1; }; \
	rm -rf $$tmp

# The bench's own packages (plots, the peers of bench/peers) and Debian's
# redis-server (the Celery peer's broker). ARGS passes options: make bench
# ARGS=--quick, make bench ARGS="--peers --quick" (the peer comparison).
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): pyproject.toml constraints.txt $(STAMP)
	@$(PIP) install -q -c constraints.txt -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

bench-deps: deps $(BENCH_STAMP)
	@command -v redis-server >/dev/null 2>&1 || { echo "installing redis-server"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

bench: bench-deps
	$(PY) -m bench $(ARGS)

# The long chaos run (tests/chaos; a short one is part of make test): faults
# one at a time for several minutes, the witness compared with the schedules.
chaos: deps
	$(PY) -m tests.chaos

clean:
	rm -rf .cronfleet
