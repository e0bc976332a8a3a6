# The README's two commands: `make demo` (the main job) and `make test` (every test).
# Both install what they need by themselves: Debian packages (as root), the venv, and
# the sandbox Asterisk chroot.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := debootstrap zstd mosquitto sip-tester libportaudio2 sox espeak-ng iproute2 procps
PYTEST_ARGS ?=

.PHONY: demo test deps venv sandbox lint clean

demo: deps venv sandbox
	$(PY) -m dialerd demo $(DEMO_ARGS)

test: deps venv
	$(PY) -m ruff check dialerd tests bench
	$(PY) -m mypy
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(PY) -m ruff check dialerd tests bench
	$(PY) -m ruff format --check dialerd tests bench
	$(PY) -m mypy

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages: $$missing (run as root or apt-get install them)"; exit 1; fi; \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,phone]'
	touch $@

sandbox: deps
	asterisk/sandbox up

clean:
	-asterisk/sandbox down
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
