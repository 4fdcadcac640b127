"""Compare a candidate's result with the gold's, under a per-task comparison profile.

Profiles (task field `compare: {"profile": ...}`):
- `strict` (default): rows compared as a multiset (duplicates count), in order only when the
  gold's top-level query has ORDER BY (read from the AST), columns matched in any order,
  floats within `float_tolerance` (relative), NULL equal to NULL.
- `spider`: the official Spider / test-suite evaluator: DISTINCT removed from both queries,
  order significant when the gold's text contains "order by", exact values.
- `bird`: BIRD's official script: rows compared as sets, columns in order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from sqlglot import exp
from sqlglot.tokens import TokenType

from rlaif_sql.errors import TaskError
from rlaif_sql.verifiers.profiles import Profile, profile_named

Rows = Sequence[Sequence[Any]]


@dataclass(frozen=True)
class CompareOptions:
    profile: str = "strict"
    """A registered comparison profile (rlaif_sql.verifiers.profiles): strict, spider, bird."""
    float_tolerance: float = 1e-6
    """Relative tolerance for non-integral numbers (strict profile)."""
    columns: str = "exact"
    """`exact`: same number of columns; `subset`: the candidate may add columns."""
    order: str = "auto"
    """`auto`: ordered when the gold orders; `ignore`: never; `always`: always in order."""

    def __post_init__(self) -> None:
        profile_named(self.profile)  # an unknown one: a TaskError naming the known ones
        allowed = {
            "columns": ("exact", "subset"),
            "order": ("auto", "ignore", "always"),
        }
        for key, values in allowed.items():
            if getattr(self, key) not in values:
                raise TaskError(f"compare.{key}={getattr(self, key)!r} must be one of {values}")
        if not 0 <= self.float_tolerance < 1:
            raise TaskError(f"compare.float_tolerance={self.float_tolerance} must be in [0, 1)")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> CompareOptions:
        raw = dict(raw or {})
        raw.pop("test_suite", None)  # read by the test-suite check, not by the comparison
        raw.pop("counterexamples", None)  # read by the counterexample check
        known = {f.name for f in fields(cls)}
        if set(raw) - known:
            raise TaskError(
                f"unknown compare option(s) {sorted(set(raw) - known)}; known: {sorted(known)}"
            )
        return cls(**raw)


@dataclass(frozen=True)
class Comparison:
    match: bool
    detail: str
    row_count_match: bool


def strip_distinct(sql: str, dialect: str) -> str:
    """Remove every DISTINCT token, as the Spider evaluator does before executing."""
    from sqlglot.dialects.dialect import Dialect

    tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    spans = [(t.start, t.end + 1) for t in tokens if t.token_type == TokenType.DISTINCT]
    for start, end in reversed(spans):
        sql = sql[:start] + sql[end:]
    return sql


def gold_orders(gold_sql: str, gold_tree: exp.Expr | None, options: CompareOptions) -> bool:
    if options.order != "auto":
        return options.order == "always"
    return profile_named(options.profile).orders(gold_sql, gold_tree)


def compare_results(
    gold_columns: Sequence[str], gold: Rows, cand_columns: Sequence[str], cand: Rows,
    *, ordered: bool, options: CompareOptions,
) -> Comparison:  # fmt: skip
    """Decide whether the candidate's rows answer the question as the gold's do."""
    count_ok = row_count_close(len(gold), len(cand))
    gold, cand = [_hashable_row(r) for r in gold], [_hashable_row(r) for r in cand]
    equal = profile_named(options.profile).equal
    match, detail = equal(gold, cand, gold_columns, cand_columns, ordered=ordered, options=options)
    if not match and not detail:
        detail = _mismatch_detail(gold, cand, gold_columns, cand_columns)
    return Comparison(match, detail, count_ok)


def row_count_close(gold_rows: int, cand_rows: int) -> bool:
    """The usual row-count accuracy rule: within 0.1% of the gold's count."""
    return abs(gold_rows - cand_rows) <= 0.001 * gold_rows


