# The two commands of the README: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export NO_MKDOCS_2_WARNING := 1

.PHONY: install test test-fast docs demo demo-quick methods clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The suite in one pytest process per core (pytest-xdist; at most 4: most slow tests start processes of their own;
# an idle process takes work queued for another, so one long test does not leave a core idle at the end)
PYTEST := $(BIN)/python -m pytest -n auto --maxprocesses 4 --dist worksteal

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mkdocs build --strict --quiet
	$(PYTEST)

# The documentation site (MkDocs Material; the API pages from docstrings) into site/
docs: install
	$(BIN)/mkdocs build --strict

# The edit loop: everything but the tests marked slow (subprocesses, browsers, compilers); CI runs `make test`.
test-fast: install
	$(BIN)/ruff check src tests benchmarks
	$(PYTEST) -m "not slow"

# The embedded generator ships with the package; a checkout without it builds it first (about 33 min on 2 cores).
GENERATOR := src/synthbridge/embedded/assets/generator/model_index.json

$(GENERATOR): | $(STAMP)
	$(BIN)/synthbridge build-generator

demo: install $(GENERATOR)
	$(BIN)/synthbridge demo --out demo

demo-quick: install $(GENERATOR)
	$(BIN)/synthbridge demo --quick --out demo-quick

methods: install $(GENERATOR)
	$(BIN)/synthbridge demo --preset methods --out methods

clean:
	rm -rf $(VENV) build site *.egg-info src/*.egg-info
