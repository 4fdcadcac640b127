"""The registries (task kinds, comparison profiles, backends, rubrics, pair strategies) share
one shape: built-ins by name, entry-point plugins, duplicates refused, an unknown name one
line naming the known ones and the nearest."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlaif_sql.backends.base import BACKENDS, backend_from_config
from rlaif_sql.errors import ConfigError, TaskError
from rlaif_sql.kinds.registry import KINDS, kind_named
from rlaif_sql.pairs import PAIR_STRATEGIES, PairsConfig
from rlaif_sql.registry import Registry
from rlaif_sql.rubrics import RUBRICS, load_rubric
from rlaif_sql.verifiers.compare import CompareOptions, compare_results
from rlaif_sql.verifiers.profiles import PROFILES, Profile


def test_builtins_are_registered() -> None:
    assert {"sql", "code"} <= set(KINDS.names())
    assert PROFILES.names()[:3] == ["strict", "spider", "bird"]
    assert BACKENDS.names()[:3] == ["local", "openai", "jsonl"]
    assert {"sql-explanation@1", "code-quality@1"} <= set(RUBRICS.names())
    assert PAIR_STRATEGIES.names()[:4] == ["verified_vs_failed", "all", "best_vs_worst", "judge"]


@pytest.mark.parametrize(
    ("lookup", "error", "message"),
    [
        (lambda: CompareOptions(profile="spyder"), TaskError,
         "unknown comparison profile 'spyder'; did you mean 'spider'? (known: strict, spider, bird"),
        (lambda: backend_from_config({"kind": "opanai"}), ConfigError,
         "unknown backend kind 'opanai'; did you mean 'openai'? (known: local, openai, jsonl"),
        (lambda: PairsConfig(strategies=("judges",)), ConfigError,
         "unknown pair strategy 'judges'; did you mean 'judge'?"),
        (lambda: load_rubric("sql-explanation@2"), ConfigError,
         "rubric 'sql-explanation@2' is neither registered"),
        (lambda: kind_named("sqll"), TaskError, "unknown task kind 'sqll'"),
    ],
)  # fmt: skip
def test_an_unknown_name_is_one_line_naming_the_known(lookup, error, message) -> None:
    with pytest.raises(error) as caught:
        lookup()
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_duplicates_are_refused_and_references_load_lazily() -> None:
    registry: Registry[object] = Registry("thing")
    registry.register("path", "pathlib:Path")
    with pytest.raises(ConfigError, match="a thing named 'path' is already registered"):
        registry.register("path", "os:path")
    assert registry.get("path") is Path


def test_entry_points_of_an_installed_distribution_load(tmp_path, monkeypatch) -> None:
    """A distribution on sys.path (a real dist-info folder) adds a profile by entry point."""
    info = tmp_path / "rlaif_sql_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rlaif-sql-test-plugin\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text("[rlaif_sql.test_things]\nanswer = json:dumps\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry[object] = Registry("thing", "rlaif_sql.test_things")
    registry.register("builtin", 1)
    assert registry.names() == ["builtin", "answer"]
    assert registry.get("answer")([1]) == "[1]"


def test_a_registered_profile_decides_the_comparison() -> None:
    if "any-rows" not in PROFILES:  # once per session: registries are process-wide
        PROFILES.register("any-rows", Profile("any-rows", lambda *a, **k: (True, ""),
                                              lambda sql, tree: False))  # fmt: skip
    options = CompareOptions(profile="any-rows")
    assert compare_results(["a"], [(1,)], ["a"], [(2,)], ordered=False, options=options).match
    strict = CompareOptions()
    assert not compare_results(["a"], [(1,)], ["a"], [(2,)], ordered=False, options=strict).match


def test_a_rubric_file_is_found_relative_to_a_base(tmp_path: Path) -> None:
    text = load_rubric("sql-explanation@1")
    (tmp_path / "mine.toml").write_text(
        'name = "mine"\nversion = 3\n[[criteria]]\nname = "x"\nweight = 1.0\nquestion = "?"\n'
    )
    assert load_rubric("mine.toml", base=tmp_path).ref == "mine@3"
    assert text.ref == "sql-explanation@1"


def test_a_reference_that_cannot_load_is_one_config_error() -> None:
    registry: Registry[object] = Registry("thing")
    registry.register("gone", "no_such_module_here:THING")
    with pytest.raises(ConfigError, match=r"thing 'gone' \(no_such_module_here:THING\) could not"):
        registry.get("gone")
