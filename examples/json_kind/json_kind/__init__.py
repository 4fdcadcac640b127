"""An rlaif-sql task kind in one module: a request in words becomes one JSON API call.

A task names an endpoint, its parameters (type, required, allowed values) and the gold call:

    {"task_id": "weather-1", "kind": "api_call", "instruction": "Weather in Oslo, in celsius",
     "endpoint": "get_weather",
     "parameters": {"city": {"type": "string", "required": true},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
     "gold": {"city": "Oslo", "unit": "celsius"}}

The answer is a JSON object ``{"endpoint": ..., "arguments": {...}}`` (in a ```json block or
bare). Checks, in order: ``extract`` (a JSON object is there and parses), ``schema`` (the
endpoint, no unknown or missing arguments, each of its type and allowed values) and ``match``
(the arguments equal the gold's; numbers compare as numbers). Installed, the entry point in
pyproject.toml registers it; rlaif-sql's verify, validate, run and rewards then handle tasks
with ``"kind": "api_call"``. See docs/extending.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlaif_sql.kinds.base import Evidence, KindDefaults, VerdictBuilder, build_task
from rlaif_sql.models import Candidate, Reason, Task, Verdict
from rlaif_sql.verifiers.context import VerifierContext

VERSION = "api_call@1"
CHECKS = ("extract", "schema", "match")
TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "array": (list,), "object": (dict,),
}  # fmt: skip
FENCE = re.compile(r"```(?:json)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
SYSTEM = (
    "You turn a request into one API call. Answer with one JSON object "
    '{"endpoint": ..., "arguments": {...}} in a ```json block, using only the parameters listed.'
)


@dataclass(frozen=True)
class ApiCallTask:
    task_id: str
    instruction: str
    endpoint: str
    parameters: Mapping[str, Mapping[str, Any]]
    gold: Mapping[str, Any]
    kind: str = "api_call"
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiCallEvidence(Evidence):
    endpoint: str | None = None
    arguments_matched: int | None = None
    arguments_total: int | None = None

    @property
    def partial_credit(self) -> float | None:
        """Share of the gold's arguments the call got right (0 when none was checked)."""
        return (self.arguments_matched or 0) / self.arguments_total if self.arguments_total else 0.0


class ApiCallKind(KindDefaults):
    name = "api_call"
    version = VERSION
    evidence_type = ApiCallEvidence
    default_rubric = str(Path(__file__).with_name("api-call@1.toml"))

    def parse(self, raw: Mapping[str, Any], *, base_dir: Path | None) -> ApiCallTask:
        return build_task(ApiCallTask, raw)

    def messages(self, task: Task) -> tuple[dict[str, str], ...]:
        call = _task(task)
        params = ", ".join(f"{n}: {p.get('type', 'any')}" + ("" if p.get("required") else "?")
                           for n, p in call.parameters.items())  # fmt: skip
        user = f"API: {call.endpoint}({params})\n\nRequest: {call.instruction}"
        return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})

    def question(self, task: Task) -> str:
        return _task(task).instruction

    def extract(self, task: Task, completion: str) -> str | None:
        found = _parse(completion)
        return json.dumps(found, sort_keys=True) if found is not None else None

    def check(self, candidate: Candidate, task: Task, ctx: VerifierContext) -> Verdict:
        call = _task(task)
        trace = VerdictBuilder(candidate, call, CHECKS, ApiCallEvidence(VERSION))
        answer = _parse(candidate.completion)
        if answer is None:
            return trace.verdict(Reason.PARSE_ERROR, "no JSON object found in the completion")
        trace.passed("extract")
        trace.evidence["endpoint"] = str(answer.get("endpoint"))
        arguments = answer.get("arguments")
        problem = _schema_problem(call, answer.get("endpoint"), arguments)
        if problem:
            return trace.verdict(Reason.POLICY_VIOLATION, problem)
        trace.passed("schema")
        assert isinstance(arguments, dict)
        right = [k for k, v in call.gold.items() if k in arguments and _same(v, arguments[k])]
        extra = sorted(set(arguments) - set(call.gold))
        trace.evidence.update(arguments_matched=len(right), arguments_total=len(call.gold))
        if len(right) < len(call.gold) or extra:
            wrong = sorted(set(call.gold) - set(right)) + extra
            return trace.verdict(Reason.WRONG_RESULT, f"arguments differ from the gold: {wrong}")
        trace.passed("match", f"{len(right)} arguments")
        return trace.verdict(Reason.OK, "the call matches the gold")

    def normalise(self, task: Task, candidate: Candidate, verdict: Verdict | None) -> str:
        return self.extract(task, candidate.completion) or " ".join(candidate.completion.split())

    def gold_answer(self, task: Task) -> str:
        call = _task(task)
        return (
            "```json\n" + json.dumps({"endpoint": call.endpoint, "arguments": call.gold}) + "\n```"
        )


def _parse(completion: str) -> dict[str, Any] | None:
    """The first fenced block that holds a JSON object, else the whole completion."""
    for text in [*FENCE.findall(completion), completion]:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


def _schema_problem(task: ApiCallTask, endpoint: Any, arguments: Any) -> str:
    if endpoint != task.endpoint:
        return f"endpoint {endpoint!r} is not {task.endpoint!r}"
    if not isinstance(arguments, dict):
        return f"arguments must be a JSON object, got {type(arguments).__name__}"
    unknown = sorted(set(arguments) - set(task.parameters))
    missing = sorted(
        n for n, p in task.parameters.items() if p.get("required") and n not in arguments
    )
    if unknown or missing:
        return f"unknown arguments {unknown}, missing required {missing}"
    for name, value in arguments.items():
        spec = task.parameters[name]
        wanted = TYPES.get(str(spec.get("type")), (object,))
        if not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted):
            return f"argument {name}={value!r} must be of type {spec.get('type')}"
        if "enum" in spec and value not in spec["enum"]:
            return f"argument {name}={value!r} must be one of {spec['enum']}"
    return ""


def _same(gold: Any, value: Any) -> bool:
    numbers = (int, float)
    if isinstance(gold, numbers) and isinstance(value, numbers) and not isinstance(value, bool):
        return math.isclose(gold, value, rel_tol=1e-9, abs_tol=1e-12)
    return bool(gold == value)


def _task(task: Task) -> ApiCallTask:
    if not isinstance(task, ApiCallTask):
        raise TypeError(f"task {task.task_id!r} of kind {task.kind!r} reached the api_call kind")
    return task


KIND = ApiCallKind()
