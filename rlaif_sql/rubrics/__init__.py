"""Versioned judge rubrics (`name@version`, TOML files in this folder) and their rendering.

A rubric lists weighted criteria; the judge must write a note per criterion before it names a
winner, and answer in JSON. The rendered prompt is stored with every judgment.
"""

from __future__ import annotations

import difflib
import functools
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rlaif_sql.errors import ConfigError
from rlaif_sql.registry import Registry


@dataclass(frozen=True)
class Criterion:
    name: str
    weight: float
    question: str


@dataclass(frozen=True)
class Rubric:
    name: str
    version: int
    description: str
    criteria: tuple[Criterion, ...]
    task_kind: str = "sql"

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def __post_init__(self) -> None:
        if not self.criteria:
            raise ConfigError(f"rubric {self.ref} has no criteria")
        total = sum(c.weight for c in self.criteria)
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(f"rubric {self.ref}: criteria weights sum to {total:g}, not 1")


RUBRICS: Registry[Callable[[], Rubric] | Rubric] = Registry("rubric", "rlaif_sql.rubrics")
"""Rubrics by `name@version`: the TOML files in this folder, and third parties' through the
entry-point group `rlaif_sql.rubrics` (a `Rubric`, or a function returning one, e.g.
`functools.partial(rubric_from_file, path)`)."""


def builtin_rubrics() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files(__name__).iterdir()
                  if p.name.endswith(".toml"))  # fmt: skip


def _builtin(ref: str) -> Rubric:
    text = resources.files(__name__).joinpath(f"{ref}.toml").read_text(encoding="utf-8")
    return parse_rubric(text, ref)


for _ref in builtin_rubrics():
    RUBRICS.register(_ref, functools.partial(_builtin, _ref))


def load_rubric(ref: str, base: Path | None = None) -> Rubric:
    """A registered rubric (`sql-explanation@1`, a plugin's), or a rubric TOML file; a
    relative path starts at `base` (a config's folder) when given, else the working folder."""
    if ref in RUBRICS:
        found = RUBRICS.get(ref)
        return found if isinstance(found, Rubric) else found()
    path = Path(ref).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if path.is_file():
        return rubric_from_file(path)
    close = difflib.get_close_matches(ref, RUBRICS.names(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"rubric {ref!r} is neither registered ({', '.join(RUBRICS.names())}) "
                      f"nor a file ({path} does not exist){hint}")  # fmt: skip


def rubric_from_file(path: Path) -> Rubric:
    return parse_rubric(Path(path).read_text(encoding="utf-8"), str(path))


def parse_rubric(text: str, ref: str) -> Rubric:
    raw = tomllib.loads(text)
    try:
        criteria = tuple(
            Criterion(c["name"], float(c["weight"]), c["question"]) for c in raw["criteria"]
        )
        return Rubric(raw["name"], int(raw["version"]), raw.get("description", ""), criteria,
                      raw.get("task_kind", "sql"))  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"rubric {ref!r} is malformed: {exc!r}") from exc


def render_judge_prompt(
    rubric: Rubric, question: str, first: str, second: str
) -> tuple[dict[str, str], ...]:
    """Messages asking for per-criterion notes first, then a JSON verdict on A vs B."""
    criteria = "\n".join(f"- {c.name} (weight {c.weight:g}): {c.question}" for c in rubric.criteria)
    shape = {"criteria": {c.name: "<one sentence comparing A and B>" for c in rubric.criteria},
             "winner": "A | B | tie", "confidence": "<0.5 to 1.0>"}  # fmt: skip
    system = (
        f"You judge two answers with rubric {rubric.ref}. {rubric.description}\n"
        f"Criteria:\n{criteria}\n"
        "Reason about each criterion first, then decide. The order of the answers means nothing. "
        f"Reply with JSON only, shaped like: {json.dumps(shape)}"
    )
    user = f"Question: {question}\n\n[Answer A]\n{first}\n[End of A]\n\n[Answer B]\n{second}\n[End of B]"
    return ({"role": "system", "content": system}, {"role": "user", "content": user})
