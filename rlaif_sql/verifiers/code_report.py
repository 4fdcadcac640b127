"""Judge a sandbox run: the trusted report against the trusted list of expected tests.

The report comes from the trusted test process, which never imports the candidate; the
candidate's own process can only answer calls with plain data, die, hang or break the
protocol (each reported as a ``candidate`` event). A pass needs all of: a well-formed report,
no candidate event, no timeout, a clean import, the end marker, exit status 0, and every
expected test id (from the trusted collection run) reported passed in setup, call and
teardown, with nothing failed or skipped. Counts are taken over the expected ids only, so
`passed <= collected` always holds. Everything else is a failure with the most specific
reason found.
"""

from __future__ import annotations

import errno
import signal
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rlaif_sql.models import Reason
from rlaif_sql.sandboxes.process import SandboxRun

RUNNER_CONTROL = {"Skipped", "Exit", "Failed", "XFailed", "OutcomeException"}
FORBIDDEN_ERRNOS = {errno.EPERM, errno.EACCES, errno.EROFS, errno.ENETUNREACH, errno.ENETDOWN}
QUOTA_ERRNOS = {errno.EFBIG, errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class Judgement:
    """A run's reason and detail, which check failed, and the test counts for evidence."""

    reason: Reason
    detail: str
    failed_check: str = ""  # "", "sandbox" or "tests"
    counts: dict[str, int] = field(default_factory=dict)


def expected_ids(collected: SandboxRun) -> tuple[tuple[str, ...] | None, str]:
    """The test ids a trusted collection run found, or None and why the task is unusable."""
    if collected.error:
        return None, collected.error
    errors = [e for e in collected.events if e.get("kind") == "collect"]
    ids = [i for e in collected.of_kind("collected") for i in e.get("ids", [])]
    if errors or collected.exit_code != 0 or not ids:
        why = errors[0].get("message", "")[-300:] if errors else collected.output_tail[-300:]
        return None, f"the task's tests do not collect cleanly (exit {collected.exit_code}): {why}"
    return tuple(ids), ""


def count_tests(run: SandboxRun, expected: tuple[str, ...]) -> dict[str, int]:
    """collected/passed/failed/errored/skipped over the trusted collection's ids only."""
    wanted = set(expected)
    outcomes: dict[str, str] = {}
    for event in run.of_kind("test"):
        nodeid, when, outcome = event.get("nodeid"), event.get("when"), event.get("outcome")
        if nodeid not in wanted:
            continue
        if outcome == "passed" and when != "call":
            continue
        label = "errored" if outcome == "failed" and when != "call" else str(outcome)
        outcomes.setdefault(str(nodeid), label)
        if label != "passed":
            outcomes[str(nodeid)] = label
    tally = Counter(outcomes.values())
    return {
        "collected": len(expected),
        "passed": tally["passed"],
        "failed": tally["failed"],
        "errored": tally["errored"] + len(run.of_kind("collect")),
        "skipped": tally["skipped"],
    }


def classify(facts: dict[str, Any]) -> Reason:
    """The reason a failing exception points to."""
    kinds = set(facts.get("kinds") or [facts.get("exc", "")])
    code = facts.get("errno")
    if "MemoryError" in kinds:
        return Reason.MEMORY_LIMIT
    if kinds & RUNNER_CONTROL or "PermissionError" in kinds or "gaierror" in kinds:
        return Reason.FORBIDDEN
    if code in FORBIDDEN_ERRNOS or code in QUOTA_ERRNOS:
        return Reason.FORBIDDEN
    return Reason.TEST_FAILURE


def judge(run: SandboxRun, expected: tuple[str, ...]) -> Judgement:
    """Turn the run's facts into a reason (see the module docstring)."""
    counts = count_tests(run, expected)
    problem = _sandbox_problem(run) or _import_problem(run) or _test_problem(run, expected)
    if problem is None:
        return Judgement(Reason.OK, f"all {len(expected)} tests passed", "", counts)
    reason, detail, check = problem
    return Judgement(reason, detail, check, counts)


def _sandbox_problem(run: SandboxRun) -> tuple[Reason, str, str] | None:
    if run.error:
        return Reason.ABSTAIN, f"sandbox failure: {run.error}", "sandbox"
    if run.forged_lines or run.report_overflow:
        what = "overflowing" if run.report_overflow else f"{run.forged_lines} malformed lines"
        return Reason.FORBIDDEN, f"the test report is not well-formed ({what})", "sandbox"
    xcpu = -signal.SIGXCPU in (run.exit_code, run.candidate_exit)
    if run.timed_out or xcpu:
        return (
            Reason.TIMEOUT,
            f"the run exceeded its time limit after {run.elapsed_s:.1f}s",
            "sandbox",
        )
    problem = _candidate_problem(run)
    if problem is not None:
        return problem
    if not run.of_kind("end"):
        how = _exit_text(run.exit_code)
        return Reason.CRASH, f"the run ended before the report's end marker ({how})", "sandbox"
    return None


def _candidate_problem(run: SandboxRun) -> tuple[Reason, str, str] | None:
    """The candidate's process died, hung or broke the protocol (its own events)."""
    events = run.of_kind("candidate")
    if not events:
        return None
    state, detail = events[0].get("state"), str(events[0].get("detail", ""))
    if state == "timeout":
        return Reason.TIMEOUT, f"the candidate did not answer in time: {detail}", "sandbox"
    if state == "protocol":
        return Reason.FORBIDDEN, detail, "sandbox"
    if run.candidate_oom:
        return Reason.MEMORY_LIMIT, "the candidate was killed at its cgroup memory cap", "sandbox"
    how = _exit_text(run.candidate_exit)
    return Reason.CRASH, f"the candidate process ended during the tests ({how})", "sandbox"


def _import_problem(run: SandboxRun) -> tuple[Reason, str, str] | None:
    failed = [e for e in run.of_kind("import") if not e.get("ok")]
    if not failed:
        return None
    facts = failed[0]
    reason = classify(facts)
    reason = Reason.IMPORT_ERROR if reason is Reason.TEST_FAILURE else reason
    return (
        reason,
        f"importing solution failed: {facts.get('exc')}: {facts.get('message', '')}",
        "tests",
    )


def _test_problem(run: SandboxRun, expected: tuple[str, ...]) -> tuple[Reason, str, str] | None:
    bad = [e for e in run.of_kind("test") if e.get("outcome") != "passed"]
    if bad:
        first = bad[0]
        reason = classify(first)
        what = f"{first.get('exc', first.get('outcome'))}: {first.get('message', '')}"
        return (
            reason,
            f"{first.get('nodeid')} {first.get('outcome')} in {first.get('when')}: {what}",
            "tests",
        )
    if run.of_kind("collect"):
        return (
            Reason.TEST_FAILURE,
            f"collection failed: {run.of_kind('collect')[0].get('message', '')[-300:]}",
            "tests",
        )
    passed = [str(e.get("nodeid")) for e in run.of_kind("test") if e.get("when") == "call"]
    if sorted(passed) != sorted(expected):  # run mode runs only these; more would be foreign
        return (
            Reason.TEST_FAILURE,
            f"expected {len(expected)} tests to pass, the report lists {len(passed)}",
            "tests",
        )
    end_rc = run.of_kind("end")[-1].get("rc")
    if run.exit_code != 0 or end_rc != 0:
        return (
            Reason.TEST_FAILURE,
            f"pytest exit status {end_rc}, child {_exit_text(run.exit_code)}",
            "tests",
        )
    return None


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
