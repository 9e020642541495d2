# llmos — the two commands a fresh Debian 12 machine with Swift needs:
#   make run    build everything, set up the local model, and start the agent REPL (offline)
#   make test   build everything and run the whole test suite
# plus `make bench` for the benchmarks (numbers go to BENCHMARKS.md).

SWIFT ?= swift
APT_PACKAGES := libffi-dev libcurl4-openssl-dev libsqlite3-dev libpq-dev pkg-config
# The postgres storage driver's tests start a real PostgreSQL 15 server; pdftotext lets `llmos ingest` read PDFs.
APT_PACKAGES += postgresql-15 poppler-utils
# For `make models` (scripts/setup-model): pip downloads, a C++ compiler builds llama-server.
APT_PACKAGES += python3 python3-pip g++
# The dashboard's tests (ServeHTTPTests) load it in headless Chromium and keep screenshots.
APT_PACKAGES += chromium
# The mcp driver's sandbox tests mount the reference server mcp-server-git, which runs git.
APT_PACKAGES += git
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build run test bench clean models setup-model

# The Python venv with the MCP SDK (see its rule below); defined before the rules that name it.
MCP_VENV := .build/mcp-venv

all: build

# Installs the system packages that are missing (only those), with apt's own progress.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing system packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

# The local model (SmolLM2-135M-Instruct + a llama.cpp llama-server built from source) in
# ${XDG_CACHE_HOME:-~/.cache}/llmos: downloaded and built once (4-8 minutes on 2 cores),
# "already set up" in well under a second after that. See docs/MODELS.md.
models setup-model: deps
	@python3 scripts/setup-model

build: deps
	@echo "==> swift build (the first build fetches and compiles dependencies: about a minute)"
	$(SWIFT) build

run: build models
	.build/debug/llmos run

test: deps models $(MCP_VENV)/.installed
	@echo "==> swift test (builds first; the tests load the drivers the build produced)"
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build


# The official MCP Python SDK and the reference time server (pinned), in a virtual
# environment of its own: the isolation and MCP benchmarks, `llmos serve --mcp`'s tests,
# and the mcp driver's tests, which mount real MCP servers from PyPI.
$(MCP_VENV)/.installed: Benchmarks/mcp-reference/requirements.txt
	@echo "==> python venv with the MCP SDK and the reference servers time, git and fetch ($(MCP_VENV))"
	python3 -m venv $(MCP_VENV)
	$(MCP_VENV)/bin/pip install --progress-bar on -q -r Benchmarks/mcp-reference/requirements.txt
	@touch $@

bench: deps models $(MCP_VENV)/.installed
	@echo "==> swift build -c release (benchmarks measure optimised code)"
	$(SWIFT) build -c release
	LLMOS_BENCH_PYTHON=$(MCP_VENV)/bin/python .build/release/llmos-bench --markdown BENCHMARKS.md
	.build/release/llmos-model-bench --markdown BENCHMARKS.md
	$(MCP_VENV)/bin/python Benchmarks/mcp-serve/bench.py --llmos .build/release/llmos --markdown BENCHMARKS.md

clean:
	rm -rf .build
