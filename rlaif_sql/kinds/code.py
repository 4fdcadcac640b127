"""The built-in `code` kind: Python functions checked by the task's pytest tests in the
process sandbox (rlaif_sql.verifiers.code, docs/code-tasks.md). The code sandbox is this
kind's resource in a verification context, started on first use."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from rlaif_sql.errors import TaskError
from rlaif_sql.kinds.base import KindDefaults, Message, build_task
from rlaif_sql.kinds.evidence import CodeEvidence
from rlaif_sql.models import Candidate, CodeTask, Task, Verdict
from rlaif_sql.sandboxes.process import CodeSandbox
from rlaif_sql.verifiers import code as code_verifier
from rlaif_sql.verifiers.code_extract import extract_code
from rlaif_sql.verifiers.context import VerifierContext

CODE_SYSTEM = (
    "You are a careful Python programmer. Answer with the complete function in a ```python "
    "block. Do not print, read input or write files."
)


def code_sandbox(ctx: VerifierContext) -> CodeSandbox:
    """The context's code sandbox (one per context, closed with it)."""

    def start() -> CodeSandbox:
        from rlaif_sql.sandboxes.process import CodeSandboxConfig

        options = {"workers": ctx.config.workers, **ctx.config.code_options}
        return CodeSandbox(CodeSandboxConfig(**options))

    return ctx.resource("code.sandbox", start)


class CodeKind(KindDefaults):
    name: ClassVar[str] = "code"
    version: ClassVar[str] = code_verifier.VERIFIER_VERSION
    evidence_type: ClassVar[type[CodeEvidence]] = CodeEvidence
    default_rubric: ClassVar[str] = "code-quality@1"

    def parse(self, raw: Mapping[str, Any], *, base_dir: Path | None) -> CodeTask:
        return build_task(CodeTask, raw)

    def messages(self, task: Task) -> tuple[Message, ...]:
        user = f"Complete this function:\n\n```python\n{_code(task).prompt}```"
        return ({"role": "system", "content": CODE_SYSTEM}, {"role": "user", "content": user})

    def question(self, task: Task) -> str:
        return _code(task).prompt

    def extract(self, task: Task, completion: str) -> str | None:
        code = _code(task)
        return extract_code(completion, prompt=code.prompt, entry_point=code.entry_point).code

    def check(self, candidate: Candidate, task: Task, ctx: VerifierContext) -> Verdict:
        return code_verifier.check(candidate, _code(task), sandbox=code_sandbox(ctx))

    def normalise(self, task: Task, candidate: Candidate, verdict: Verdict | None) -> str:
        """The extracted code with whitespace collapsed (never through sqlglot)."""
        return " ".join((self.extract(task, candidate.completion) or candidate.completion).split())

    def gold_answer(self, task: Task) -> str | None:
        solution = task.meta.get("solution") or task.meta.get("canonical_solution")
        return str(solution) if solution else None

    def gold_length(self, task: Task) -> int:
        return len(str(task.meta.get("solution", ""))) or 200


def _code(task: Task) -> CodeTask:
    if not isinstance(task, CodeTask):  # the registry gives this kind only its own tasks
        raise TaskError(f"task {task.task_id!r} of kind {task.kind!r} reached the code kind")
    return task


KIND = CodeKind()
