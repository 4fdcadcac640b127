"""A domain pack's pipeline config: one TOML file loading into typed, validated dataclasses.

Every section and key is in `config_schema` (docs/config.md lists them): a misspelled name is
refused with the nearest valid one, a wrong type with one line naming the file, the key, what
was expected and the fix, and missing input files are named, all before any model loads.
Relative paths resolve against the config file's folder. See examples/revenue/pipeline.toml.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlaif_sql.config_schema import check_backend, check_table, keys_elsewhere, nearest, schema
from rlaif_sql.distributed.engine import EngineConfig
from rlaif_sql.errors import ConfigError
from rlaif_sql.judge import JudgeConfig
from rlaif_sql.pairs import PairsConfig
from rlaif_sql.sample import SamplingConfig
from rlaif_sql.verifiers.context import VerifyConfig
from rlaif_sql.verify_settings import make, verify_settings


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
    verify: VerifyConfig = field(default_factory=verify_settings)
    """[verify], [sandbox] and [code_sandbox]: workers, SQL limits, code sandbox options."""
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
    path: Path | None = None
    """The config file this came from (for messages)."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    """[engine]: where verification (and OpenAI-compatible judging) runs; see docs/scale-out.md."""

    def __post_init__(self) -> None:
        from rlaif_sql.export import FORMATS

        checks = [
            (self.task_limit is None or self.task_limit >= 1,
             f"[tasks] limit = {self.task_limit} must be >= 1 (leave it out for every task)"),
            (self.max_ties_per_task >= 0,
             f"[judge] max_ties_per_task = {self.max_ties_per_task} must be >= 0"),
            (self.conflict_sample >= 0,
             f"[judge] conflict_sample = {self.conflict_sample} must be >= 0 (0 = off)"),
            (0 <= self.kappa_threshold <= 1,
             f"[anchors] threshold = {self.kappa_threshold} must be in [0, 1]"),
            (bool(self.export_formats) and set(self.export_formats) <= set(FORMATS),
             f"[export] formats = {list(self.export_formats)}: each must be one of {FORMATS}"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


def load_config(path: Path) -> PipelineConfig:
    """Read, check and resolve a pipeline TOML; any problem is one ConfigError line."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    try:
        return _build(raw, path)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(
            message if message.startswith(str(path)) else f"{path}: {message}"
        ) from exc


def _sections(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    known = schema()
    top = [name for name in known if "." not in name]
    out: dict[str, dict[str, Any]] = {}
    for name, value in raw.items():
        if name not in known:
            raise ConfigError(f"unknown section [{name}]{nearest(name, top)} "
                              f"(sections: {', '.join(top)})")  # fmt: skip
        if not isinstance(value, dict):
            raise ConfigError(f"{name} = ... must be a section: write [{name}] on its own line")
        out[name] = check_table(f"[{name}]", known[name], value, keys_elsewhere(name))
    if "tasks" not in out:
        raise ConfigError('needs a [tasks] section with path = "tasks.jsonl"')
    return out


def _build(raw: dict[str, Any], path: Path) -> PipelineConfig:
    base = path.parent.resolve()
    s = _sections(raw)

    def resolve(where: str, value: str | Path, must_exist: bool = False) -> Path:
        p = Path(value).expanduser()
        p = p if p.is_absolute() else (base / p).resolve()
        if must_exist and not p.is_file():
            raise ConfigError(f"{where} = \"{value}\": no such file {p}; fix the path "
                              f"(relative paths start at {base})")  # fmt: skip
        return p

    tasks, sampling, judge = s["tasks"], dict(s.get("sampling", {})), dict(s.get("judge", {}))
    anchors, export, run = s.get("anchors", {}), s.get("export", {}), s.get("run", {})
    sampling_backend = _backend("[sampling.backend]", sampling.pop("backend", {}), resolve)
    bring = tuple(resolve("[sampling] bring", p, True) for p in sampling.pop("bring", ()))
    tiers = judge.pop("tiers", None)
    single = judge.pop("backend", None)
    if tiers and single:
        raise ConfigError("[judge] has both [judge.backend] and [[judge.tiers]]; keep one")
    specs = tiers or [single or {}]
    where = "[[judge.tiers]]" if tiers else "[judge.backend]"
    judge_backends = tuple(_backend(where, spec, resolve) for spec in specs)
    extras = {k: judge.pop(k) for k in ("max_ties_per_task", "conflict_sample") if k in judge}
    if "rubric" in judge:
        judge["rubric"] = _rubric(judge["rubric"], base)
    verify = _verify_config(s, resolve)
    return PipelineConfig(
        tasks=resolve("[tasks] path", tasks["path"], True),
        task_limit=tasks.get("limit"),
        store=resolve("[run] store", run.get("store", "runs/run.duckdb")),
        export_dir=resolve("[export] out", export.get("out", "runs/export")),
        export_formats=export.get("formats", ("disk", "parquet", "jsonl")),
        source=export.get("source", "rlaif-sql"),
        sampling=make(SamplingConfig, sampling, "[sampling]"),
        sampling_backend=sampling_backend,
        bring=bring,
        verify=verify,
        engine=verify.engine or EngineConfig(),
        judge=make(JudgeConfig, judge, "[judge]"),
        judge_backends=judge_backends,
        **extras,
        anchors=resolve("[anchors] path", anchors["path"], True) if "path" in anchors else None,
        kappa_threshold=anchors.get("threshold", 0.72),
        force_export=anchors.get("force", False),
        pairs=make(PairsConfig, s.get("pairs", {}), "[pairs]"),
        path=path,
    )


def _backend(where: str, raw: dict[str, Any], resolve: Any) -> dict[str, Any]:
    spec = check_backend(where, raw)
    if spec["kind"] == "jsonl":
        spec["path"] = str(resolve(f"{where} path", spec["path"], True))
    if spec["kind"] == "local" and "model" in spec:
        from rlaif_sql.backends.local import check_model

        spec["model"] = check_model(
            spec["model"], base=resolve(where, "."), where=f"{where} model ="
        )
    if spec["kind"] == "local" and spec.get("batch_size", 1) < 1:
        raise ConfigError(f"{where} batch_size = {spec['batch_size']} must be >= 1")
    return spec


def _rubric(ref: str, base: Path) -> str:
    """A registered rubric's name as is; a file's path resolved against the config's folder
    (and loaded now, so a bad one is named before any model loads)."""
    from rlaif_sql.rubrics import RUBRICS, load_rubric

    if ref in RUBRICS:
        return ref
    try:
        load_rubric(ref, base)
    except ConfigError as exc:
        raise ConfigError(f'[judge] rubric = "{ref}": {exc}') from exc
    path = Path(ref).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _verify_config(s: dict[str, dict[str, Any]], resolve: Any) -> VerifyConfig:
    verify = dict(s.get("verify", {}))
    if "derived_dir" in verify:
        verify["derived_dir"] = resolve("[verify] derived_dir", verify["derived_dir"])
    return verify_settings(verify, sandbox=s.get("sandbox"), code_sandbox=s.get("code_sandbox"),
                           engine=s.get("engine"))  # fmt: skip
