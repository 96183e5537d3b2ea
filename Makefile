# The two commands of the README's quick start.
#   make run   install Portvakt into .venv and start it on its embedded defaults
#              (on http://127.0.0.1:8080; another port: make run PORT=8081)
#   make test  install what the tests need (redis-server included) and run them
#   (make test-slow runs the long fault and load tests, which CI runs as well)
PYTHON ?= python3
PORT ?= 8080
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-slow bench clean

# A taken port is refused by `portvakt serve` itself, in one line that says how to choose another.
run: $(VENV)/.installed
	$(BIN)/portvakt serve --port $(PORT)

test: $(VENV)/.installed-test
	./scripts/ensure-test-tools.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest --numprocesses auto --maxprocesses 4

# Fault and load tests (Sentinel failover, Cluster, 200 citizens for 30 s); CI runs them too,
# one at a time: they time failovers and load. The property sweep's long runs time nothing and
# run one worker process a core, as in make test.
test-slow: $(VENV)/.installed-test
	./scripts/ensure-test-tools.sh
	$(BIN)/python -m pytest -m slow tests/properties --numprocesses auto --maxprocesses 4
	$(BIN)/python -m pytest -m slow --ignore tests/properties

bench: $(VENV)/.installed-test
	./scripts/ensure-test-tools.sh wrk
	$(BIN)/python bench/login.py
	$(BIN)/python bench/token_endpoint.py
	$(BIN)/python bench/token_floor.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/bankid.py
	$(BIN)/python bench/saml.py
	$(BIN)/python bench/oidc_upstream.py

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
