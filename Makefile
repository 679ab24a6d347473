# One command to set up and test, one to set up and run the embedded replay.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck bench clean tools

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Prometheus and Alertmanager binaries for tests/deploy (apt-get when missing and root).
tools:
	bash deploy/ensure-tools.sh

test: $(STAMP) tools
	$(PY) -m ruff check models alerts streams tests bench
	$(PY) -m mypy --strict models alerts
	$(PY) -m mypy --strict streams/observability streams/review
	$(PY) -m pytest

demo: $(STAMP)
	$(VENV)/bin/crswatch replay cases/ruemmele-2025.jsonl cases/mcnerney-2022.jsonl

bench: $(STAMP)
	$(PY) bench/fold.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
