# Podium: `make run` starts the server on its embedded default; `make stop` stops the node it
# left running (apps, router, embedded PostgreSQL); `make test` runs the suite. Each installs
# what is missing first: Debian packages (run: nginx; test: chromium too) and the Python venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# What serving apps needs, and what only the browser tests add.
RUN_APT_PACKAGES := nginx
TEST_APT_PACKAGES := chromium
APT_PACKAGES := $(RUN_APT_PACKAGES) $(TEST_APT_PACKAGES)
# Two workers (pytest-xdist), each taking whole files, so a module's fixtures stay in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: install system-deps run-deps apt-missing run stop test check lint typecheck bench clean

install: $(STAMP)

# Re-installs only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# nginx routes deployed apps; chromium drives the browser tests. Installed only if missing.
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
