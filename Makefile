# Two entry points for a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip
# torch/torchvision pins that install from this machine's local wheel cache; pyproject keeps ranges.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
MIRROR ?= $(abspath ../shared/data)

.PHONY: setup postgres browser demo test test-all lint perf gpu-check clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PINS)
	$(PIP) install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# A PostgreSQL server for the shared-store tests (tests/postgres.py starts a throwaway one): Debian's
# package, installed with apt-get when run as root (CI); otherwise those tests skip, saying why.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; \
	  else echo "PostgreSQL is not installed and apt-get is not possible here: its tests will be skipped"; fi; \
	fi

# Chromium for the report / leaderboard page tests (driven by Playwright through executable_path: no
# browser download). Installed from the Debian packages when missing and apt-get is there (CI runs as
# root); elsewhere the browser tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) || \
	    echo "chromium not installed (needs root and apt-get): the browser tests will skip"; }

# The hub is unreachable on the build machines: the demo scores the untrained TopoNet (labelled so).
DEMO_BENCHMARKS = kriegeskorte2008.hit-rsa kriegeskorte2008.mit-rsa kriegeskorte2008.hit-trsa kriegeskorte2008.mit-trsa

demo: setup
	NEUROBENCH_MIRROR=$(MIRROR) $(VENV)/bin/neurobench score --model toporesnet18 --weights random --benchmark $(DEMO_BENCHMARKS)
	NEUROBENCH_MIRROR=$(MIRROR) $(VENV)/bin/neurobench topo --model toporesnet18 --weights random --layers layer3.1 layer4.1
	NEUROBENCH_MIRROR=$(MIRROR) $(VENV)/bin/neurobench leaderboard --export leaderboard.csv
	@echo "report of the demo run (self-contained HTML, open it in a browser):"
	NEUROBENCH_MIRROR=$(MIRROR) $(VENV)/bin/neurobench report --model toporesnet18-tau10 --benchmark $(DEMO_BENCHMARKS) \
	  --topo neurobench-topo-toporesnet18-tau10-untrained --out neurobench-report.html

test: setup postgres browser
	NEUROBENCH_MIRROR=$(MIRROR) $(PY) -m pytest -q

test-all: setup postgres browser
	NEUROBENCH_MIRROR=$(MIRROR) $(PY) -m pytest -q -m ''

lint: setup
	$(VENV)/bin/ruff check .

# On a machine with a CUDA GPU: the GPU tests and the perf suites on cuda, one summary table (< 5 min).
gpu-check: setup
	NEUROBENCH_MIRROR=$(MIRROR) $(VENV)/bin/neurobench perf gpu

clean:
	rm -rf $(VENV) build *.egg-info
