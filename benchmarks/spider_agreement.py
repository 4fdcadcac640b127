"""Agreement of `rlaif-sql verify` with the official Spider evaluator's labels.

Every prediction of the 9 published systems in shared/realdata/spider/predictions/ is
verified against its gold on the original database, and `passed` is compared with the
official evaluator's `exec_match_orig_db` label.

    python -m benchmarks.spider_agreement --engine sqlite --profile spider
    python -m benchmarks.spider_agreement --engine duckdb --profile strict
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from benchmarks.machine import REALDATA, REPO_ROOT, RESULTS, describe_machine
from rlaif_sql.importer import import_sqlite
from rlaif_sql.models import Candidate, SqlTask, Verdict
from rlaif_sql.sandboxes.results import SandboxLimits
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify_many


def load_labels(spider: Path) -> dict[str, list[dict[str, Any]]]:
    """system name -> its labelled predictions (gold, pred, db_id, label)."""
    systems = {}
    for path in sorted((spider / "labels").glob("*.labels.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        systems[path.name.removesuffix(".labels.jsonl")] = rows
    return systems


def duckdb_copies(spider: Path, db_ids: set[str], cache: Path) -> dict[str, Path]:
    cache.mkdir(parents=True, exist_ok=True)
    copies = {}
    for db_id in sorted(db_ids):
        target = cache / f"{db_id}.duckdb"
        if not target.exists():
            import_sqlite(spider / "database" / db_id / f"{db_id}.sqlite", target)
        copies[db_id] = target
    return copies


def build(
    spider: Path, engine: str, profile: str
) -> tuple[list[SqlTask], list[Candidate], dict[str, int]]:
    systems = load_labels(spider)
    first = next(iter(systems.values()))
    db_ids = {row["db_id"] for row in first}
    if engine == "duckdb":
        dbs = duckdb_copies(spider, db_ids, REPO_ROOT / ".cache" / "spider_duckdb")
    else:
        dbs = {d: spider / "database" / d / f"{d}.sqlite" for d in db_ids}
    tasks = [
        SqlTask(
            task_id=f"spider-{row['i']}",
            question=row["question"],
            db=str(dbs[row["db_id"]]),
            gold_sql=(row["gold"],),
            dialect="sqlite",
            compare={"profile": profile},
        )
        for row in first
    ]
    candidates, labels = [], {}
    for system, rows in systems.items():
        for row in rows:
            cid = f"{system}/{row['i']}"
            candidates.append(Candidate(f"spider-{row['i']}", cid, row["pred"] or ""))
            labels[cid] = int(row["exec_match_orig_db"])
    return tasks, candidates, labels


def disagreement_class(verdict: Verdict, label: int) -> str:
    direction = "we_reject_official_accepts" if label else "we_accept_official_rejects"
    return f"{direction}:{verdict.reason.value}"


DUCKDB_ERRORS = (
    ("GROUP BY clause", "duckdb_strict_group_by"),  # SQLite allows bare columns
    ("Cannot compare values", "duckdb_strict_types"),  # SQLite compares by affinity
    ("Could not convert", "duckdb_strict_types"),
    ("explicit cast", "duckdb_strict_types"),
    ("More than one row returned by a subquery", "duckdb_scalar_subquery"),  # SQLite: first row
    ("No function matches", "duckdb_strict_types"),  # avg() over a TEXT column of numbers
)


def explain(verdict: Verdict, gold: str) -> str:
    """Why we and the official evaluator differ, from the queries and our verdict's detail.

    Heuristic and for this report only: the classes are then checked by hand on the examples.
    """
    pred = str(verdict.evidence.get("sql") or "")
    if "\t" in pred and verdict.passed:
        return "official_reads_prediction_up_to_first_tab"
    for needle, name in DUCKDB_ERRORS:
        if needle in verdict.detail:
            return name
    if verdict.row_count == 0 and verdict.gold_row_count == 0:
        return "both_empty_official_ignores_columns"
    trees = [_tree(gold), _tree(pred)]
    if trees[1] is not None and trees[1].find(exp.Any, exp.All):
        return "any_all_unsupported_by_sqlite"
    if any(t is not None and (t.find(exp.Distinct) or t.args.get("distinct")) for t in trees):
        return "distinct_stripped_by_official"
    if any(t is not None and t.find(exp.Like) for t in trees) and "rows" in verdict.detail:
        return "like_case_sensitivity"
    if trees[0] is not None and _orders_only_inside(trees[0]):
        return "order_by_in_subquery_only"
    return "other"


def _tree(sql: str) -> exp.Expr | None:
    try:
        return sqlglot.parse_one(sql, read="sqlite")
    except (sqlglot.errors.SqlglotError, RecursionError):
        return None


def _orders_only_inside(tree: exp.Expr) -> bool:
    return tree.args.get("order") is None and tree.find(exp.Order) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=REALDATA)
    parser.add_argument("--engine", choices=("sqlite", "duckdb"), default="sqlite")
    parser.add_argument("--profile", choices=("spider", "strict"), default="spider")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    spider = args.realdata / "spider"
    tasks, candidates, labels = build(spider, args.engine, args.profile)
    config = VerifyConfig(sandbox=SandboxLimits(timeout_s=args.timeout), workers=args.workers)
    started = time.perf_counter()
    with VerifierContext(config) as ctx:
        verdicts = list(verify_many(tasks, candidates, ctx=ctx, progress=True))
        from rlaif_sql.verifiers.compare import CompareOptions
        from rlaif_sql.verifiers.sql import gold_results

        gold_ok = sum(
            all(g.result.ok for g in gold_results(t, ctx, CompareOptions(profile=args.profile)))
            for t in tasks
        )
    elapsed = time.perf_counter() - started
    decided = [v for v in verdicts if not v.abstained]
    agree = [v for v in decided if int(v.passed) == labels[v.candidate_id]]
    classes = Counter(
        disagreement_class(v, labels[v.candidate_id])
        for v in decided
        if int(v.passed) != labels[v.candidate_id]
    )
    gold_of = {t.task_id: t.gold_sql[0] for t in tasks}
    why = Counter(
        f"{disagreement_class(v, labels[v.candidate_id]).split(':')[0]}:{explain(v, gold_of[v.task_id])}"
        for v in decided
        if int(v.passed) != labels[v.candidate_id]
    )
    examples: dict[str, list[dict[str, Any]]] = {}
    for v in decided:
        if int(v.passed) != labels[v.candidate_id]:
            gold = gold_of[v.task_id]
            direction = disagreement_class(v, labels[v.candidate_id]).split(":")[0]
            bucket = examples.setdefault(f"{direction}:{explain(v, gold)}", [])
            if len(bucket) < 10:
                bucket.append(
                    {
                        "id": v.candidate_id,
                        "gold": gold,
                        "pred": v.evidence.get("sql"),
                        "detail": v.detail,
                        "why": explain(v, gold),
                    }
                )
    per_system = Counter(v.candidate_id.split("/")[0] for v in agree)
    totals = Counter(v.candidate_id.split("/")[0] for v in decided)
    result = {
        "benchmark": "spider_agreement",
        "engine": args.engine,
        "profile": args.profile,
        "machine": describe_machine(),
        "candidates": len(verdicts),
        "abstained": len(verdicts) - len(decided),
        "golds_run": f"{gold_ok}/{len(tasks)}",
        "agreement": round(len(agree) / len(decided), 5),
        "agreement_per_system": {s: round(per_system[s] / totals[s], 4) for s in sorted(totals)},
        "our_pass_rate": round(sum(v.passed for v in decided) / len(decided), 4),
        "official_pass_rate": round(sum(labels[v.candidate_id] for v in decided) / len(decided), 4),
        "disagreements": dict(classes.most_common()),
        "disagreement_causes": dict(why.most_common()),
        "excluded_gold_fails_here": sum(v.reason.value == "task_error" for v in verdicts),
        "disagreement_examples": examples,
        "elapsed_s": round(elapsed, 1),
    }
    out = args.out or RESULTS / f"spider_agreement_{args.engine}_{args.profile}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "engine",
                    "profile",
                    "golds_run",
                    "agreement",
                    "disagreements",
                    "disagreement_causes",
                    "elapsed_s",
                )
            },
            indent=2,
        )
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
