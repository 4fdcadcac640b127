"""The code verifier: extract the candidate's module, run the task's pytest tests against it.

Contract for code tasks: the candidate's code becomes the module ``solution``; the task's
``tests`` (pytest source, hypothesis allowed) import it with ``from solution import
<entry_point>``. The task's optional ``setup`` is trusted code placed at the top of the test
module. See docs/code-tasks.md for the full contract and the threat model.

Checks, in order: ``extract`` (find code in the completion), ``syntax`` (it parses),
``sandbox`` (the isolated run finished with an untampered, complete report), ``tests``
(exactly the trusted collection's tests passed; nothing failed, errored or skipped).

>>> from rlaif_sql.sandboxes.process import CodeSandbox                    # doctest: +SKIP
>>> task = CodeTask("t1", "", "inc", "from solution import inc\\n"
...                 "def test_inc():\\n    assert inc(1) == 2\\n")
>>> with CodeSandbox() as box:                                             # doctest: +SKIP
...     check(Candidate("t1", "c1", "def inc(x):\\n    return x + 1\\n"), task, sandbox=box).reason
<Reason.OK: 'ok'>
"""

from __future__ import annotations

import signal
from typing import Any

from rlaif_sql.kinds.base import VerdictBuilder
from rlaif_sql.kinds.evidence import CodeEvidence
from rlaif_sql.models import Candidate, CodeTask, Reason, Verdict
from rlaif_sql.sandboxes.process import CodeJob, CodeSandbox, SandboxRun
from rlaif_sql.verifiers.code_extract import extract_code
from rlaif_sql.verifiers.code_report import expected_ids, judge

VERIFIER_VERSION = "code@1"
CHECKS = ("extract", "syntax", "sandbox", "tests")
COLLECT_TIMEOUT_S = 30.0


def build_test_module(task: CodeTask) -> str:
    """The test module the sandbox runs: the task's trusted setup, then its tests."""
    return f"{task.setup}\n\n{task.tests}" if task.setup.strip() else task.tests


def check(candidate: Candidate, task: CodeTask, *, sandbox: CodeSandbox) -> Verdict:
    """Verify one candidate against the task's tests; never raises for a candidate's fault."""
    evidence = CodeEvidence(VERIFIER_VERSION, isolation=sandbox.isolation)
    trace = VerdictBuilder(candidate, task, CHECKS, evidence)
    size = len(candidate.completion.encode("utf-8", "replace"))
    limit = sandbox.config.max_source_bytes
    if size > limit:
        detail = f"the completion is {size} bytes, over max_source_bytes={limit}"
        return trace.verdict(Reason.FORBIDDEN, detail, "extract")
    found = extract_code(candidate.completion, prompt=task.prompt, entry_point=task.entry_point)
    trace.evidence["extraction"] = found.style
    if found.problem == "no_code" or found.code is None:
        return trace.verdict(Reason.NO_CODE, found.detail or "no code found", "extract")
    trace.passed("extract", found.style)
    if found.problem == "syntax_error":
        return trace.verdict(Reason.SYNTAX_ERROR, found.detail, "syntax")
    trace.passed("syntax")
    return _run(trace, task, found.code, sandbox)


def _run(trace: VerdictBuilder, task: CodeTask, code: str, sandbox: CodeSandbox) -> Verdict:
    tests = build_test_module(task)
    collected = sandbox.collect(tests, task.entry_point, COLLECT_TIMEOUT_S)
    expected, why = expected_ids(collected)
    if expected is None:
        reason = Reason.ABSTAIN if collected.error else Reason.TASK_ERROR
        return trace.verdict(reason, why, "sandbox")
    if task.expected_tests is not None and len(expected) != task.expected_tests:
        detail = f"the task declares expected_tests={task.expected_tests} but {len(expected)} were collected"
        return trace.verdict(Reason.TASK_ERROR, detail, "sandbox")
    job = CodeJob(
        tests, code, task.entry_point, task.timeout_s, task.memory_mb, expected, task.in_process
    )
    run = sandbox.run(job)
    judgement = judge(run, expected)
    if judgement.reason is Reason.CRASH and -signal.SIGKILL in (run.exit_code, run.candidate_exit):
        # A SIGKILL the sandbox did not send (no timeout): the kernel's OOM killer looks the
        # same as a candidate killing itself. Only a repeat on a fresh run blames the candidate.
        trace.evidence["rerun_after"] = judgement.detail
        run = sandbox.run(job)
        judgement = judge(run, expected)
    trace.evidence.update(judgement.counts)
    trace.evidence["mode"] = "in_process" if task.in_process else "two_process"
    trace.evidence.update(_run_evidence(run))
    if judgement.failed_check == "tests":
        trace.passed("sandbox", f"isolation={run.isolation}")
    elif judgement.reason is Reason.OK:
        trace.passed("sandbox")
        trace.passed("tests")
    return trace.verdict(judgement.reason, judgement.detail, judgement.failed_check)


def _run_evidence(run: SandboxRun) -> dict[str, Any]:
    return {
        "isolation": run.isolation,
        "exit_code": run.exit_code,
        "sandbox_s": run.elapsed_s,
        "output_tail": run.output_tail[-500:],
    }
