# Quick start: `make demo` runs the demo, `make test` runs the whole test suite.
# Each installs what it needs on a fresh machine (a virtual environment in .venv; `make test` also
# installs the Debian packages listed in ci/apt-packages.txt).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint system clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[all,dev]'
	$(BIN)/pip install --quiet --no-deps onnx2torch==1.5.15 rapidocr-onnxruntime==1.4.4
	touch $@

demo: $(BIN)/.installed
	$(BIN)/afterlearner demo

system:
	bash scripts/setup-system.sh

test: $(BIN)/.installed system
	$(BIN)/python -m pytest

# The quick loop (under 2 minutes on the 2-core machine): every test but those marked slow, with one
# torch thread per process, since two threads on two busy cores made in-process training up to 10×
# slower. `make test` runs everything with torch's default threads.
test-fast: $(BIN)/.installed
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m "not slow"

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench examples

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
