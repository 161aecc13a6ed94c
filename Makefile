# The two things a newcomer does: `make demo` and `make test`. Both install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/otel-obs demo

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .otel-obs
