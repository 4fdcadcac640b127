"""The pipeline TOML's schema: every section and key with its type, default and help text.

One table serves three uses: `config.load_config` checks a file against it (an unknown name
gets the nearest valid one, a wrong type one line naming the file, the key, what was expected
and the fix), `docs/config.md` is rendered from it (`python -m rlaif_sql.config_docs`; a test
fails when the two drift), and `rlaif-sql eval` builds its backend options from it.

Sections backed by a dataclass (SamplingConfig, JudgeConfig, PairsConfig, SandboxLimits,
CodeSandboxConfig) take their keys, types and defaults from its fields and their help from
the fields' docstrings, so a new field is a new key with no second list to keep in step.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import itertools
import pathlib
import textwrap
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from functools import cache
from typing import Any

from rlaif_sql.errors import ConfigError

TABLE = "table"
TABLES = "array of tables"
LABELS = {
    int: "an integer", float: "a number", bool: "true or false", str: "a string",
    "path": "a path (string)", TABLE: "a table", TABLES: "an array of tables",
    "floats": "a list of numbers", "strings": "a list of strings", "paths": "a list of paths",
}  # fmt: skip


@dataclass(frozen=True)
class Key:
    name: str
    kind: Any
    """int, float, bool, str, "path", "floats", "strings", "paths", TABLE or TABLES."""
    default: Any
    help: str
    required: bool = False
    optional: bool = False
    """The key may be left out and then means "not set" (TOML has no null)."""

    @property
    def label(self) -> str:
        return LABELS[self.kind]


@dataclass(frozen=True)
class Section:
    name: str
    help: str
    keys: tuple[Key, ...]

    def key(self, name: str) -> Key | None:
        return next((k for k in self.keys if k.name == name), None)


# ---------------------------------------------------------------------- keys from code


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (PEP 257 attribute docstrings)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _kind(hint: Any) -> tuple[Any, bool]:
    """(kind, optional) of a type hint: `int | None` is an optional int."""
    args = typing.get_args(hint)
    if hint is pathlib.Path:
        return "path", False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        kind, _ = _kind(rest[0])
        return ("path" if len(rest) > 1 else kind), type(None) in args
    if typing.get_origin(hint) is tuple:
        return ("floats" if args[0] is float else "strings"), False
    return hint, False


def dataclass_keys(cls: type, skip: Sequence[str] = ()) -> tuple[Key, ...]:
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    keys = []
    for f in fields(cls):
        if f.name in skip:
            continue
        kind, optional = _kind(hints[f.name])
        factory: Any = f.default_factory
        default = f.default if f.default is not MISSING else factory()
        keys.append(Key(f.name, kind, default, docs.get(f.name, ""), optional=optional))
    return tuple(keys)


BACKEND_HELP = {
    "kind": "local (transformers on this machine), openai (any OpenAI-compatible endpoint) "
    "or jsonl (completions you bring)",
    "model": "local: embedded (SmolLM2-135M-Instruct), a checkpoint folder or a Hugging Face "
    "name; openai: the served model's name; jsonl: the name recorded as the source",
    "batch_size": "local: requests generated together (more is faster, uses more memory)",
    "device": "local: torch device, e.g. cpu or cuda",
    "threads": "local: torch CPU threads (unset: torch's default)",
    "base_url": "openai: the endpoint, e.g. http://localhost:8000/v1 (unset: OpenAI's)",
    "api_key_env": "openai: the environment variable that holds the API key",
    "concurrency": "openai: requests in flight at once",
    "timeout_s": "openai: seconds per request before it counts as a timeout",
    "retries": "openai: retries of a 408/429/5xx/timeout, with exponential backoff and jitter",
    "backoff_s": "openai: first backoff in seconds (doubles per retry)",
    "requests_per_minute": "openai: client-side rate limit (unset: none)",
    "top_logprobs": "openai: alternatives asked for with log-probabilities (judge follow-ups)",
    "path": "jsonl: a JSONL file of task_id + completion lines, relative to the config",
}


@cache
def backend_kinds() -> dict[str, tuple[Key, ...]]:
    """The keys each backend kind accepts, from its constructor's signature."""
    from rlaif_sql.backends.base import BACKENDS

    out = {}
    for kind in BACKENDS.names():
        cls = BACKENDS.get(kind)
        hints = typing.get_type_hints(cls.__init__)
        keys = []
        for name, param in inspect.signature(cls.__init__).parameters.items():
            if name == "self":
                continue
            hinted, optional = _kind(hints[name])
            required = param.default is inspect.Parameter.empty
            default = None if required else param.default
            keys.append(
                Key(name, hinted, default, BACKEND_HELP.get(name, name), required, optional)
            )
        out[kind] = tuple(keys)
    return out


