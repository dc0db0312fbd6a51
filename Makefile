# The two commands of the README: `make demo` and `make test`. Each sets up
# everything it needs on a fresh machine (Debian packages, the venv, npm tools).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test deps proto bench bench-smoke bench-tools clean

# The venv; then bytecode for the CLI and the client, so a fresh `cached` shell reads .pyc instead of
# compiling them (PYTHONDONTWRITEBYTECODE stops Python writing .pyc, not reading it; compileall writes anyway).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m compileall -q cached client
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests need (Ruby and its gRPC runtime and generator, for client/ruby), installed only when missing.
DEB_PACKAGES := ruby ruby-grpc ruby-grpc-tools
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

deps:
	@dpkg -s $(DEB_PACKAGES) >/dev/null 2>&1 || { echo "installing $(DEB_PACKAGES)"; \
	  $(SUDO) apt-get update -qq >/dev/null && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES) >/dev/null; }

SERVICE_PROTOS = $(shell grep -l '^service ' proto/cached/v1/*.proto)

proto: $(STAMP) deps
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. proto/cached/v1/*.proto
	$(PY) -m grpc_tools.protoc -Iproto --grpc_python_out=. $(SERVICE_PROTOS)
	grpc_tools_ruby_protoc -Iproto --ruby_out=client/ruby/lib --grpc_out=client/ruby/lib proto/cached/v1/*.proto

# Miniflare (workerd) for the demo's local deploy, pinned by tools/miniflare/package-lock.json; installed once.
MINIFLARE_STAMP := tools/miniflare/node_modules/.package-lock.json

$(MINIFLARE_STAMP): tools/miniflare/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 20 and npm (Debian: apt-get install nodejs npm)"; exit 1; }
	cd tools/miniflare && npm ci --no-audit --no-fund --loglevel=error
	touch $(MINIFLARE_STAMP)

demo: $(STAMP) $(MINIFLARE_STAMP)
	$(PY) -m cached.demo

test: $(STAMP) deps
	$(PY) -m pytest -q -rs

# pnpm for benchmarks/packages.py's warm-store baseline, pinned by tools/pnpm/package-lock.json; installed once.
PNPM_STAMP := tools/pnpm/node_modules/.package-lock.json

$(PNPM_STAMP): tools/pnpm/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 20 and npm (Debian: apt-get install nodejs npm)"; exit 1; }
	cd tools/pnpm && npm ci --no-audit --no-fund --loglevel=error
	touch $(PNPM_STAMP)

bench-tools: $(PNPM_STAMP)

# Every benchmark scenario (benchmarks/bench.py --list), then the README's figures from its latest.json.
# BENCH_ARGS: e.g. --quick (3 runs each), --runs N, --only run,load.
BENCH_ARGS ?=

bench: $(STAMP) $(PNPM_STAMP) $(MINIFLARE_STAMP)
	$(PY) -m compileall -q cached client
	$(PY) benchmarks/bench.py $(BENCH_ARGS)
	$(PY) benchmarks/readme_section.py

bench-smoke: $(STAMP)
	$(PY) benchmarks/run.py --smoke

clean:
	rm -rf $(VENV) .cached
