# Two commands matter: `make dev` and `make test`. Everything else is a helper they call.
SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/huddle
export UV_CACHE_DIR := $(CACHE)/uv
UV := $(CACHE)/tools/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.lock pyproject.toml | sha256sum | cut -c1-16)

.PHONY: dev test setup lint typecheck check bench pds migrate lock clean histories

$(UV):
	python3 -m venv $(CACHE)/tools
	$(CACHE)/tools/bin/pip install -q uv==0.13.8

$(STAMP): $(UV) requirements-dev.lock pyproject.toml
	test -x $(PY) || $(UV) venv -q --python python3.11 $(VENV)
	$(UV) pip sync -q --python $(PY) requirements-dev.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

dev: setup
	HUDDLE_DEV_MODE=true $(VENV)/bin/huddle dev

# The browser tests need Debian's Chromium and the PDS tests Node 22 + the PDS: both are installed
# (once, cached) before pytest so their time never counts against a test's timeout.
test: setup
	$(PY) -m tests.web.chromium
	$(PY) -m tests.peers.pds_install -q
	$(PY) -m pytest -q -rfE $(PYTEST_ARGS)

# The workflow histories of every path the `history`-marked tests drive, recorded from this commit's
# code into tests/replay/histories/<date>-<commit>/ to be committed (docs/versioning.md). Only from
# committed workflow code: the folder's name says which code made them.
HISTORIES = tests/replay/histories/$(shell git log -1 --format=%cs-%h)
histories: setup
	@git diff --quiet HEAD -- workflows kernel || { echo "commit workflows/ and kernel/ first"; exit 1; }
	$(PY) -m tests.peers.pds_install -q
	HUDDLE_RECORD_HISTORIES=$(HISTORIES) $(PY) -m pytest -q -rfE -m history -p no:xdist $(PYTEST_ARGS)
	@ls $(HISTORIES)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy kernel models workflows activities api workers clients

check: lint typecheck test

bench: setup
	$(PY) -m bench

# A real local PDS + PLC (Node 22, installed into $(CACHE) on first use), for trying things by hand.
pds: setup
	$(PY) -m tests.peers.pds_peer

migrate: setup
	$(VENV)/bin/huddle migrate

# Hashed locks with no registry address in them (uv.lock would record one).
lock: $(UV)
	$(UV) pip compile -q pyproject.toml --generate-hashes --python-version 3.11 -o requirements.lock
	$(UV) pip compile -q pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements-dev.lock

clean:
	rm -rf $(VENV) var
