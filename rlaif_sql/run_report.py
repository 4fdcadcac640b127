"""A run's metrics, read from its store, and their printed form (a readable table).

Judge calls are counted per purpose: ties and conflict probes are calls spent on candidates;
anchor calls measure the judge and are reported on their own line. Conflict probes count
every verified-vs-failed comparison shown to the judge; the conflict rate is over those the
judge decided (an undecided probe, e.g. position bias, says nothing either way). Step timings
add up every invocation of a step, so a run resumed after Ctrl-C shows each step once with
the time its work really took.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping
from typing import Any

from rlaif_sql.judge import FAILED, length_preference
from rlaif_sql.metrics import summarize
from rlaif_sql.models import Task
from rlaif_sql.store import RunStore

RESUMABLE_STEPS = frozenset({"sample", "verify", "judge"})


def build_report(store: RunStore, tasks: Mapping[str, Task], policy_model: str) -> dict[str, Any]:
    candidates = [c for c in store.candidates() if c.task_id in tasks]
    verdicts = store.verdicts()
    mine = [verdicts[c.candidate_id] for c in candidates if c.candidate_id in verdicts]
    sampled = [verdicts[c.candidate_id] for c in candidates
               if c.meta.get("source") == policy_model and c.candidate_id in verdicts]  # fmt: skip
    decided_sampled = [v for v in sampled if not v.abstained]
    summary = summarize(mine)
    pairs = store.pairs()
    by_id = {c.candidate_id: c for c in candidates}
    chosen = [len(by_id[p["chosen_id"]].completion) for p in pairs if p["chosen_id"] in by_id]
    rejected = [len(by_id[p["rejected_id"]].completion) for p in pairs if p["rejected_id"] in by_id]
    return {
        "tasks": len(tasks),
        "candidates": len(candidates),
        "by_source": dict(Counter(str(c.meta.get("source", "")) for c in candidates)),
        "sample_abstains": len(store.ids("sample_abstains", "candidate_id")),
        "verified": len(mine),
        "funnel": summary.funnel,
        "verifier_pass_rate": summary.pass_rate,
        "per_check_pass_rate": summary.per_check_pass_rate,
        "row_count_accuracy": summary.row_count_accuracy,
        "execution_accuracy_policy_model": (
            sum(v.passed for v in decided_sampled) / len(decided_sampled)
            if decided_sampled
            else None
        ),
        "reasons": summary.reasons,
        "verify_abstains": summary.abstained,
        "judge": _judge_metrics(store, by_id, len(candidates)),
        "anchors": store.info("anchors"),
        "pairs": len(pairs),
        "pairs_by_strategy": dict(Counter(p["strategy"] for p in pairs)),
        "filtered": store.filtered_counts(),
        "median_chars_chosen": statistics.median(chosen) if chosen else None,
        "median_chars_rejected": statistics.median(rejected) if rejected else None,
        "steps": step_totals(store.steps()),
    }


def _judge_metrics(store: RunStore, by_id: Mapping[str, Any], n_candidates: int) -> dict[str, Any]:
    ties, probes, anchors = (store.judgments(p) for p in ("tie", "conflict", "anchor"))
    calls = [call for j in ties + probes for call in j.calls]
    reached = {cid for j in ties for cid in (j.a_id, j.b_id)}
    outcomes = Counter(j.outcome.value for j in ties)
    decided_probes = [j for j in probes if j.decided]
    first_letter = [c for c in calls if c.get("winner") in ("a", "b")]
    shown_first_won = sum((c["winner"] == "a") == (c["order"] == "ab") for c in first_letter)
    ratio = lambda a, b: a / b if b else None  # noqa: E731
    return {
        "candidates_reaching_judge": len(reached),
        "share_of_candidates_reaching_judge": ratio(len(reached), n_candidates),
        "judge_calls": len(calls),
        "tie_calls": sum(len(j.calls) for j in ties),
        "conflict_calls": sum(len(j.calls) for j in probes),
        "anchor_calls": sum(len(j.calls) for j in anchors),
        "judge_calls_per_candidate": ratio(len(calls), n_candidates),
        "tie_outcomes": dict(outcomes),
        "position_bias_rate": ratio(outcomes.get("position_bias", 0), len(ties)),
        "failed_calls": sum(1 for j in ties if j.outcome in FAILED),
        "first_shown_wins_share": ratio(shown_first_won, len(first_letter)),
        "length_preference": length_preference(ties, by_id) if by_id else None,
        "conflict_probes": len(probes),
        "conflict_probes_decided": len(decided_probes),
        "conflict_probe_outcomes": dict(Counter(j.outcome.value for j in probes)),
        "conflicts": sum(j.winner == "b" for j in decided_probes),
        "conflict_rate": ratio(sum(j.winner == "b" for j in decided_probes), len(decided_probes)),
        "rubric": ties[0].rubric if ties else (probes[0].rubric if probes else None),
    }


def step_totals(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per step, in first-run order, seconds summed over its runs (a resumed step's
    interrupted part included). Counts of the resumable steps (sample, verify, judge) add up
    over runs; pairs and export are recomputed each time, so their last run's counts stand."""
    out: dict[str, dict[str, Any]] = {}
    for row in steps:
        total = out.setdefault(row["step"], {"step": row["step"], "seconds": 0.0, "runs": 0})
        total["runs"] += 1
        total["seconds"] = round(total["seconds"] + row["seconds"], 2)
        for key, value in row.items():
            if key in ("step", "seconds", "interrupted"):
                continue
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if numeric and row["step"] in RESUMABLE_STEPS:
                total[key] = total.get(key, 0) + value
            else:
                total[key] = value
    return list(out.values())


