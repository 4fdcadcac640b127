"""`rlaif-sql verify` on files: each verdict is written (and flushed) as it is decided, so
Ctrl-C, a crash or a late error keeps every verdict already made, and `--resume` continues a
partial output file instead of starting over.

Resume reads the output's verdicts by candidate id, tolerates a truncated last line (the one
being written when the process stopped) and verifies again what abstained (the machine's
fault, like the pipeline does); everything else is kept as it is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif_sql.errors import ConfigError, NothingVerifiedError
from rlaif_sql.models import Candidate, Reason, Task, Verdict, json_line
from rlaif_sql.progress import Progress
from rlaif_sql.verifiers.context import VerifierContext
from rlaif_sql.verify import verify_many


def check_output(out: Path, inputs: Mapping[str, Path]) -> None:
    """Before any work: OUT is not one of the inputs, is not a folder, and can be written."""
    for label, path in inputs.items():
        same = out.resolve() == path.resolve() or (
            out.exists() and path.exists() and os.path.samefile(out, path)
        )
        if same:
            raise ConfigError(f"--out {out} is the {label} file; write the verdicts to a new "
                              "file, e.g. --out verdicts.jsonl")  # fmt: skip
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; name a file, e.g. --out {out}/verdicts.jsonl")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create its folder ({exc.strerror}); "
                          "choose a writable place") from exc  # fmt: skip
    target = out if out.exists() else out.parent
    if not os.access(target, os.W_OK):
        raise ConfigError(f"--out {out}: {target} is not writable; choose a writable place")


def read_partial(out: Path) -> dict[str, Verdict]:
    """The verdicts already in OUT (abstains left out: they are verified again)."""
    if not out.is_file():
        return {}
    lines = out.read_text(encoding="utf-8", errors="surrogateescape").split("\n")
    done: dict[str, Verdict] = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            verdict = Verdict.from_dict(json.loads(line))
        except (json.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
            if lineno >= len(lines) - 1:  # the last line, cut off mid-write: verify it again
                break
            raise ConfigError(f"{out}:{lineno}: not a verdict line ({exc}); --resume needs an "
                              "output written by rlaif-sql verify (or drop --resume)") from exc  # fmt: skip
        if verdict.reason is not Reason.ABSTAIN:
            done[verdict.candidate_id] = verdict
    return done


def verify_to_file(
    tasks: Sequence[Task], candidates: Sequence[Candidate], out: Path, ctx: VerifierContext, *,
    resume: bool = False, progress: bool | Progress = False,
) -> tuple[list[Verdict], int]:  # fmt: skip
    """Verify into OUT, line by line; returns (every verdict in OUT, how many were resumed)."""
    done = read_partial(out) if resume else {}
    _write(out, (v.to_dict() for v in done.values()))  # drops a truncated line and abstains
    todo = [c for c in candidates if c.candidate_id not in done]
    verdicts = list(done.values())
    with out.open("a", encoding="utf-8") as handle:
        for verdict in verify_many(tasks, todo, ctx=ctx, progress=progress):
            handle.write(json_line(verdict.to_dict()))
            handle.flush()
            verdicts.append(verdict)
    return verdicts, len(done)


def _write(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Replace PATH atomically (a kill leaves the old file or the new one, never half)."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json_line(record))
    partial.replace(path)


def check_inputs(
    tasks: Sequence[Task], candidates: Sequence[Candidate], paths: Mapping[str, Path]
) -> None:
    if not tasks:
        raise NothingVerifiedError(f"{paths['tasks']}: the tasks file holds no tasks; add one "
                                   "JSON object per line (task_id, question, db, gold_sql)")  # fmt: skip
    if not candidates:
        raise NothingVerifiedError(f"{paths['candidates']}: the candidates file holds no "
                                   "candidates; add lines of task_id, candidate_id, completion")  # fmt: skip


def check_verified(verdicts: Sequence[Verdict], out: Path) -> None:
    """Exit code 3 (after the verdicts are written) when no candidate could be verified."""
    if verdicts and all(v.abstained for v in verdicts):
        reasons: dict[str, int] = {}
        for v in verdicts:
            reasons[v.reason.value] = reasons.get(v.reason.value, 0) + 1
        raise NothingVerifiedError(
            f"no candidate could be verified ({reasons}; e.g. {verdicts[0].candidate_id}: "
            f"{verdicts[0].detail[:160]}); verdicts in {out}; check the task ids and databases "
            "(rlaif-sql validate --tasks ...)"
        )
