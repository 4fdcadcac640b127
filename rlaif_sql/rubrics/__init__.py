"""Versioned judge rubrics (`name@version`, TOML files in this folder) and their rendering.

A rubric lists weighted criteria; the judge must write a note per criterion before it names a
winner, and answer in JSON. The rendered prompt is stored with every judgment.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rlaif_sql.errors import ConfigError


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


def builtin_rubrics() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files(__name__).iterdir()
                  if p.name.endswith(".toml"))  # fmt: skip


def load_rubric(ref: str) -> Rubric:
    """`sql-explanation@1` (built in) or a path to a rubric TOML file."""
    if ref in builtin_rubrics():
        text = resources.files(__name__).joinpath(f"{ref}.toml").read_text(encoding="utf-8")
    elif Path(ref).is_file():
        text = Path(ref).read_text(encoding="utf-8")
    else:
        raise ConfigError(
            f"rubric {ref!r} is neither built in ({', '.join(builtin_rubrics())}) nor a file"
        )
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
