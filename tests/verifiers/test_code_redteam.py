"""Red team: a policy under RL tries every way to get `passed: true` without solving the task.

Every attack below is otherwise WRONG (or, for the host-limit and cross-candidate cases,
measured by what it leaves behind), so a pass would mean the trick worked. Each case checks:
the verdict fails with the reason the design gives it; no process of the sandbox's uids is
left; nothing appeared in the host's /tmp; and the next candidate on the same (single)
worker sees a fresh, empty /tmp, no /jobs content, and passes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlaif_sql.models import Candidate, CodeTask, Reason, Verdict
from rlaif_sql.rewards import VerifierRewards
from rlaif_sql.sandboxes.process import CodeSandbox, CodeSandboxConfig
from rlaif_sql.verifiers.code import check
from tests.verifiers.redteam_payloads import (
    CROSS_CANDIDATE,
    HOST_LIMITS,
    INJECTION,
    LYING_VALUES,
    MARK,
    PROTOCOL,
    READ_ANSWER,
    RUNNER_TAMPER,
)

TESTS = """\
from hypothesis import given, strategies as st
from solution import double

def test_example():
    assert double(2) == 4

def test_many():
    assert all(map(lambda x: double(x) == 2 * x, range(10)))

@given(st.integers())
def test_property(x):
    assert double(x) == 2 * x
"""
TASK = CodeTask("double", "", "double", TESTS, timeout_s=3.0, memory_mb=256)
GOOD = "def double(x):\n    return 2 * x\n"
WRONG = "def double(x):\n    return 4 if x == 2 else x\n"
# MBPP's shape: a star import, asserts wrapped in builtins
STAR_TESTS = """\
from solution import *  # noqa: F403
from solution import similar


def test_0():
    assert set(similar((3, 4, 5, 6), (5, 7, 4, 10))) == set((4, 5))


def test_1():
    assert sorted(similar((1, 2, 3, 4), (5, 4, 3, 7))) == [3, 4]


def test_2():
    assert len(similar((11, 12, 14, 13), (17, 15, 14, 13))) == 2