# ---------------------------------------------------------------------- printing


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:g}"


def _items(counts: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _table(title: str, rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(label) for label, _ in rows)
    return [title] + [f"  {label:<{width}}  {value}" for label, value in rows]


def format_report(report: Mapping[str, Any]) -> str:
    """The summary as aligned tables, one per stage."""
    judge, anchors = report["judge"], report.get("anchors") or {}
    lines = _table("candidates", [
        ("tasks", str(report["tasks"])),
        ("candidates", f"{report['candidates']} ({_items(report['by_source'])})"),
        ("sampling abstains", str(report["sample_abstains"])),
    ])  # fmt: skip
    lines += _table("verifier", [
        ("verified", f"{report.get('verified', report['candidates'])} "
                     f"(abstains {report['verify_abstains']})"),
        ("funnel", " -> ".join(f"{k} {v}" for k, v in report["funnel"].items()) or "none"),
        ("pass rate", _pct(report["verifier_pass_rate"])),
        ("row-count accuracy", _pct(report["row_count_accuracy"])),
        ("policy model accuracy", _pct(report["execution_accuracy_policy_model"])),
        ("reasons", _items(report["reasons"])),
    ])  # fmt: skip
    probes = (f"{judge['conflicts']} of {judge['conflict_probes_decided']} decided probes "
              f"({_pct(judge['conflict_rate'])}); {judge['conflict_probes']} probes: "
              f"{_items(judge['conflict_probe_outcomes'])}")  # fmt: skip
    lines += _table("judge (verified ties only)", [
        ("reached the judge", f"{judge['candidates_reaching_judge']} of {report['candidates']} "
                              f"candidates ({_pct(judge['share_of_candidates_reaching_judge'])})"),
        ("judge calls", f"{judge['judge_calls']} ({judge['tie_calls']} ties, "
                        f"{judge['conflict_calls']} conflict probes; "
                        f"{judge['judge_calls_per_candidate'] or 0:.2f} per candidate)"),
        ("anchor calls", f"{judge['anchor_calls']} (measuring the judge; not counted above)"),
        ("tie outcomes", _items(judge["tie_outcomes"])),
        ("position bias", _pct(judge["position_bias_rate"])),
        ("first shown wins", _pct(judge["first_shown_wins_share"])),
        ("longer answer wins", _pct(judge["length_preference"])),
        ("verifier-judge conflict", probes),
    ])  # fmt: skip
    if anchors:
        gate = "passes" if anchors.get("passes") else "FAILS"
        kappa = anchors.get("gate_kappa")
        lines += _table("anchors", [
            ("kappa (gate)", f"{'n/a' if kappa is None else round(kappa, 3)} vs threshold "
                             f"{anchors.get('threshold')}: {gate}"),
            ("anchors", f"{anchors.get('n_dev')} dev, {anchors.get('n_holdout')} holdout"),
        ])  # fmt: skip
    else:
        lines += ["anchors", "  none configured"]
    lines += _table("pairs", [
        ("pairs", f"{report['pairs']} ({_items(report['pairs_by_strategy'])})"),
        ("filtered", _items(report["filtered"])),
        ("median chars", f"chosen {_num(report['median_chars_chosen'])}, rejected "
                         f"{_num(report['median_chars_rejected'])}"),
    ])  # fmt: skip
    steps = report["steps"]
    if steps:
        lines += _table("steps", [
            (s["step"], f"{s['seconds']:.1f} s" + (f" ({s['runs']} runs)" if s.get("runs", 1) > 1 else ""))
            for s in steps
        ])  # fmt: skip
    return "\n".join(lines)
