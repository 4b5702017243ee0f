# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Set-up is idempotent: it re-runs only when pyproject.toml or package-lock.json change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: setup demo test lint bench contracts clean

setup: $(STAMP) $(NPM_STAMP)
	@cd / && $(CURDIR)/$(BIN)/shortfall --version >/dev/null 2>&1 || { \
		echo "setup: the installed package does not import; reinstalling it"; \
		$(CURDIR)/$(BIN)/python -m pip install --quiet -e '$(CURDIR)[test]'; }

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(NPM_STAMP): package.json package-lock.json
	# The lock file lists every platform's optional anvil build, so `npm ci` installs exactly
	# the pinned versions (this platform's build only) and never rewrites the lock.
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(BIN)/shortfall demo

test: setup
	bash tools/test-setup.sh
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m benchmarks

contracts: setup
	$(BIN)/python -m keeper.devnet.build

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