"""
STAR = CodeTask("similar", "", "similar", STAR_TESTS, timeout_s=3.0, memory_mb=256)
STAR_GOOD = "def similar(a, b):\n    return tuple(x for x in a if x in b)\n"
STAR_WRONG = "def similar(a, b):\n    return ()\n"
# the next candidate on the worker: fails to import if anything of an earlier one is visible
PROBE = (
    "import os\n"
    "_seen = sorted(os.listdir('/tmp'))\n"
    "assert _seen == ['.solution'], _seen\n"
    "assert os.listdir('/jobs') == [], os.listdir('/jobs')\n"
    "assert not os.path.exists('/cg') or os.listdir('/cg') == []\n" + GOOD
)


@pytest.fixture(scope="module")
def box():
    # a uid range of its own: other test runs on a shared machine use the default one
    config = CodeSandboxConfig(
        workers=1, tmp_mb=32, tmp_inodes=4096, file_size_mb=8, uid_base=63_000 + os.getpid() % 500
    )
    with CodeSandbox(config) as sandbox:
        yield sandbox


def leftover_pids(uids: tuple[int, ...]) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
            if int(uid_line.split()[1]) in uids:
                found.append(int(entry))
    return found


def verify(box: CodeSandbox, code: str, task: CodeTask = TASK) -> Verdict:
    verdict = check(Candidate(task.task_id, "attack", code), task, sandbox=box)
    assert leftover_pids(box.worker_uids) == []
    assert not os.path.exists(MARK)
    return verdict


def assert_next_candidate_unaffected(box: CodeSandbox) -> None:
    probe = verify(box, PROBE)
    assert probe.passed, probe.detail
    assert probe.evidence["passed"] == probe.evidence["collected"] == 3


def test_controls_correct_passes_wrong_fails(box):
    good, wrong = verify(box, GOOD), verify(box, WRONG)
    assert good.passed and good.evidence["isolation"] == "bwrap"
    assert good.evidence["mode"] == "two_process"
    assert wrong.reason is Reason.TEST_FAILURE
    assert verify(box, STAR_GOOD, STAR).passed
    assert verify(box, STAR_WRONG, STAR).reason is Reason.TEST_FAILURE
    assert_next_candidate_unaffected(box)


def _cases(table: dict[str, tuple[str, set[Reason]]]) -> list[tuple[str, str, set[Reason]]]:
    return [(name, body, reasons) for name, (body, reasons) in sorted(table.items())]


@pytest.mark.parametrize(
    ("name", "body", "reasons"),
    _cases(RUNNER_TAMPER) + _cases(READ_ANSWER) + _cases(LYING_VALUES) + _cases(PROTOCOL),
    ids=lambda v: v if isinstance(v, str) and v.isidentifier() else "",
)
def test_attack_on_the_judge_fails(box, name, body, reasons):
    verdict = verify(box, WRONG + body)
    assert not verdict.passed, name
    assert verdict.reason in reasons, (name, verdict.reason, verdict.detail)
    assert_next_candidate_unaffected(box)


@pytest.mark.parametrize(
    ("name", "body", "reasons"), _cases(INJECTION), ids=lambda v: v if isinstance(v, str) else ""
)
def test_injected_names_never_reach_the_tests(box, name, body, reasons):
    wrong = verify(box, STAR_WRONG + body, STAR)
    assert wrong.reason in reasons, (name, wrong.reason, wrong.detail)
    assert 0 <= wrong.evidence["passed"] <= wrong.evidence["collected"] == 3
    right = verify(box, STAR_GOOD + body, STAR)  # the injection adds nothing to a pass
    assert right.passed, (name, right.detail)
    assert right.evidence["passed"] == right.evidence["collected"] == 3


def test_code_tests_reward_stays_in_unit_interval(box):
    bonus = INJECTION["test_bonus_class_30_methods"][0]
    rewards = VerifierRewards([STAR])
    rewards.ctx._code = box  # share the module's sandbox instead of starting another
    try:
        reward = rewards.code_tests(length_normalised=False)
        scores = reward(None, [STAR_WRONG + bonus, STAR_GOOD + bonus], ["similar", "similar"])
    finally:
        rewards.ctx._code = None
    assert scores == [0.0, 1.0]


@pytest.mark.parametrize(
    ("name", "body", "reasons"),
    _cases(CROSS_CANDIDATE) + _cases(HOST_LIMITS),
    ids=lambda v: v if isinstance(v, str) and v.isidentifier() else "",
)
def test_host_and_cross_candidate_attacks_are_contained(box, name, body, reasons):
    verdict = verify(box, GOOD + body)
    assert verdict.reason in reasons, (name, verdict.reason, verdict.detail)
    assert_next_candidate_unaffected(box)
    # the trusted collection of a task never seen before is unaffected as well
    fresh = CodeTask("fresh-" + name, "", "double", TESTS + "\n", timeout_s=3.0, memory_mb=256)
    assert verify(box, GOOD, fresh).passed


def test_memory_of_many_processes_is_capped_by_the_cgroup(box):
    if box.cgroup_mode == "none":
        pytest.skip("no writable cgroup hierarchy on this machine: RLIMIT_AS per process only")
    hog = (
        "import os, time\n"
        "for _ in range(6):\n"
        "    if os.fork() == 0:\n"
        "        x = bytearray(200 * 1024 * 1024)\n"
        "        time.sleep(30)\n"
        "time.sleep(1.5)\n"
    )
    folder = box._workers[0].cgroups[0]
    peak_file = folder / "memory.max_usage_in_bytes"
    if not peak_file.exists():
        pytest.skip("the peak is read from cgroup v1's memory.max_usage_in_bytes")
    peak_file.write_text("0")  # v1: reset the peak
    verdict = verify(box, GOOD + hog)
    peak = int(peak_file.read_text())
    cap = (TASK.memory_mb + box.config.tmp_mb + 64) * 1024 * 1024
    # 6 x 200 MB were asked for and RLIMIT_AS allows each process its 200 MB: the cgroup
    # holds them all, together, under the job's cap
    assert 200 * 1024 * 1024 < peak <= cap, (peak, cap)
    assert verdict.reason in {Reason.OK, Reason.MEMORY_LIMIT, Reason.CRASH, Reason.TIMEOUT}
    assert_next_candidate_unaffected(box)


def test_in_process_mode_is_explicit_and_reported(box):
    task = CodeTask("double", "", "double", TESTS, timeout_s=3.0, in_process=True)
    verdict = verify(box, GOOD, task)
    assert verdict.passed and verdict.evidence["mode"] == "in_process"
    assert verify(box, WRONG, task).reason is Reason.TEST_FAILURE
    assert_next_candidate_unaffected(box)
