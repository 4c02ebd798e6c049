# The two commands of the README: `make demo` (the main job) and `make test` (the test suite).
.PHONY: demo demo-digits test bootstrap bench lint

bootstrap:
	@bash scripts/bootstrap.sh

# Each step is cached: a second `make demo` skips what is done.
demo: bootstrap
	.venv/bin/proactiv kws synth --out data/kws
	.venv/bin/proactiv kws train --data data/kws --arch dscnn --out models/kws-dscnn
	.venv/bin/proactiv sweep examples/kws_demo.yaml --out runs/kws-demo --resume
	.venv/bin/proactiv info runs/kws-demo
	.venv/bin/proactiv report runs/kws-demo
	.venv/bin/proactiv serve runs/kws-demo

# The toy task: scikit-learn's digits, no corpus or training step needed.
demo-digits: bootstrap
	.venv/bin/proactiv sweep examples/digits_demo.yaml --out runs/digits-demo --resume
	.venv/bin/proactiv info runs/digits-demo

test: bootstrap
	.venv/bin/python -m pytest -q

lint: bootstrap
	.venv/bin/ruff check src tests benchmarks

bench: bootstrap
	.venv/bin/python benchmarks/bench_projection.py
