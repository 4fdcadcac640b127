"""A domain pack's pipeline config: one TOML file loading into typed, validated dataclasses.

Relative paths resolve against the config file's folder. Sections: [tasks], [sampling]
(+ [sampling.backend]), [verify], [judge] (+ [judge.backend] or [[judge.tiers]]), [anchors],
[pairs], [export], [run], [engine]. See examples/revenue/pipeline.toml.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rlaif_sql.distributed.engine import EngineConfig
from rlaif_sql.errors import ConfigError
from rlaif_sql.judge import JudgeConfig
from rlaif_sql.pairs import PairsConfig
from rlaif_sql.sample import SamplingConfig


@dataclass(frozen=True)
class PipelineConfig:
    tasks: Path
    store: Path
    export_dir: Path
    task_limit: int | None = None
    """The default subset: the first N tasks (None = all); `--all` overrides it."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    sampling_backend: dict[str, Any] = field(default_factory=lambda: {"kind": "local"})
    bring: tuple[Path, ...] = ()
    """Candidate JSONL files to add as further sources (other models, earlier checkpoints)."""
    workers: int = 2
    timeout_s: float = 5.0
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    judge_backends: tuple[dict[str, Any], ...] = ({"kind": "local"},)
    max_ties_per_task: int = 2
    conflict_sample: int = 4
    """Verified-vs-failed pairs per run shown to the judge to measure conflicts (0 = off)."""
    anchors: Path | None = None
    kappa_threshold: float = 0.72
    force_export: bool = False
    pairs: PairsConfig = field(default_factory=PairsConfig)
    export_formats: tuple[str, ...] = ("disk", "parquet", "jsonl")
    source: str = "rlaif-sql"
    engine: EngineConfig = field(default_factory=EngineConfig)
    """[engine]: where verification (and OpenAI-compatible judging) runs; see docs/scale-out.md."""

    def __post_init__(self) -> None:
        if self.task_limit is not None and self.task_limit < 1:
            raise ConfigError(f"[tasks] limit={self.task_limit} must be >= 1")
        if self.max_ties_per_task < 0 or self.conflict_sample < 0:
            raise ConfigError("[judge] max_ties_per_task and conflict_sample must be >= 0")


def _dataclass(cls: type, raw: dict[str, Any], section: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"[{section}] has unknown keys {unknown}; known: {sorted(known)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return cls(**values)


def load_config(path: Path) -> PipelineConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    base = path.parent

    def resolve(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    try:
        tasks = dict(raw.get("tasks", {}))
        sampling = dict(raw.get("sampling", {}))
        judge = dict(raw.get("judge", {}))
        anchors = dict(raw.get("anchors", {}))
        export = dict(raw.get("export", {}))
        verify = dict(raw.get("verify", {}))
        run = dict(raw.get("run", {}))
        sampling_backend = sampling.pop("backend", {"kind": "local"})
        bring = tuple(resolve(p) for p in sampling.pop("bring", []))
        tiers = judge.pop("tiers", None) or [judge.pop("backend", {"kind": "local"})]
        judge.pop("backend", None)
        max_ties = judge.pop("max_ties_per_task", 2)
        conflict_sample = judge.pop("conflict_sample", 4)
        for backend in (sampling_backend, *tiers):
            if backend.get("kind") == "jsonl" and "path" in backend:
                backend["path"] = str(resolve(backend["path"]))
        return PipelineConfig(
            tasks=resolve(tasks["path"]),
            task_limit=tasks.get("limit"),
            store=resolve(run.get("store", "runs/run.duckdb")),
            export_dir=resolve(export.get("out", "runs/export")),
            export_formats=tuple(export.get("formats", ("disk", "parquet", "jsonl"))),
            source=str(export.get("source", "rlaif-sql")),
            sampling=_dataclass(SamplingConfig, sampling, "sampling"),
            sampling_backend=sampling_backend,
            bring=bring,
            workers=int(verify.get("workers", 2)),
            timeout_s=float(verify.get("timeout_s", 5.0)),
            judge=_dataclass(JudgeConfig, judge, "judge"),
            judge_backends=tuple(tiers),
            max_ties_per_task=max_ties,
            conflict_sample=conflict_sample,
            anchors=resolve(anchors["path"]) if "path" in anchors else None,
            kappa_threshold=float(anchors.get("threshold", 0.72)),
            force_export=bool(anchors.get("force", False)),
            pairs=_dataclass(PairsConfig, dict(raw.get("pairs", {})), "pairs"),
            engine=_dataclass(EngineConfig, dict(raw.get("engine", {})), "engine"),
        )
    except KeyError as exc:
        raise ConfigError(
            f"{path}: missing required key {exc.args[0]!r} (e.g. [tasks] path)"
        ) from exc
