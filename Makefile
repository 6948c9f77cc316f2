# Set-up and everyday jobs. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast test-slow bench install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q -e ".[twin,rl,impactx,io,dev,xopt,control,pva,badger]"
	touch $(STAMP)

install: $(STAMP)

# the IOTA twin for 60 simulated seconds: report in results/twin_run.json, plot in results/
# a one-minute job: every program compiles quick (JACC_COMPILE=fast, see jacc/_tiered.py)
run: $(STAMP)
	JACC_COMPILE=fast $(VENV)/bin/jacc-twin run --json results/twin_run.json --out results

# Two pytest workers (the suite is mostly single-threaded XLA compilation); each test file
# stays on one worker. `make test WORKERS=0` runs in one process. `make test` runs the
# default suite, then the checks that compile for minutes (marked slow, skipped unless
# JACC_SLOW=1) as a second step; each step prints its slowest tests.
WORKERS ?= 2
XDIST = $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadgroup)
PYTEST = $(PY) -m pytest -q --durations=15

test: test-fast test-slow

test-fast: $(STAMP)
	$(PYTEST) -m "not slow" $(XDIST)

test-slow: $(STAMP)
	JACC_SLOW=1 $(PYTEST) -m slow $(XDIST)

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	mkdir -p results
	$(PY) benchmarks/tracking.py --json results/tracking.json
	$(PY) benchmarks/optics.py --json results/optics.json
	$(PY) benchmarks/latency.py --json results/latency.json
	$(PY) benchmarks/twin.py --json results/twin.json
	$(PY) benchmarks/pipeline.py --json results/pipeline.json

clean:
	rm -rf $(VENV) build *.egg-info
