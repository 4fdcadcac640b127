"""The code verifier: extraction shapes, each verdict reason, checks, evidence, fallbacks."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlaif_sql.errors import ConfigError
from rlaif_sql.models import Candidate, CheckStatus, CodeTask, Reason
from rlaif_sql.sandboxes.process import CodeSandbox, CodeSandboxConfig
from rlaif_sql.verifiers.code import check
from rlaif_sql.verifiers.code_extract import extract_code

PROMPT = 'def inc(x: int) -> int:\n    """Return x + 1."""\n'
TESTS = "from solution import inc\n\ndef test_one():\n    assert inc(1) == 2\n\ndef test_zero():\n    assert inc(0) == 1\n"
TASK = CodeTask("inc", PROMPT, "inc", TESTS, timeout_s=3.0, memory_mb=256)
GOOD = "def inc(x):\n    return x + 1\n"


@pytest.fixture(scope="module")
def box():
    with CodeSandbox(CodeSandboxConfig(workers=2)) as sandbox:
        yield sandbox


def verdict(box, completion, task=TASK):
    return check(Candidate(task.task_id, "c", completion), task, sandbox=box)


def test_fenced_block_defining_the_entry_point_is_chosen():
    text = f"Helper:\n```python\ndef other():\n    pass\n```\nAnswer:\n```python\n{GOOD}```\n"
    found = extract_code(text, prompt=PROMPT, entry_point="inc")
    assert found.style == "fenced" and found.code == GOOD


def test_continuation_of_the_prompt_without_the_body_fails_the_tests(box):
    assert verdict(box, "def other(x):\n    return x\n").reason is Reason.TEST_FAILURE


def test_bare_code_and_continuation_are_recognised():
    assert extract_code(GOOD, prompt=PROMPT, entry_point="inc").style == "bare"
    body = "    return x + 1\n"
    found = extract_code(body, prompt=PROMPT, entry_point="inc")
    assert found.style == "continuation" and found.code == PROMPT + body


def test_prose_is_no_code_and_broken_code_is_a_syntax_error():
    assert extract_code("I cannot do that.", prompt="", entry_point="inc").problem == "no_code"
    assert (
        extract_code("def inc(x)\n  return", prompt="", entry_point="inc").problem == "syntax_error"
    )


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_extraction_never_raises(text):
    found = extract_code(text, prompt=PROMPT, entry_point="inc")
    assert found.problem in ("", "no_code", "syntax_error")


def test_correct_candidate_passes_with_full_evidence(box):
    v = verdict(box, f"Sure!\n```python\n{GOOD}```")
    assert v.passed and v.reason is Reason.OK
    assert [c.name for c in v.checks] == ["extract", "syntax", "sandbox", "tests"]
    assert all(c.status is CheckStatus.PASSED for c in v.checks)
    ev = v.evidence
    assert (ev["collected"], ev["passed"], ev["failed"], ev["errored"], ev["skipped"]) == (
        2,
        2,
        0,
        0,
        0,
    )
    assert ev["isolation"] == "bwrap"


@pytest.mark.parametrize(
    ("completion", "reason", "failed_check"),
    [
        ("", Reason.NO_CODE, "extract"),
        ("def inc(x):\n    return (x +\n", Reason.SYNTAX_ERROR, "syntax"),
        ("def other(x):\n    return x\n", Reason.IMPORT_ERROR, "tests"),
        ("import no_such_module_xyz\n" + GOOD, Reason.IMPORT_ERROR, "tests"),
        ("def inc(x):\n    return x + 2\n", Reason.TEST_FAILURE, "tests"),
        ("def inc(x):\n    raise ValueError('no')\n", Reason.TEST_FAILURE, "tests"),
    ],
)
def test_each_failure_reason_names_its_check(box, completion, reason, failed_check):
    v = verdict(box, completion, replace(TASK, prompt=""))
    assert v.reason is reason, v.detail
    failed = [c for c in v.checks if c.status is CheckStatus.FAILED]
    assert [c.name for c in failed] == [failed_check]


def test_wrong_declared_test_count_is_a_task_error(box):
    task = CodeTask("inc", PROMPT, "inc", TESTS, timeout_s=3.0, expected_tests=3)
    assert verdict(box, GOOD, task).reason is Reason.TASK_ERROR


def test_tests_that_do_not_collect_are_a_task_error(box):
    task = CodeTask("inc", PROMPT, "inc", "def test_x(:\n    pass\n", timeout_s=3.0)
    v = verdict(box, GOOD, task)
    assert v.reason is Reason.TASK_ERROR and v.abstained


def test_task_setup_is_trusted_code_above_the_tests(box):
    task = CodeTask(
        "inc", PROMPT, "inc", "def test_k():\n    assert inc(K) == 42\n",
        setup="K = 41\nfrom solution import inc\n", timeout_s=3.0,
    )  # fmt: skip
    assert verdict(box, GOOD, task).passed


def test_unisolated_run_needs_an_explicit_opt_in():
    with CodeSandbox(CodeSandboxConfig(workers=1, isolation="rlimits")) as sandbox:
        v = verdict(sandbox, GOOD)
    assert v.reason is Reason.ABSTAIN
    assert "allow_unisolated=True" in v.detail and "bubblewrap" in v.detail


def test_rlimits_fallback_runs_and_says_so():
    config = CodeSandboxConfig(workers=1, isolation="rlimits", allow_unisolated=True)
    with CodeSandbox(config) as sandbox:
        good, bad = verdict(sandbox, GOOD), verdict(sandbox, "def inc(x):\n    return x\n")
    assert good.passed and good.evidence["isolation"] in ("rlimits", "rlimits+uid")
    assert bad.reason is Reason.TEST_FAILURE


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [("workers", -1, "workers=-1 must be >= 0"), ("tmp_mb", 0, "tmp_mb=0"),
     ("isolation", "docker", "isolation='docker'"), ("max_processes", 1, "max_processes=1")],
)  # fmt: skip
def test_config_errors_name_value_rule_and_fix(field, value, fragment):
    with pytest.raises(ConfigError, match="code_sandbox") as info:
        CodeSandboxConfig(**{field: value})
    assert fragment in str(info.value)


def test_run_many_keeps_order_and_runs_in_parallel(box):
    from rlaif_sql.sandboxes.process import CodeJob

    jobs = [
        CodeJob(TESTS, f"def inc(x):\n    return x + {k}\n", "inc", 3.0, 256) for k in (1, 2, 1)
    ]
    runs = box.run_many(jobs)
    assert [r.exit_code for r in runs] == [0, 1, 0]


def test_candidates_of_a_new_task_arriving_together_share_one_collection(box):
    from concurrent.futures import ThreadPoolExecutor

    tests = TESTS + "\ndef test_two():\n    assert inc(2) == 3\n"
    task = CodeTask("inc-together", PROMPT, "inc", tests, timeout_s=3.0, expected_tests=3)
    before = box.collections
    bad = "def inc(x):\n    return x\n"
    with ThreadPoolExecutor(4) as pool:
        verdicts = list(pool.map(lambda c: verdict(box, c, task), [GOOD, bad, GOOD, bad]))
    assert [v.passed for v in verdicts] == [True, False, True, False]
    assert box.collections == before + 1  # not one per candidate, nor one per worker


def test_start_brings_every_worker_up_before_the_first_job():
    with CodeSandbox(CodeSandboxConfig(workers=2)) as sandbox:
        assert sandbox.start() > 0
        assert sandbox.start() < 0.5  # nothing left to start
        assert verdict(sandbox, GOOD).passed


def test_a_candidate_that_sigkills_itself_is_rerun_once_then_blamed(box):
    killer = "import os, signal\ndef inc(x):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    result = verdict(box, killer)
    assert result.reason is Reason.CRASH
    assert "SIGKILL" in result.evidence["rerun_after"]  # the first kill was not trusted alone


def test_tests_that_call_the_candidate_at_import_run_in_a_fresh_test_process(box):
    tests = "from solution import inc\nVALUE = inc(1)\n\ndef test_v():\n    assert VALUE == 2\n"
    task = CodeTask("inc-early", PROMPT, "inc", tests, timeout_s=3.0)
    assert verdict(box, GOOD, task).passed
    assert verdict(box, "def inc(x):\n    return x\n", task).reason is Reason.TEST_FAILURE


def test_fresh_test_process_per_candidate_gives_the_same_verdicts():
    with CodeSandbox(CodeSandboxConfig(workers=1, reuse_collection=False)) as sandbox:
        good, bad = verdict(sandbox, GOOD), verdict(sandbox, "def inc(x):\n    return x\n")
    assert good.passed and bad.reason is Reason.TEST_FAILURE


def test_sandbox_interpreter_must_have_this_environments_pytest_and_hypothesis():
    import hypothesis

    from rlaif_sql.sandboxes.isolation import interpreter, version_problem

    same = {"pytest": pytest.__version__, "hypothesis": hypothesis.__version__}
    assert version_problem(same) == ""
    other = version_problem({**same, "pytest": "7.0.0"})
    assert "7.0.0" in other and interpreter() in other
    missing = version_problem({"error": "ModuleNotFoundError: No module named 'pytest'"})
    assert "No module named 'pytest'" in missing and "\n" not in missing


def test_sandbox_runs_the_environments_interpreter_not_its_realpath():
    import sys

    from rlaif_sql.sandboxes.isolation import bwrap_command, interpreter

    assert interpreter() == os.path.abspath(sys.executable)
    command = bwrap_command(Path("/tmp/jobs"), [])
    assert interpreter() in command
    venv = os.path.dirname(os.path.dirname(interpreter()))
    assert command[command.index(venv) - 1] == "--ro-bind"  # the venv, read-only


def test_cgroup_plan_is_stated(box):
    from rlaif_sql.sandboxes.cgroups import detect

    plan = detect()
    assert plan.mode in ("v1", "v2", "none")
    assert plan.mode != "none" or plan.why
    assert box.cgroup_mode == plan.mode