def _mismatch_detail(
    gold: Rows, cand: Rows, gold_cols: Sequence[str], cand_cols: Sequence[str]
) -> str:
    if len(gold) != len(cand):
        return f"{len(cand)} rows, gold has {len(gold)}"
    gold_width = len(gold[0]) if gold else len(gold_cols)
    cand_width = len(cand[0]) if cand else len(cand_cols)
    if gold_width != cand_width:
        return f"{cand_width} columns, gold has {gold_width}"
    return "same shape, different values"


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, set):
        return tuple(sorted(map(repr, value)))
    return value


_SCALARS = frozenset({int, float, str, bool, type(None), bytes})


def _hashable_row(row: Sequence[Any]) -> tuple[Any, ...]:
    if all(type(v) in _SCALARS for v in row):  # nearly every row: no nested values to freeze
        return tuple(row)
    return tuple(_hashable(v) for v in row)


MAX_COLUMN_MAPPINGS = 10_000


def _column_mappings(
    gold_cols: list[list[Any]], cand_cols: list[list[Any]], key: Any
) -> list[tuple[int, ...]]:
    """Injective maps gold column -> candidate column whose value multisets agree."""
    gold_sigs = [sorted(map(key, col)) for col in gold_cols]
    cand_sigs = [sorted(map(key, col)) for col in cand_cols]
    choices = [[j for j, cs in enumerate(cand_sigs) if cs == gs] for gs in gold_sigs]
    found: list[tuple[int, ...]] = []

    def extend(prefix: tuple[int, ...]) -> None:
        if len(found) >= MAX_COLUMN_MAPPINGS:
            return
        if len(prefix) == len(choices):
            found.append(prefix)
            return
        for j in choices[len(prefix)]:
            if j not in prefix:
                extend((*prefix, j))

    extend(())
    return found


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _coarse_key(tolerance: float) -> Any:
    digits = max(1, int(-math.log10(tolerance))) if tolerance > 0 else 17

    def key(value: Any) -> tuple[int, Any]:
        if value is None:
            return (0, 0)
        if isinstance(value, bool):
            return (1, int(value))
        if _numeric(value):
            number = float(value)
            if math.isnan(number):
                return (1, math.inf)
            if number.is_integer() or math.isinf(number):
                return (1, number)
            return (1, float(f"{number:.{digits}g}"))
        if isinstance(value, str):
            return (2, value)
        return (3, f"{type(value).__name__}:{value}")

    return key


