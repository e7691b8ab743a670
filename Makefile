# colorlab: `make demo` trains on the built-in data, `make test` runs the tests.
# Both create .venv and install colorlab (editable, with dev tools and the sweep plugins) on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
# The tests' worker processes (pytest-xdist); 0 runs them in this process.
WORKERS ?= 2

.PHONY: install demo serve train test test-fast lint typecheck check format clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,sweep]'
	touch $@

demo: install  ## train the baseline briefly on synthetic scenes (CPU-friendly: 1 min 23 s of training on 2 cores once installed)
	$(BIN)/python -m colorlab.train experiment=demo $(ARGS)

serve: install  ## the web page: make serve ARGS="ckpt=outputs/…/checkpoints/best-004.ckpt"
	$(BIN)/python -m colorlab.demo $(ARGS)

train: install  ## python -m colorlab.train $(ARGS)
	$(BIN)/python -m colorlab.train $(ARGS)

test: install  ## the whole suite, with coverage (what CI runs)
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup --cov=colorlab --cov-report=term:skip-covered $(ARGS)

test-fast: install  ## every test that trains no more than a few seconds and starts no browser or server
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup -m "not slow and not browser and not server" $(ARGS)

lint: install
	$(BIN)/ruff check src tests experiments
	$(BIN)/ruff format --check src tests experiments

typecheck: install  ## mypy over src/colorlab (configured in pyproject.toml)
	$(BIN)/mypy

check: lint typecheck test  ## what CI runs

format: install
	$(BIN)/ruff check --fix src tests experiments
	$(BIN)/ruff format src tests experiments

clean:
	rm -rf outputs multirun wandb .pytest_cache .ruff_cache .mypy_cache .coverage
