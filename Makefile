# diffcli: two commands set everything up on a fresh machine.
#   make test   -> creates .venv, installs diffcli and its test extras, runs the whole suite
#   make demo   -> creates .venv, installs, runs the main jobs and writes PNGs into demo-out/
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch is pinned here (the project declares a range): these releases install from the CI disk.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
PYTEST_WORKERS ?= 2
# The real datasets `make scorers` builds the shipped scoring classifiers from (torchvision root / IDX folder).
MNIST_DIR ?= ../shared/data
FASHION_DIR ?= /usr/share/datasets/fashion-mnist

.PHONY: install test lint test-fast demo docs bench bench-quality figures illusions pretrained scorers assets clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[test,hub,clip]' $(TORCH_PINS)
	touch $(STAMP)

test: $(STAMP) lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q --durations=15

# ruff (configured in pyproject.toml): lint and format, checked by `make test`
lint: $(STAMP)
	$(PY) -m ruff check --no-cache .
	$(PY) -m ruff format --check --no-cache .

test-fast: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q -m "not slow"

demo: $(STAMP)
	bash scripts/demo.sh demo-out

docs: $(STAMP)
	$(PY) -m diffcli.cli.reference > docs/commands.md

bench: $(STAMP)
	$(PY) bench/run.py

# Time to quality, default recipe vs the course's, on MNIST (hours on a 2-core CPU: separate from `make bench`).
bench-quality: $(STAMP)
	$(PY) bench/quality.py $(if $(DATA),--data-dir $(DATA))

figures: $(STAMP)
	$(PY) scripts/figures.py

# docs/illusions.md: success per seed over every class pair, before / after / best of 8 (DATA: where MNIST
# is, when the scoring classifier is not cached yet)
illusions: $(STAMP)
	$(PY) scripts/illusion_tables.py $(if $(DATA),--data-dir $(DATA))

pretrained: $(STAMP)
	bash scripts/pretrained.sh

# Rebuild diffcli/scoring/assets (scoring classifiers, FID statistics, provenance.json) from the real data.
scorers: $(STAMP)
	$(PY) scripts/build_scorers.py --mnist $(MNIST_DIR) --fashion-mnist $(FASHION_DIR)

# Redraw the built-in sample images (diffcli/io/assets/*.png).
assets: $(STAMP)
	$(PY) scripts/make_assets.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
