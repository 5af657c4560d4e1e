# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv first.
# Already have torch (a CUDA build, say) in an environment? `make demo VENV=/path/to/env` reuses it:
# torch is installed only when that environment cannot import one.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.audiobench-installed
DEMO_ROOT ?= audiobench-data
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dask,test]"
	touch $(STAMP)

demo: setup
	$(BIN)/audiobench run pipelines/synth-demo.toml --root $(DEMO_ROOT)

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_ROOT)
