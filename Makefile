# Two entry points, each self-sufficient on a fresh machine:
#   make run   -> create .venv, install caresim, run the baseline scenario into outputs/
#   make test  -> create .venv, install caresim with test extras, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/caresim run scenarios/baseline.yaml --scale 0.1 --replications 4 --jobs 2

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV)
