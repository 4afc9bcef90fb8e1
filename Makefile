# emotrt: `make demo` runs the main job on the embedded default, `make test` the whole suite.
# Both set everything up first: system packages (apt-get when root), a local venv, pinned Python packages.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= data/synth
OUT ?= out/demo

.PHONY: setup system venv demo test clean
setup: system venv

system:
	@bash scripts/setup-system.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first and pinned, so nothing below pulls a multi-GB CUDA build (REFERENCE.md).
	$(BIN)/pip install -q -c constraints.txt torch
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

demo: setup
	BIN=$(BIN) DATA=$(DATA) OUT=$(OUT) bash scripts/demo.sh

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info out
