# One place for the project's routine commands. `make demo` and `make test` each install what
# they need, so both work on a fresh clone.
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check
REVENUE = examples/revenue

.PHONY: demo test validate check bench install

install:
	$(PIP) -e .

demo: install
	$(PYTHON) $(REVENUE)/build_db.py
	rlaif-sql verify --tasks $(REVENUE)/tasks.jsonl --candidates $(REVENUE)/candidates.jsonl \
		--out runs/revenue/verdicts.jsonl

validate:
	$(PYTHON) $(REVENUE)/build_db.py
	rlaif-sql validate --tasks $(REVENUE)/tasks.jsonl

test:
	$(PIP) -e ".[dev,code]"
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
