# Two commands set everything up on a fresh machine with Python 3.11+:
#   make run    the server on http://127.0.0.1:8080 over ./sealtrail-data (the first run creates the log
#               and prints an admin token once)
#   make test   lint (ruff), types (mypy) and the whole test suite
# and one more for a look without a server:
#   make demo   create a log, append sample DevSecOps events, print the signed checkpoint, verify
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= sealtrail-data

.PHONY: run demo test lint types bench clean

$(BIN)/sealtrail: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "sealtrail needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/sealtrail
	$(BIN)/sealtrail serve --dir $(DEMO) --origin demo.sealtrail.local/audit

demo: $(BIN)/sealtrail
	@test -f $(DEMO)/log.db || $(BIN)/sealtrail init --dir $(DEMO) --origin demo.sealtrail.local/audit
	$(BIN)/sealtrail append --dir $(DEMO) examples/devsecops-events.ndjson
	$(BIN)/sealtrail checkpoint --dir $(DEMO)
	$(BIN)/sealtrail verify --dir $(DEMO)

lint: $(BIN)/sealtrail
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

types: $(BIN)/sealtrail
	$(BIN)/mypy

test: lint types
	$(BIN)/pytest -n auto

bench: $(BIN)/sealtrail
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/ingest_floor.py
	$(BIN)/python bench/http_ingest.py
	$(BIN)/python bench/proofs.py
	$(BIN)/python bench/verify.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/integrity.py
	$(BIN)/python bench/alert_engine.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache
