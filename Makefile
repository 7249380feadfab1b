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

# Restore the bundled sample: writes out/astronaut_restored.png (the demo's own output, so
# --overwrite is deliberate; the user's files are never touched).
demo: install
	mkdir -p out
	$(BIN)/inpaint run sample_data/astronaut_damaged.png sample_data/astronaut_mask.png \
		--method exemplar --output $(DEMO_OUT) --overwrite

lint: install-test
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest
