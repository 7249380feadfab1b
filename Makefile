# The two set-up commands of the README: `make demo` and `make test`. Both start from a clean
# clone: they make a virtual environment in .venv, install torch==2.13.0 first (a CPU wheel;
# the project's own range accepts it, so pip pulls no CUDA build), then the project.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
TORCH := torch==2.13.0
DEMO_OUT := out/astronaut_restored.png

.PHONY: demo test install install-test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(PIP) install $(TORCH)
	$(PIP) install -e .

install-test: $(BIN)/python
	$(PIP) install $(TORCH)
	$(PIP) install -e ".[test]"

# Restore the bundled sample: writes out/astronaut_restored.png, then makes the synthetic
# damaged mural scan (out/mural/, 2048 x 2048 zarr) and restores it tile by tile into
# out/mural-restored.zarr. Both are the demo's own outputs, so replacing them is deliberate;
# the user's files are never touched.
demo: install
	mkdir -p out
	$(BIN)/inpaint run sample_data/astronaut_damaged.png sample_data/astronaut_mask.png \
		--method exemplar --output $(DEMO_OUT) --overwrite
	$(BIN)/python sample_data/make_scan.py --size 2048 --chunk 512 --out out/mural --overwrite
	rm -rf out/mural-restored.zarr
	$(BIN)/inpaint restore out/mural/scan.zarr --mask out/mural/mask.zarr --method telea \
		--output out/mural-restored.zarr

lint: install-test
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest
