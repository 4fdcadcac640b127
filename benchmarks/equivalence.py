"""Do verdicts tell equivalent rewrites of a gold from wrong ones? Per verification mode.

    python -m benchmarks.equivalence [--limit 300] [--seed 0] [--modes original,suite,counterexample]
                                     [--dataset spider|kaggledbqa]

For a seeded sample of Spider dev golds (all 972 usable ones with --limit 0; or the 87
KaggleDBQA golds on its 3 real-world databases, data the rewrites were not tuned on), rewrites that are
equivalent by construction and rewrites that are wrong by construction are generated with
sqlglot (benchmarks/rewrites.py), and each is verified against its gold with the `strict`
profile in these modes: the original database only, with a test suite, with counterexample
search (realistic: rules inferred from the data kept), and with counterexample search on
schema-only data (`counterexample_schema`, opt-in). Reports per mode: equivalent rewrites rejected (target 0, each listed
with its evidence) and wrong rewrites accepted (target at most 2 %, each listed). A rewrite
that does not run on the original database (sqlglot's output SQLite cannot run) is not
counted either way and is listed as invalid. Writes benchmarks/results/equivalence.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from benchmarks.machine import REALDATA, RESULTS, describe_machine
from benchmarks.rewrites import (
    equivalent_rewrites,
    provably_equivalent,
    survivor_class,
    wrong_rewrites,
)
from rlaif_sql.models import Candidate, Reason, SqlTask, Verdict
from rlaif_sql.sandboxes.results import SandboxLimits
from rlaif_sql.schema import read_schema
from rlaif_sql.testsuite.counterexample import CounterexampleConfig
from rlaif_sql.testsuite.distil import SuiteConfig
from rlaif_sql.testsuite.pool import generation_schema
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify_many

RUN_ERRORS = {Reason.PARSE_ERROR, Reason.BIND_ERROR, Reason.RUNTIME_ERROR, Reason.POLICY_VIOLATION,
              Reason.TIMEOUT, Reason.RESOURCE_LIMIT}  # fmt: skip


DATASETS = {
    # name: (folder under realdata, files of {db_id, question, query} rows, databases folder)
    "spider": ("spider", ("dev.json",), "database"),
    "kaggledbqa": ("kaggledbqa", tuple(f"examples/{d}.json" for d in (
        "GeoNuclearData", "GreaterManchesterCrime", "StudentMathScore")), "databases"),
}  # fmt: skip


def golds(realdata: Path, dataset: str) -> list[tuple[int, tuple[dict[str, Any], Path]]]:
    """(position in the data set's files, (row, database)) of every gold whose database is
    there; the position names the task (`eq-<position>`)."""
    folder, files, databases = DATASETS[dataset]
    rows = [r for f in files for r in json.loads((realdata / folder / f).read_text())]
    found = [(r, realdata / folder / databases / r["db_id"] / f"{r['db_id']}.sqlite") for r in rows]
    return [(i, (r, db)) for i, (r, db) in enumerate(found) if db.is_file()]


def build(
    indexed: list[tuple[int, tuple[dict[str, Any], Path]]], limit: int, seed: int
) -> tuple[list[SqlTask], list[Candidate], dict]:
    chosen = (
        sorted(random.Random(seed).sample(indexed, limit), key=lambda p: p[0])
        if limit and limit < len(indexed)
        else indexed
    )
    tasks, candidates, kinds = [], [], {}
    for i, (row, db) in chosen:
        gold = row["query"]
        task = SqlTask(f"eq-{i}", row["question"], str(db), (gold,), dialect="sqlite",
                       compare={"profile": "strict"})  # fmt: skip
        tasks.append(task)
        schema = read_schema(db)
        info, _, _ = generation_schema(db, realistic=True)
        made = [("equivalent", k, s) for k, s in equivalent_rewrites(gold, schema)]
        for k, s in wrong_rewrites(gold, schema, info, str(db)):
            why = provably_equivalent(gold, k, s)
            made.append(("equivalent_mutant", f"{k}:{why}", s) if why else ("wrong", k, s))
        made.append(("gold", "gold", gold))
        for n, (label, kind, sql) in enumerate(made):
            cid = f"{task.task_id}/{kind}/{n}"
            candidates.append(Candidate(task.task_id, cid, sql))
            kinds[cid] = (label, kind)
    return tasks, candidates, kinds


def run_mode(
    mode: str, tasks: list[SqlTask], candidates: list[Candidate], args: Any
) -> list[Verdict]:
    cache = args.cache
    config = VerifyConfig(
        sandbox=SandboxLimits(timeout_s=10), workers=args.workers,
        test_suite=SuiteConfig(size=8, candidates=30, time_budget_s=10, cache_dir=cache)
        if mode == "suite" else None,
        counterexamples=CounterexampleConfig(cache_dir=cache, realistic=mode == "counterexample")
        if mode.startswith("counterexample") else None,
    )  # fmt: skip
    with VerifierContext(config) as ctx:
        return list(verify_many(tasks, candidates, ctx=ctx, progress=True))


def summarise(
    verdicts: list[Verdict], kinds: dict, by_id: dict[str, SqlTask], original: dict
) -> dict:
    infos = {t.db: generation_schema(t.db, realistic=True)[0] for t in by_id.values()}
    tally: dict[str, Counter] = defaultdict(Counter)
    wrongly_rejected, wrongly_accepted, invalid = [], [], []
    for v in verdicts:
        label, kind = kinds[v.candidate_id]
        base = original[v.candidate_id]
        if base.reason in RUN_ERRORS or base.reason is Reason.ABSTAIN:
            invalid.append(v.candidate_id)
            continue
        tally[label]["total"] += 1
        tally[f"{label}:{kind}"]["total"] += 1
        if v.passed:
            tally[label]["accepted"] += 1
            tally[f"{label}:{kind}"]["accepted"] += 1
            if label == "wrong":
                wrongly_accepted.append(
                    {
                        **_row(v, by_id),
                        "why": survivor_class(
                            kind, v.evidence.get("sql") or "", infos[by_id[v.task_id].db]
                        ),
                    }
                )
        elif label in ("equivalent", "gold", "equivalent_mutant"):
            wrongly_rejected.append(_row(v, by_id))
    wrong = tally["wrong"]
    return {
        "equivalent_total": tally["equivalent"]["total"],
        "equivalent_rejected": tally["equivalent"]["total"] - tally["equivalent"]["accepted"],
        "gold_rejected": tally["gold"]["total"] - tally["gold"]["accepted"],
        "equivalent_mutants_total": tally["equivalent_mutant"]["total"],
        "equivalent_mutants_rejected": tally["equivalent_mutant"]["total"]
        - tally["equivalent_mutant"]["accepted"],
        "wrong_total": wrong["total"],
        "wrong_accepted": wrong["accepted"],
        "wrong_accepted_share": round(wrong["accepted"] / wrong["total"], 4)
        if wrong["total"]
        else None,
        "by_kind": {k: dict(c) for k, c in sorted(tally.items()) if ":" in k},
        "equivalent_rejected_list": wrongly_rejected,
        "wrong_accepted_list": wrongly_accepted,
        "wrong_accepted_why": dict(Counter(r["why"] for r in wrongly_accepted)),
        "invalid_rewrites": len(invalid),
    }


def _row(v: Verdict, by_id: dict[str, SqlTask]) -> dict[str, Any]:
    cx = v.evidence.get("counterexample") or {}
    return {"id": v.candidate_id, "gold": by_id[v.task_id].gold_sql[0], "sql": v.evidence.get("sql"),
            "reason": v.reason.value, "detail": v.detail[:600],
            "counterexample": {k: cx.get(k) for k in ("found", "searched", "rows", "database")} if cx else None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=REALDATA)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="spider")
    parser.add_argument("--limit", type=int, default=300, help="golds (0 = all usable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", default="original,suite,counterexample")
    parser.add_argument(
        "--cache", type=Path, default=None, help="cache dir (default: $RLAIF_SQL_CACHE)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "equivalence.json")
    args = parser.parse_args()
    started = time.perf_counter()
    tasks, candidates, kinds = build(golds(args.realdata, args.dataset), args.limit, args.seed)
    by_id = {t.task_id: t for t in tasks}
    build_s = time.perf_counter() - started
    result: dict[str, Any] = {"benchmark": "equivalence", "machine": describe_machine(),
                              "dataset": args.dataset, "command": " ".join(sys.argv[1:]),
                              "golds": len(tasks), "sampled_with_seed": args.seed if args.limit else None,
                              "candidates": len(candidates), "rewrite_seconds": round(build_s, 1),
                              "rewrites_by_kind": dict(Counter(f"{a}:{b}" for a, b in kinds.values())),
                              "modes": {}}  # fmt: skip
    original: dict[str, Verdict] = {}
    for mode in ["original", *[m for m in args.modes.split(",") if m != "original"]]:
        t0 = time.perf_counter()
        verdicts = run_mode(mode, tasks, candidates, args)
        if mode == "original":
            original = {v.candidate_id: v for v in verdicts}
        summary = summarise(verdicts, kinds, by_id, original)
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        result["modes"][mode] = summary
        print(
            mode,
            json.dumps({k: v for k, v in summary.items() if not k.endswith("_list")}, indent=1),
        )
        result["total_seconds"] = round(time.perf_counter() - started, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
