"""The config schema: docs/config.md is generated from it (and fails here when they drift),
every key has help text, the bundled example loads, and every key of every section is
honoured (setting it changes the loaded config: nothing silently ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlaif_sql.config import load_config
from rlaif_sql.config_docs import render_docs
from rlaif_sql.config_schema import TABLE, TABLES, Key, schema, toml_value

ROOT = Path(__file__).resolve().parents[1]
SPECIAL = {"rubric": "code-quality@1", "isolation": "rlimits", "formats": ["jsonl"],
           "strategies": ["judge"], "temperatures": [0.3], "source": "elsewhere",
           "kind": "ray", "address": "auto", "cache_dir": "ray-cache", "pool_name": "grpo"}  # fmt: skip


def test_docs_config_md_is_the_rendered_schema() -> None:
    rendered = render_docs()
    assert (ROOT / "docs" / "config.md").read_text() == rendered, (
        "docs/config.md is stale: python -m rlaif_sql.config_docs > docs/config.md"
    )


def test_every_key_has_help_and_a_row_in_the_docs() -> None:
    docs = render_docs()
    for section in schema().values():
        for key in section.keys:
            assert key.help, f"[{section.name}] {key.name} has no help text"
            assert f"| `{key.name}` |" in docs


def test_the_bundled_example_loads() -> None:
    config = load_config(ROOT / "examples" / "revenue" / "pipeline.toml")
    assert config.task_limit == 8 and config.tasks.is_file()


def tweak(key: Key, tmp: Path) -> object:
    """A valid value different from the key's default."""
    if key.name in SPECIAL:
        return SPECIAL[key.name]
    if key.kind == "path":
        (tmp / f"{key.name}.jsonl").write_text("")
        return f"{key.name}.jsonl"
    if key.kind == "paths":
        (tmp / "more.jsonl").write_text("")
        return ["more.jsonl"]
    if key.kind is bool:
        return not key.default
    if key.kind is int:
        return 64 if key.default is None else key.default + 1
    if key.kind is float:
        return 2.0 if key.default is None else round(key.default * 0.9, 4) or 0.5
    raise AssertionError(f"no tweak for {key}")


CASES = [
    (section.name, key)
    for section in schema().values()
    if "." not in section.name
    for key in section.keys
    if key.kind not in (TABLE, TABLES)
]


@pytest.mark.parametrize(("section", "key"), CASES, ids=[f"{s}.{k.name}" for s, k in CASES])
def test_every_key_is_honoured(tmp_path: Path, section: str, key: Key) -> None:
    (tmp_path / "tasks.jsonl").write_text("")
    sections: dict[str, dict[str, object]] = {"tasks": {"path": "tasks.jsonl"}}
    render = lambda: "".join(  # noqa: E731
        f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items())
        for name, keys in sections.items()
    )
    (tmp_path / "base.toml").write_text(render())
    sections.setdefault(section, {})[key.name] = tweak(key, tmp_path)
    (tmp_path / "tweaked.toml").write_text(render())
    assert load_config(tmp_path / "tweaked.toml") != load_config(tmp_path / "base.toml")
