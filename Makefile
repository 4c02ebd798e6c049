# The two commands of the README: `make demo` (the main job) and `make test` (the test suite).
.PHONY: demo test bootstrap bench lint

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/proactiv sweep examples/digits_demo.yaml --out runs/digits-demo --resume
	.venv/bin/proactiv info runs/digits-demo

test: bootstrap
	.venv/bin/python -m pytest -q

lint: bootstrap
	.venv/bin/ruff check src tests benchmarks

bench: bootstrap
	.venv/bin/python benchmarks/bench_projection.py
