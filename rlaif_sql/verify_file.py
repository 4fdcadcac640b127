"""`rlaif-sql verify` on files: each verdict is written (and flushed) as it is decided, so
Ctrl-C, a crash or a late error keeps every verdict already made, and `--resume` continues a
partial output file instead of starting over. Nothing here holds a list of candidates or
verdicts: candidates stream from their file, verdicts to theirs, and the summary is a tally,
so a file of millions of candidates verifies in flat memory.

Resume reads the output's verdicts by candidate id, tolerates a truncated last line (the one
being written when the process stopped) and verifies again what abstained (the machine's
fault, like the pipeline does); everything else is kept as it is.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif_sql.errors import ConfigError, NothingVerifiedError
from rlaif_sql.metrics import Tally
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


def read_partial(out: Path) -> Iterator[Verdict]:
    """The verdicts already in OUT, one at a time (abstains left out: they are verified
    again)."""
    if not out.is_file():
        return
    with out.open(encoding="utf-8", errors="surrogateescape") as handle:
        line = handle.readline()
        lineno = 0
        while line:
            lineno += 1
            following = handle.readline()
            verdict = _verdict(line, out, lineno, last=not following)
            if verdict is not None and verdict.reason is not Reason.ABSTAIN:
                yield verdict
            line = following


def _verdict(line: str, out: Path, lineno: int, *, last: bool) -> Verdict | None:
    """One line of OUT as a verdict; None for a blank line or a last line cut mid-write."""
    if not line.strip():
        return None
    try:
        return Verdict.from_dict(json.loads(line))
    except (json.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
        if last:  # the last line, cut off mid-write: verify it again
            return None
        raise ConfigError(f"{out}:{lineno}: not a verdict line ({exc}); --resume needs an "
                          "output written by rlaif-sql verify (or drop --resume)") from exc  # fmt: skip


def verify_to_file(
    tasks: Sequence[Task], candidates: Iterable[Candidate], out: Path, ctx: VerifierContext, *,
    resume: bool = False, progress: bool | Progress = False,
) -> tuple[Tally, int]:  # fmt: skip
    """Verify into OUT, line by line; returns (the tally of every verdict in OUT, how many
    were resumed). Only the resumed candidates' ids are held, never a verdict."""
    tally, done = Tally(), set()
    if resume:
        partial = out.with_name(out.name + ".partial")
        with partial.open("w", encoding="utf-8") as handle:
            for verdict in read_partial(out):  # drops a truncated line and abstains
                if verdict.candidate_id in done:
                    continue
                handle.write(json_line(verdict.to_dict()))
                tally.add(verdict)
                done.add(verdict.candidate_id)
        partial.replace(out)
    else:
        _write(out, ())
    todo = (c for c in candidates if c.candidate_id not in done)
    with out.open("a", encoding="utf-8") as handle:
        for verdict in verify_many(tasks, todo, ctx=ctx, progress=progress):
            handle.write(json_line(verdict.to_dict()))
            handle.flush()
            tally.add(verdict)
    return tally, len(done)


def _write(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Replace PATH atomically (a kill leaves the old file or the new one, never half)."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json_line(record))
    partial.replace(path)


def read_verdicts(out: Path) -> Iterator[Verdict]:
    """Every verdict line of OUT, one at a time."""
    with out.open(encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            if line.strip():
                yield Verdict.from_dict(json.loads(line))


def check_inputs(
    tasks: Sequence[Task], candidates: Iterable[Candidate], paths: Mapping[str, Path]
) -> Iterator[Candidate]:
    """The candidates again (as a stream whose first item was read to see there is one)."""
    if not tasks:
        raise NothingVerifiedError(f"{paths['tasks']}: the tasks file holds no tasks; add one "
                                   "JSON object per line (task_id, question, db, gold_sql)")  # fmt: skip
    stream = iter(candidates)
    first = next(stream, None)
    if first is None:
        raise NothingVerifiedError(f"{paths['candidates']}: the candidates file holds no "
                                   "candidates; add lines of task_id, candidate_id, completion")  # fmt: skip
    return itertools.chain([first], stream)


def check_verified(tally: Tally, out: Path) -> None:
    """Exit code 3 (after the verdicts are written) when no candidate could be verified."""
    first = tally.first
    if first is not None and tally.decided == 0:
        raise NothingVerifiedError(
            f"no candidate could be verified ({dict(tally.reasons)}; e.g. {first.candidate_id}: "
            f"{first.detail[:160]}); verdicts in {out}; check the task ids and databases "
            "(rlaif-sql validate --tasks ...)"
        )
