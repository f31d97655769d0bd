# Podium: `make run` starts the server on its embedded default; `make stop` stops the node it
# left running (apps, router, embedded PostgreSQL); `make test` runs the suite. Each installs
# what is missing first: Debian packages (run: nginx, bubblewrap; test: chromium, an OpenID Connect
# provider, Docker and a registry too) and the Python venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The sandbox's last step before an app's command (becomes its user, no capabilities, INT and
# QUIT at their defaults): one static exec instead of setpriv + env. Podium falls back to those
# two when it is missing.
DROP := $(VENV)/libexec/podium-drop
DROP_SOURCE := src/podium/runtime/podium-drop.c
CC ?= cc
# What serving apps needs (nginx routes, bubblewrap sandboxes each process), and what only the
# tests add: chromium drives the browser tests, glewlwyd is the OpenID Connect provider the
# single sign-on tests sign in at, docker.io, debootstrap and docker-registry run the swarm
# runtime's tests (a two-node swarm and its registry), pebble is the ACME server certificates
# are issued by in the TLS tests.
RUN_APT_PACKAGES := nginx bubblewrap
TEST_APT_PACKAGES := chromium glewlwyd docker.io debootstrap docker-registry pebble
APT_PACKAGES := $(RUN_APT_PACKAGES) $(TEST_APT_PACKAGES)
# The swarm runtime's stack image: Debian bookworm (minbase) with Python and nginx (the router), imported into the engine at
# DOCKER_HOST. Its rootfs tarball is cached so a later build on the same machine skips debootstrap.
STACK_TAG ?= podium-stack:bookworm-1
STACK_CACHE ?= /var/cache/podium
STACK_ROOTFS := $(STACK_CACHE)/stack-bookworm-1.tar
DEBIAN_MIRROR ?= http://deb.debian.org/debian
# Two workers (pytest-xdist), each taking whole files, so a module's fixtures stay in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: install system-deps run-deps apt-missing stack-image run stop test check lint typecheck bench clean

install: $(STAMP) $(DROP)

# Re-installs only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A C compiler and a static libc, only if missing, then one file.
$(DROP): $(DROP_SOURCE) | $(STAMP)
	@$(MAKE) --no-print-directory apt-missing PACKAGES="gcc libc6-dev"
	mkdir -p $(@D)
	$(CC) -static -O2 -Wall -Wextra -Werror -o $@.tmp $(DROP_SOURCE) && strip $@.tmp && mv $@.tmp $@

# Debian packages, installed only if missing.
run-deps:
	@$(MAKE) --no-print-directory apt-missing PACKAGES="$(RUN_APT_PACKAGES)"

system-deps:
	@$(MAKE) --no-print-directory apt-missing PACKAGES="$(APT_PACKAGES)"

apt-missing:
	@missing=""; \
	for p in $(PACKAGES); do \
		case $$p in \
			nginx) command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx";; \
			chromium) [ -x /usr/bin/chromium ] || missing="$$missing chromium";; \
			*) dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p";; \
		esac; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Builds the stack image only when the engine at DOCKER_HOST does not have it yet; prints its tag.
stack-image: system-deps
	@if ! docker image inspect $(STACK_TAG) >/dev/null 2>&1; then \
		if [ ! -s $(STACK_ROOTFS) ]; then \
			rootfs=$$(mktemp -d) && mkdir -p $(STACK_CACHE) && \
			debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,nginx \
				bookworm $$rootfs $(DEBIAN_MIRROR) >$(STACK_CACHE)/debootstrap.log 2>&1 && \
			rm -rf $$rootfs/var/cache/apt/archives/*.deb $$rootfs/var/lib/apt/lists/* && \
			tar -C $$rootfs -cf $(STACK_ROOTFS).tmp . && mv $(STACK_ROOTFS).tmp $(STACK_ROOTFS) && \
			rm -rf $$rootfs || { rm -rf $$rootfs; echo "debootstrap failed: see $(STACK_CACHE)/debootstrap.log" >&2; exit 1; }; \
		fi; \
		docker import $(STACK_ROOTFS) $(STACK_TAG) >/dev/null; \
	fi
	@echo $(STACK_TAG)

run: install run-deps
	$(BIN)/podium server

# Stops every app, the router, the embedded PostgreSQL and supervisord that `make run` left.
stop: install
	$(BIN)/podium node stop

test: install system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

check: lint typecheck

lint: install
	$(BIN)/ruff check src tests bench

typecheck: install
	$(BIN)/mypy src

bench: install system-deps
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .podium .pytest_cache .mypy_cache .ruff_cache