def backend_section(name: str) -> Section:
    kind = Key("kind", str, "local", BACKEND_HELP["kind"])
    merged: dict[str, Key] = {}
    for keys in backend_kinds().values():
        for key in keys:
            merged.setdefault(key.name, Key(key.name, key.kind, key.default, key.help,
                                            optional=key.optional or key.required))  # fmt: skip
    return Section(name, "a model backend", (kind, *merged.values()))


# ---------------------------------------------------------------------- the schema


@cache
def schema() -> dict[str, Section]:
    from rlaif_sql.distributed.engine import EngineConfig
    from rlaif_sql.judge import JudgeConfig
    from rlaif_sql.pairs import PairsConfig
    from rlaif_sql.sample import SamplingConfig
    from rlaif_sql.sandboxes.process import CodeSandboxConfig
    from rlaif_sql.sandboxes.results import SandboxLimits
    from rlaif_sql.verify_settings import VerifyOptions

    sections = [
        Section("tasks", "the task set", (
            Key("path", "path", None, "tasks JSONL, relative to this config", required=True),
            Key("limit", int, None, "the default subset: the first N tasks (`--all` runs every "
                "task)", optional=True),
        )),
        Section("sampling", "completions from the policy model", (
            *dataclass_keys(SamplingConfig),
            Key("bring", "paths", (), "candidate JSONL files added as further sources (other "
                "models, earlier checkpoints)"),
            Key("backend", TABLE, {"kind": "local"}, "where completions come from: "
                "[sampling.backend]"),
        )),
        backend_section("sampling.backend"),
        Section("verify", "the hard checks", dataclass_keys(VerifyOptions)),
        Section("sandbox", "limits of each SQL query", dataclass_keys(SandboxLimits)),
        Section("code_sandbox", "limits of each code candidate (kind = code tasks)",
                dataclass_keys(CodeSandboxConfig)),
        Section("judge", "the LLM judge, for ties among verified candidates", (
            *dataclass_keys(JudgeConfig),
            Key("max_ties_per_task", int, 2, "distinct verified answers compared per task"),
            Key("conflict_sample", int, 4, "verified-vs-failed pairs shown to the judge to "
                "measure the verifier-judge conflict rate (0 = off)"),
            Key("backend", TABLE, {"kind": "local"}, "the judge model: [judge.backend]"),
            Key("tiers", TABLES, None, "judges escalating ambiguous outcomes, weakest first: "
                "[[judge.tiers]] (instead of [judge.backend])", optional=True),
        )),
        backend_section("judge.backend"),
        backend_section("judge.tiers"),
        Section("anchors", "human-labelled pairs that measure the judge", (
            Key("path", "path", None, "anchors JSONL (anchor_id, task_id, a, b, human)",
                optional=True),
            Key("threshold", float, 0.72, "least holdout kappa for the export gate"),
            Key("force", bool, False, "export even when the judge fails the gate (flagged)"),
        )),
        Section("pairs", "chosen/rejected pairs", dataclass_keys(PairsConfig)),
        Section("engine", "where verification runs: this process, or verifier actors on a Ray "
                "cluster (docs/scale-out.md)", dataclass_keys(EngineConfig)),
        Section("export", "the TRL preference dataset", (
            Key("out", "path", "runs/export", "export folder, relative to this config"),
            Key("formats", "strings", ("disk", "parquet", "jsonl"), "any of disk "
                "(save_to_disk), parquet, jsonl"),
            Key("source", str, "rlaif-sql", "the source tag on every exported row"),
        )),
        Section("run", "the run store", (
            Key("store", "path", "runs/run.duckdb", "the run's DuckDB file, relative to this "
                "config; a rerun resumes it"),
        )),
    ]  # fmt: skip
    return {s.name: s for s in sections}


# ---------------------------------------------------------------------- checking values


