# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each runs the set-up first (idempotent, quick when nothing changed).

SHELL := /bin/bash
SETUP := bash scripts/setup_workspace.sh
IN_ENV := set +u && source env.sh && set -u &&

.PHONY: setup demo test lint clean

setup:
	$(SETUP)

demo: setup
	$(IN_ENV) python -m edge_infer demo

test: setup
	$(IN_ENV) python -m pytest edge_infer/test

lint: setup
	$(IN_ENV) python -m pytest edge_infer/test -m linter

clean:
	rm -rf build install log .venv env.sh demo_output
