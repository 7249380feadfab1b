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

# The napari tests need an X server: pytest-xvfb starts a virtual one (Xvfb) around the run.
# As root, the Debian packages it and Qt's xcb platform need are installed first, without
# questions; otherwise (or when they are present) nothing is installed and, lacking Xvfb and
# a display, the tests that open a napari viewer fail under `make test` (skipped elsewhere).
XVFB_PACKAGES := xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0

install-test: $(BIN)/python
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& ! dpkg -s $(XVFB_PACKAGES) >/dev/null 2>&1; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$(XVFB_PACKAGES); \
	fi
	$(PIP) install $(TORCH)
	$(PIP) install -e ".[test]"

# Restore the bundled sample with the best method available offline (DEMO_METHOD: the highest
# hole PSNR and SSIM of every method with its shipped weights on the bundled sample, measured
# with the `inpaint evaluate` command the README gives), write out/astronaut_restored.png and
# the before/after sheet out/astronaut_before_after.png (damaged | mask | restored), then make
# the synthetic damaged mural scan (out/mural/, 2048 x 2048 zarr) and restore it tile by tile
# into out/mural-restored.zarr. All are the demo's own outputs, so replacing them is
# deliberate; the user's files are never touched.
DEMO_METHOD := biharmonic
DEMO_SHEET := out/astronaut_before_after.png

demo: install
	mkdir -p out
	$(BIN)/inpaint run sample_data/astronaut_damaged.png sample_data/astronaut_mask.png \
		--method $(DEMO_METHOD) --output $(DEMO_OUT) --overwrite
	$(BIN)/python sample_data/contact_sheet.py sample_data/astronaut_damaged.png \
		sample_data/astronaut_mask.png $(DEMO_OUT) --output $(DEMO_SHEET) --overwrite
	$(BIN)/python sample_data/make_scan.py --size 2048 --chunk 512 --out out/mural --overwrite
	rm -rf out/mural-restored.zarr
	$(BIN)/inpaint restore out/mural/scan.zarr --mask out/mural/mask.zarr --method telea \
		--output out/mural-restored.zarr

lint: install-test
	$(BIN)/ruff check .

test: lint
	QT_API=pyqt6 INPAINT_REQUIRE_DISPLAY=1 $(BIN)/python -m pytest
