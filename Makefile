# The two commands of the README: `make demo` (the main job) and `make test` (the test suite).
.PHONY: demo demo-digits demo-denoise reference-digits test package bootstrap bootstrap-demo bench lint docs

# the demo installs what it needs (no test tools, no browser); the tests install the rest
bootstrap-demo:
	@bash scripts/bootstrap.sh demo

bootstrap:
	@bash scripts/bootstrap.sh test

# Each step is cached: a second `make demo` skips what is done.
demo: bootstrap-demo
	.venv/bin/proactiv kws synth --out data/kws
	.venv/bin/proactiv kws train --data data/kws --arch dscnn-wide --out models/kws-dscnn
	.venv/bin/proactiv sweep examples/kws_demo.yaml --out runs/kws-demo --resume
	.venv/bin/proactiv info runs/kws-demo
	.venv/bin/proactiv report runs/kws-demo
	.venv/bin/proactiv serve runs/kws-demo

# Image tasks: scikit-learn's digits at 28x28, no corpus needed (the CNN trains in seconds, cached).
demo-digits: bootstrap-demo
	.venv/bin/proactiv sweep examples/digits_demo.yaml --out runs/digits-demo --resume
	.venv/bin/proactiv info runs/digits-demo
	.venv/bin/proactiv report runs/digits-demo
	.venv/bin/proactiv serve runs/digits-demo

# Image-to-image: the denoising autoencoder under noise x blur x rotation.
demo-denoise: bootstrap-demo
	.venv/bin/proactiv sweep examples/denoise_demo.yaml --out runs/denoise-demo --resume
	.venv/bin/proactiv info runs/denoise-demo
	.venv/bin/proactiv report runs/denoise-demo
	.venv/bin/proactiv serve runs/denoise-demo

# The reference study's 450-point grid on the digits (90 000 projections, ~15 min on 2 cores).
reference-digits: bootstrap-demo
	.venv/bin/proactiv sweep examples/digits_reference.yaml --out runs/digits-reference --resume
	.venv/bin/proactiv report runs/digits-reference
	.venv/bin/proactiv serve runs/digits-reference

test: bootstrap
	.venv/bin/python -m pytest -q

# the sdist and wheel built and checked, the wheel installed with its core dependencies only into a fresh venv
# and smoke-tested from outside the source tree (about 1.5 min)
package: bootstrap
	bash scripts/check_package.sh

# the docs site at http://127.0.0.1:8000, rebuilt on every change (the docs tools come with the test install)
docs: bootstrap
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs serve

lint: bootstrap
	.venv/bin/ruff check src tests benchmarks

bench: bootstrap
	.venv/bin/python benchmarks/bench_projection.py
