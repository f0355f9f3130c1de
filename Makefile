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

.PHONY: run test unit lint proto proto-check bench chaos system-deps deps docker image images image-deps compose-deps compose-test web web-test browser clean

# System packages from Debian when the machine lacks them: etcd, Postgres,
# (unless an engine already answers) Docker plus a static busybox for the
# runner image, Node for the dashboard, iptables for the chaos suite, a
# Docker registry and htpasswd for the image-pull tests (a registry on loopback).
system-deps:
	@need=""; \
	command -v etcd >/dev/null 2>&1 || need="$$need etcd-server"; \
	{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need="$$need postgresql"; \
	{ docker info >/dev/null 2>&1 || command -v dockerd >/dev/null 2>&1; } || need="$$need docker.io"; \
	ldd /bin/busybox 2>&1 | grep -q "not a dynamic" || need="$$need busybox-static"; \
	command -v npm >/dev/null 2>&1 || need="$$need nodejs npm"; \
	command -v iptables >/dev/null 2>&1 || need="$$need iptables"; \
	command -v docker-registry >/dev/null 2>&1 || need="$$need docker-registry"; \
	command -v htpasswd >/dev/null 2>&1 || need="$$need apache2-utils"; \
	if [ -n "$$need" ]; then \
	  echo "installing system packages:$$need"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PIP) install -q --upgrade pip >/dev/null
	@$(PIP) install -q -e '.[dev]'
	@touch $(STAMP)

deps: system-deps $(STAMP)

# Start dockerd when no engine answers (there is no init system to do it).
docker: system-deps
	@if ! docker info >/dev/null 2>&1; then \
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
	$(PIP) wheel -q --wheel-dir $(WHEELHOUSE) '.[server]'
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

test: deps proto-check lint image web web-test browser
	$(PY) -m pytest -q tests

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

# ruff (lint + format) and mypy --strict (pyproject.toml) on everything but
# the generated stubs.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(PACKAGES) tests bench

# Generated stubs are committed; proto-check fails when they are stale.
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. proto/cronfleet/v1/*.proto

proto-check: $(STAMP)
	@tmp=$$(mktemp -d); \
	$(PY) -m grpc_tools.protoc -Iproto --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp proto/cronfleet/v1/*.proto; \
	for f in $$tmp/cronfleet/v1/*.py $$tmp/cronfleet/v1/*.pyi; do \
	  cmp -s $$f cronfleet/v1/$$(basename $$f) || { echo "stale generated stub: cronfleet/v1/$$(basename $$f) (run make proto)"; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp

bench: deps
	$(PY) -m bench

# The long chaos run (tests/chaos; a short one is part of make test): faults
# one at a time for several minutes, the witness compared with the schedules.
chaos: deps
	$(PY) -m tests.chaos

clean:
	rm -rf .cronfleet
