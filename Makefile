# Neuron Hub — the two commands of the quick start, and a few for developers.
#   make demo   the whole pipeline on embedded defaults (creates .venv on first use);
#               its ports: make demo API_PORT=8800 AIRFLOW_PORT=8081
#   make test   the test suite (creates .venv on first use)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The district's object-storage tests talk to moto's S3 server, kept in a virtualenv of its own.
S3_PEER := .venv-s3peer
S3_STAMP := $(S3_PEER)/.installed
API_PORT ?= 8700
AIRFLOW_PORT ?= 8080

.PHONY: demo test test-fast lint bench install clean

# The venv is rebuilt whenever the pinned set or the project's metadata changes.
$(STAMP): constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,simulator]'
	@touch $(STAMP)

$(S3_STAMP): simulator/s3_peer.txt
	$(PYTHON) -m venv $(S3_PEER)
	$(S3_PEER)/bin/python -m pip install --quiet -r simulator/s3_peer.txt
	@touch $(S3_STAMP)

install: $(STAMP) $(S3_STAMP)

demo: $(STAMP)
	$(BIN)/neuron demo --port $(API_PORT) --airflow-port $(AIRFLOW_PORT)

test: $(STAMP) $(S3_STAMP)
	$(BIN)/python -m pytest -ra

test-fast: $(STAMP)
	$(BIN)/python -m pytest -ra -m 'not slow'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(S3_PEER) var lake .pytest_cache .mypy_cache .ruff_cache
