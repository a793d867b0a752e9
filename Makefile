# Two entry points, each self-sufficient on a fresh machine:
#   make run   -> create .venv, install caresim, run the baseline scenario into outputs/
#   make test  -> create .venv, install caresim with test extras (and Debian's chromium if
#                 missing, for the brief's browser test), run the test suite
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

# The brief's browser test opens HTML in Debian's Chromium (root on CI and these machines).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV)
