"""The bundled code pack: every candidate gets the reason recorded in its `expect` field,
every task has a passing candidate, and every code reason appears."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlaif_sql.models import CodeTask, Reason, load_candidates, load_tasks
from rlaif_sql.sandboxes.process import CodeSandbox, CodeSandboxConfig
from rlaif_sql.verifiers.code import check

PACK = Path(__file__).resolve().parents[2] / "examples" / "code_pack"


@pytest.fixture(scope="module")
def verdicts():
    tasks = {t.task_id: t for t in load_tasks(PACK / "tasks.jsonl")}
    candidates = load_candidates(PACK / "candidates.jsonl")
    with CodeSandbox(CodeSandboxConfig(workers=2)) as box:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(4) as pool:
            found = list(pool.map(lambda c: check(c, tasks[c.task_id], sandbox=box), candidates))
    return tasks, candidates, found


def test_every_candidate_gets_its_expected_reason(verdicts):
    _, candidates, found = verdicts
    wrong = [
        (c.candidate_id, c.meta["expect"], v.reason.value, v.detail[:120])
        for c, v in zip(candidates, found, strict=True)
        if v.reason.value != c.meta["expect"]
    ]
    assert wrong == []


def test_every_task_has_a_passing_candidate_and_every_reason_appears(verdicts):
    tasks, _, found = verdicts
    assert all(isinstance(t, CodeTask) for t in tasks.values())
    assert {v.task_id for v in found if v.passed} == set(tasks)
    code_reasons = {
        Reason.OK, Reason.NO_CODE, Reason.SYNTAX_ERROR, Reason.IMPORT_ERROR,
        Reason.TEST_FAILURE, Reason.TIMEOUT, Reason.MEMORY_LIMIT, Reason.CRASH, Reason.FORBIDDEN,
    }  # fmt: skip
    assert code_reasons <= {v.reason for v in found}


def test_build_script_reproduces_the_committed_files(tmp_path):
    import runpy

    module = runpy.run_path(str(PACK / "build.py"))
    module["write"](tmp_path / "tasks.jsonl", module["build_tasks"]())
    module["write"](tmp_path / "candidates.jsonl", module["build_candidates"]())
    for name in ("tasks.jsonl", "candidates.jsonl"):
        assert (tmp_path / name).read_text() == (PACK / name).read_text()
