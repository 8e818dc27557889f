# The two commands a newcomer runs: `make onsale` (the main job) and `make test`.
# Both create the virtual environment, install the Python dependencies, fetch
# Kafka and Cassandra from Maven Central (cached in ~/.m2 and infra/.cache) and
# start them on 127.0.0.1 when they are not running yet.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
BIN := $(VENV)/bin

.PHONY: onsale test lint services-down

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

onsale: $(STAMP)
	$(BIN)/ticketing onsale $(ONSALE_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP) lint
	infra/promtool.sh >/dev/null
	$(BIN)/ticketing services up
	$(BIN)/pytest -p no:cacheprovider

services-down: $(STAMP)
	$(BIN)/ticketing services down
