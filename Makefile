# The two commands of the README: `make demo` and `make test`. Each sets up
# everything it needs on a fresh machine (Debian packages, the venv, npm tools).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test proto bench bench-smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

SERVICE_PROTOS = $(shell grep -l '^service ' proto/cached/v1/*.proto)

proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. proto/cached/v1/*.proto
	$(PY) -m grpc_tools.protoc -Iproto --grpc_python_out=. $(SERVICE_PROTOS)

demo: $(STAMP)
	$(PY) -m cached.demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/run.py

bench-smoke: $(STAMP)
	$(PY) benchmarks/run.py --smoke

clean:
	rm -rf $(VENV) .cached
