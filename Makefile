# Two commands do all set-up on a fresh machine: `make train` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CONFIG ?= configs/balance.yaml
PYTEST_ARGS ?=

.PHONY: install train test test-all bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# torch first, pinned: on a CPU-only machine this is the CPU build and pulls no CUDA
	# packages. GPU users: install your CUDA build of torch into .venv before `make`.
	$(PY) -m pip show torch >/dev/null 2>&1 || $(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(VENV)/bin/quadlit fit --config $(CONFIG)

# Rendering tests need an X display: without one, run the suite under Xvfb when it is installed.
test: $(STAMP)
	@if [ -z "$$DISPLAY" ] && command -v xvfb-run >/dev/null 2>&1; then \
		echo "no DISPLAY: running the tests under xvfb-run"; \
		xvfb-run -a $(PY) -m pytest $(PYTEST_ARGS); \
	else \
		$(PY) -m pytest $(PYTEST_ARGS); \
	fi

bench: $(STAMP)
	$(VENV)/bin/quadlit bench all

clean:
	rm -rf $(VENV) lightning_logs .pytest_cache
