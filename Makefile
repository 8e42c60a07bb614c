# narcotrack: the two set-up commands of the README are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run install install-test assets test lint bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Locked versions (requirements.lock) constrain every install, so every machine gets the same set.
install: $(BIN)/python assets
	$(BIN)/pip install -q -c requirements.lock -e .

install-test: $(BIN)/python assets
	$(BIN)/pip install -q -c requirements.lock -e '.[test]'

# Browser scripts come from the npm registry at the versions in package-lock.json and are copied into the
# package, which serves them itself: no page loads anything from the internet.
VENDOR := src/narcotrack/web/static/vendor
assets: $(VENDOR)/.stamp

$(VENDOR)/.stamp: package-lock.json
	npm ci --no-audit --no-fund --silent
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/
	cp node_modules/vega/build/vega.min.js node_modules/vega-lite/build/vega-lite.min.js \
	   node_modules/vega-embed/build/vega-embed.min.js $(VENDOR)/
	touch $@

## Install everything and serve the platform on SQLite with demo data at http://127.0.0.1:8000
run: install
	$(BIN)/narcotrack serve --demo

## Install what the tests need and run the whole suite
test: install-test
	$(BIN)/pytest -q

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

## Benchmarks of issue targets; figures go to docs/benchmarks.md
bench: install-test
	$(BIN)/python bench/run.py

## Re-resolve the newest allowed versions and write them to requirements.lock
lock: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip freeze --exclude-editable | grep -v '^narcotrack' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache node_modules $(VENDOR)