def _close(a: Any, b: Any, tolerance: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        a, b = (int(a) if isinstance(a, bool) else a), (int(b) if isinstance(b, bool) else b)
    if _numeric(a) and _numeric(b):
        x, y = float(a), float(b)
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return math.isclose(x, y, rel_tol=tolerance, abs_tol=tolerance)
    return bool(a == b)


def _strict_eq(
    gold: Rows,
    cand: Rows,
    gold_width: int,
    cand_width: int,
    *,
    ordered: bool,
    options: CompareOptions,
) -> tuple[bool, str]:
    if len(gold) != len(cand):
        return False, f"{len(cand)} rows, gold has {len(gold)}"
    if cand_width < gold_width or (options.columns == "exact" and cand_width != gold_width):
        return False, f"{cand_width} columns, gold has {gold_width}"
    if cand_width == gold_width and _identical(gold, cand, ordered=ordered):
        return True, ""
    key = _coarse_key(options.float_tolerance)
    gold_cols = [[row[i] for row in gold] for i in range(gold_width)]
    cand_cols = [[row[j] for row in cand] for j in range(cand_width)]
    mappings = _column_mappings(gold_cols, cand_cols, key)
    if not mappings:
        return False, "no column of the candidate holds the values of some gold column"
    for mapping in mappings:
        projected = [tuple(row[j] for j in mapping) for row in cand]
        if _rows_equal(
            list(gold), projected, ordered=ordered, key=key, tol=options.float_tolerance
        ):
            return True, ""
    if ordered and _rows_equal(
        list(gold), projected, ordered=False, key=key, tol=options.float_tolerance
    ):
        return False, "right rows in the wrong order (the gold orders its result)"
    return False, "columns hold the right values but rows do not pair up"


def _identical(gold: Rows, cand: Rows, *, ordered: bool) -> bool:
    """The same rows exactly, columns in the same order: a match under any tolerance, found
    in C (tuple equality and hashing) without the per-value Python below. Most candidates
    that pass are exactly this; anything else (a float off in the last digit, columns in
    another order, NaN) takes the tolerant path."""
    if ordered:
        return list(gold) == list(cand)
    return Counter(gold) == Counter(cand)


def _rows_equal(gold: list[Any], cand: list[Any], *, ordered: bool, key: Any, tol: float) -> bool:
    if not ordered:
        gold = sorted(gold, key=lambda r: tuple(map(key, r)))
        cand = sorted(cand, key=lambda r: tuple(map(key, r)))
    return all(
        all(_close(a, b, tol) for a, b in zip(g, c, strict=True))
        for g, c in zip(gold, cand, strict=True)
    )


# The official Spider / test-suite evaluator's result_eq, reproduced for the `spider` profile.
def spider_result_eq(result1: Rows, result2: Rows, *, order_matters: bool) -> bool:
    if len(result1) == 0 and len(result2) == 0:
        return True
    if len(result1) != len(result2):
        return False
    num_cols = len(result1[0])
    if len(result2[0]) != num_cols:
        return False
    if not _spider_quick_accept(result1, result2, order_matters):
        return False
    tab1_sets = [{row[i] for row in result1} for i in range(num_cols)]
    for perm in _spider_permutations(tab1_sets, result2):
        result2_perm = [tuple(row[i] for i in perm) for row in result2]
        if order_matters:
            if [tuple(r) for r in result1] == result2_perm:
                return True
        elif set(map(tuple, result1)) == set(result2_perm) and Counter(
            map(tuple, result1)
        ) == Counter(result2_perm):
            return True
    return False


def _spider_unorder_row(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(sorted(row, key=lambda x: str(x) + str(type(x))))


def _spider_quick_accept(result1: Rows, result2: Rows, order_matters: bool) -> bool:
    s1 = [_spider_unorder_row(row) for row in result1]
    s2 = [_spider_unorder_row(row) for row in result2]
    return s1 == s2 if order_matters else set(s1) == set(s2)


def _spider_permutations(tab1_sets: list[set[Any]], result2: Rows) -> list[tuple[int, ...]]:
    """Column permutations not ruled out by some row (the official code samples 20 rows;
    pruning on more rows only removes permutations that could never match)."""
    num_cols = len(tab1_sets)
    allowed = [set(range(num_cols)) for _ in range(num_cols)]
    for row in result2[:50]:
        for i in range(num_cols):
            allowed[i] = {j for j in allowed[i] if row[j] in tab1_sets[i]}
    choices = [sorted(a) for a in allowed]
    found: list[tuple[int, ...]] = []

    def extend(prefix: tuple[int, ...]) -> None:
        if len(found) >= MAX_COLUMN_MAPPINGS:
            return
        if len(prefix) == num_cols:
            found.append(prefix)
            return
        for j in choices[len(prefix)]:
            if j not in prefix:
                extend((*prefix, j))

    extend(())
    return found


# ---------------------------------------------------------------------- the built-in profiles


def _strict_equal(gold: Rows, cand: Rows, gold_columns: Sequence[str], cand_columns: Sequence[str],
                  *, ordered: bool, options: CompareOptions) -> tuple[bool, str]:  # fmt: skip
    return _strict_eq(gold, cand, len(gold_columns), len(cand_columns), ordered=ordered,
                      options=options)  # fmt: skip


def _spider_equal(gold: Rows, cand: Rows, *_: Any, ordered: bool, **__: Any) -> tuple[bool, str]:
    return spider_result_eq(gold, cand, order_matters=ordered), ""


def _bird_equal(gold: Rows, cand: Rows, *_: Any, **__: Any) -> tuple[bool, str]:
    match = set(map(tuple, gold)) == set(map(tuple, cand))
    return match, "" if match else "row sets differ (BIRD compares results as sets)"


STRICT = Profile("strict", _strict_equal,
                 lambda sql, tree: tree is not None and tree.args.get("order") is not None)  # fmt: skip
SPIDER = Profile("spider", _spider_equal, lambda sql, tree: "order by" in sql.lower(),
                 strip_distinct)  # fmt: skip
BIRD = Profile("bird", _bird_equal, lambda sql, tree: False)