def nearest(name: str, known: Sequence[str]) -> str:
    """ "; did you mean X?" for the closest known name, else ""."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return str(value)


def _got(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}  # fmt: skip
    return f"{toml_value(value)} ({names.get(type(value), type(value).__name__)})"


def _example(key: Key) -> str:
    samples = {int: 4, float: 0.5, bool: True, str: "text", "path": "file.jsonl",
               "floats": [0.2, 0.7], "strings": ["a", "b"], "paths": ["more.jsonl"]}  # fmt: skip
    value = key.default if key.default not in (None, (), {}) else samples.get(key.kind)
    return f"{key.name} = {toml_value(value)}"


def check_value(where: str, key: Key, value: Any) -> Any:
    """The value in the form its dataclass wants (lists as tuples, ints as floats), or a
    ConfigError naming the place, what was expected, what was found and the fix."""
    kind = key.kind
    ok = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        bool: isinstance(value, bool),
        str: isinstance(value, str),
        "path": isinstance(value, str) and bool(value),
        TABLE: isinstance(value, dict),
        TABLES: isinstance(value, list) and all(isinstance(v, dict) for v in value),
        "strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "paths": isinstance(value, list) and all(isinstance(v, str) and v for v in value),
        "floats": isinstance(value, list)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value),
    }[kind]
    if not ok:
        fix = _example(key)
        if kind in ("floats", "strings", "paths") and not isinstance(value, list):
            fix = f"{key.name} = [{toml_value(value)}]"
        raise ConfigError(f"{where} {key.name} = {toml_value(value)}: expected {key.label}, "
                          f"got {_got(value)}; write e.g. {fix}")  # fmt: skip
    if kind is float:
        return float(value)
    if kind == "floats":
        return tuple(float(v) for v in value)
    if kind in ("strings", "paths"):
        return tuple(value)
    return value


def check_table(
    where: str, section: Section, raw: Mapping[str, Any], elsewhere: Mapping[str, str] = {}
) -> dict[str, Any]:
    """Every key known and of its type; required keys present. Returns the converted values.
    `elsewhere` maps keys of other sections to their place, for "did you mean" across them."""
    names = [k.name for k in section.keys]
    out = {}
    for name, value in raw.items():
        key = section.key(name)
        if key is None:
            hint = nearest(name, names)
            if not hint and (other := nearest(name, list(elsewhere))):
                found = other.removeprefix("; did you mean ").removesuffix("?")
                hint = f"; did you mean {found}, which belongs in {elsewhere[found]}?"
            raise ConfigError(f"{where} has no key {name!r}{hint} (known: {', '.join(names)})")
        out[name] = check_value(where, key, value)
    for key in section.keys:
        if key.required and key.name not in raw:
            raise ConfigError(f"{where} needs {key.name} ({key.help}); add e.g. {_example(key)}")
    return out


def keys_elsewhere(but: str) -> dict[str, str]:
    """Key name -> "[section]" for every top-level section other than `but`."""
    out: dict[str, str] = {}
    for name, section in schema().items():
        if name != but and "." not in name:
            for key in section.keys:
                out.setdefault(key.name, f"[{name}]")
    return out


def check_backend(where: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    kinds = backend_kinds()
    kind = raw.get("kind", "local")
    if kind not in kinds:
        raise ConfigError(f"{where} kind = {toml_value(kind)}: expected one of "
                          f"{', '.join(kinds)}{nearest(str(kind), list(kinds))}")  # fmt: skip
    section = Section(where, "", (Key("kind", str, "local", BACKEND_HELP["kind"]), *kinds[kind]))
    rest = {k: v for k, v in raw.items() if k != "kind"}
    other = {k.name: f"kind = {o}" for o, ks in kinds.items() if o != kind for k in ks}
    for name in rest:
        if section.key(name) is None and any(k.name == name for ks in kinds.values() for k in ks):
            owners = [k for k, ks in kinds.items() if any(x.name == name for x in ks)]
            raise ConfigError(f"{where} {name} applies to kind = {' or '.join(owners)}, not "
                              f"kind = {toml_value(kind)}; remove it or change kind")  # fmt: skip
    return {
        "kind": kind,
        **check_table(f"{where} (kind = {toml_value(kind)})", section, rest, other),
    }
