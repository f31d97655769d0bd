# Podium: `make run` starts the server on its embedded default; `make test` runs the suite.
# Both install what is missing first: Debian packages (nginx, chromium) and the Python venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := nginx chromium bubblewrap
# Two workers (pytest-xdist), each taking whole files, so a module's fixtures stay in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: install system-deps run test check lint typecheck bench clean

install: $(STAMP)

# Re-installs only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# nginx routes deployed apps; chromium drives the browser tests. Installed only if missing.
system-deps:
	@missing=""; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

run: install system-deps
	$(BIN)/podium server

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
