"""The whole pipeline, resumable: sample -> verify -> judge the ties -> pairs -> export -> report.

Each step reads what the run store already holds and does only the rest, writing in small
transactions, so a run killed anywhere picks up where it stopped. Candidates that fail a
hard check never reach the judge; the judge sees only ties among verified candidates, a
small sample of verified-vs-failed pairs (to measure conflicts) and the human anchors.
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import click

from rlaif_sql.anchors import load_anchors, measure
from rlaif_sql.backends.base import Backend, backend_from_config
from rlaif_sql.config import PipelineConfig
from rlaif_sql.distributed.judging import judge_backend
from rlaif_sql.errors import ConfigError
from rlaif_sql.export import export_dataset, preference_rows
from rlaif_sql.judge import FAILED, Judge, length_preference
from rlaif_sql.metrics import summarize
from rlaif_sql.models import Candidate, Task, load_candidates, load_tasks
from rlaif_sql.pairs import build_pairs, normalised, similarity, stable_fraction
from rlaif_sql.sample import sample
from rlaif_sql.sandboxes.results import SandboxLimits
from rlaif_sql.store import RunStore
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify_many

SAMPLE_BATCH_TASKS = 4
VERIFY_BATCH = 32


class Pipeline:
    def __init__(
        self, config: PipelineConfig, *, all_tasks: bool = False, progress: bool = True
    ) -> None:
        self.config = config
        self.progress = progress
        tasks = load_tasks(config.tasks)
        self.all_tasks: dict[str, Task] = {t.task_id: t for t in tasks}
        if config.task_limit and not all_tasks:
            tasks = tasks[: config.task_limit]
        self.tasks: dict[str, Task] = {t.task_id: t for t in tasks}
        self.store = RunStore(config.store)
        self._judge: Judge | None = None
        self._sampler: Backend | None = None

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ steps

    def run(self) -> dict[str, Any]:
        self.store.add_tasks({"task_id": t.task_id, "kind": t.kind, "question": getattr(t, "question", "")}
                             for t in self.tasks.values())  # fmt: skip
        self.sample()
        self.verify()
        self.judge()
        self.pairs()
        self.export()
        return self.report()

    def sample(self) -> None:
        started = time.time()
        have = self.store.ids("candidates", "candidate_id")
        brought = 0
        for path in self.config.bring:
            extra = [
                replace(c, meta={**c.meta, "source": path.stem})
                for c in load_candidates(path)
                if c.task_id in self.tasks and c.candidate_id not in have
            ]
            self.store.add_candidates(extra)
            brought += len(extra)
        tasks = list(self.tasks.values())
        made = abstained = 0
        batches = range(0, len(tasks), SAMPLE_BATCH_TASKS)
        for start in _bar(batches, "sample", self.progress):
            batch = tasks[start : start + SAMPLE_BATCH_TASKS]
            backend = self.sampler
            wanted = {
                f"{t.task_id}:{backend.name}:{k}"
                for t in batch
                for k in range(self.config.sampling.n)
            }
            if wanted <= have:
                continue
            report = sample(batch, backend, self.config.sampling, skip=have)
            self.store.add_candidates(
                report.candidates, [(cid, cid.split(":")[0]) for cid in report.abstained]
            )
            made += len(report.candidates)
            abstained += len(report.abstained)
        self.store.log_step(
            "sample", started, {"sampled": made, "brought": brought, "abstained": abstained}
        )

    def verify(self) -> None:
        started = time.time()
        done = self.store.ids("verdicts", "candidate_id", "NOT abstained")
        todo = [
            c
            for c in self.store.candidates()
            if c.candidate_id not in done and c.task_id in self.tasks
        ]
        limits = SandboxLimits(timeout_s=self.config.timeout_s)
        config = VerifyConfig(
            sandbox=limits, workers=self.config.workers, engine=self.config.engine
        )
        with VerifierContext(config) as ctx:
            for start in _bar(range(0, len(todo), VERIFY_BATCH), "verify", self.progress):
                chunk = todo[start : start + VERIFY_BATCH]
                self.store.add_verdicts(verify_many(list(self.tasks.values()), chunk, ctx=ctx))
        self.store.log_step("verify", started, {"verified": len(todo)})

    def judge(self) -> None:
        started = time.time()
        candidates = {c.candidate_id: c for c in self.store.candidates()}
        verdicts = self.store.verdicts()
        judged = {(j.a_id, j.b_id) for j in self.store.judgments()}
        ties, conflicts = self._judge_items(candidates, verdicts)
        counts: Counter[str] = Counter()
        for purpose, items in (("tie", ties), ("conflict", conflicts)):
            todo = [i for i in items if (i[1].candidate_id, i[2].candidate_id) not in judged]
            if todo:
                self.store.add_judgments(
                    self.judge_model.compare_many(todo, progress=self.progress), purpose
                )
            counts[purpose] = len(todo)
        if self.config.anchors and self.store.info("anchors") is None:
            report, judgments = measure(
                self.judge_model,
                load_anchors(self.config.anchors),
                self.tasks,
                self.config.kappa_threshold,
            )
            self.store.add_judgments(judgments, "anchor")
            self.store.set_info("anchors", report.to_dict())
            counts["anchor"] = len(judgments)
        self.store.log_step("judge", started, dict(counts))

    def _judge_items(
        self, candidates: dict[str, Candidate], verdicts: dict[str, Any]
    ) -> tuple[list[tuple[Task, Candidate, Candidate]], list[tuple[Task, Candidate, Candidate]]]:
        """Ties: distinct verified answers of a task. Conflict probes: a sample of verified vs
        nearest failed. Deterministic, so a resumed run asks for the same comparisons."""
        ties, probes = [], []
        for task_id, task in self.tasks.items():
            group = sorted(
                (c for c in candidates.values() if c.task_id == task_id),
                key=lambda c: c.candidate_id,
            )
            passed = [c for c in group if (v := verdicts.get(c.candidate_id)) and v.passed]
            failed = [
                c
                for c in group
                if (v := verdicts.get(c.candidate_id)) and not v.passed and not v.abstained
            ]
            texts = {
                c.candidate_id: normalised(c, verdicts.get(c.candidate_id)) for c in passed + failed
            }
            distinct = list({texts[c.candidate_id]: c for c in passed}.values())
            pairs = sorted(itertools.combinations(distinct, 2),
                           key=lambda p: stable_fraction(p[0].candidate_id + p[1].candidate_id))  # fmt: skip
            ties += [(task, a, b) for a, b in pairs[: self.config.max_ties_per_task]]
            if passed and failed:
                a = passed[0]
                b = max(
                    failed, key=lambda f: similarity(texts[a.candidate_id], texts[f.candidate_id])
                )
                probes.append((stable_fraction("probe:" + task_id), (task, a, b)))
        probes.sort(key=lambda p: p[0])
        return ties, [item for _, item in probes[: self.config.conflict_sample]]

    def pairs(self) -> None:
        started = time.time()
        result = build_pairs(
            self.tasks, self.store.candidates(), self.store.verdicts(), self.store.judgments("tie"),
            self.store.judgments("conflict"), self.config.pairs,
        )  # fmt: skip
        self.store.replace_pairs(result.pairs, result.filtered)
        self.store.log_step("pairs", started, dict(result.counts))

    def export(self) -> None:
        started = time.time()
        anchors = self.store.info("anchors")
        if anchors is not None and not anchors["passes"]:
            kappa = anchors["gate_kappa"]
            message = (f"judge-human kappa {kappa if kappa is None else round(kappa, 3)} is below "
                       f"{self.config.kappa_threshold} for rubric {anchors['rubric']}")  # fmt: skip
            if not self.config.force_export:
                raise ConfigError(f"export refused: {message}; fix the judge or rubric, or force it "
                                  "([anchors] force = true / --force)")  # fmt: skip
            click.echo(f"WARNING: exporting anyway (forced): {message}", err=True)
        candidates = {c.candidate_id: c for c in self.store.candidates()}
        rows = preference_rows(self.store.pairs(), self.tasks, candidates, source=self.config.source,
                               rubric=self.config.judge.rubric)  # fmt: skip
        export_dataset(rows, self.config.export_dir, self.config.export_formats)
        self.store.log_step(
            "export",
            started,
            {"rows": len(rows), "forced": bool(anchors and not anchors["passes"])},
        )

    def report(self) -> dict[str, Any]:
        report = build_report(self.store, self.tasks, self.sampler_name)
        (self.config.export_dir / "report.json").write_text(
            json.dumps(report, indent=2, default=str) + "\n"
        )
        return report

    # ------------------------------------------------------------------ lazily built parts

    @property
    def sampler(self) -> Backend:
        if self._sampler is None:
            self._sampler = backend_from_config(self.config.sampling_backend)
        return self._sampler

    @property
    def sampler_name(self) -> str:
        model = self.config.sampling_backend.get("model", "embedded")
        return "smollm2-135m-instruct" if model == "embedded" else str(model).split("/")[-1]

    @property
    def judge_model(self) -> Judge:
        if self._judge is None:
            backends = []
            for spec in self.config.judge_backends:
                same = spec == self.config.sampling_backend
                backends.append(self.sampler if same else judge_backend(spec, self.config.engine))
            self._judge = Judge(backends, self.config.judge)
        return self._judge


def build_report(store: RunStore, tasks: dict[str, Task], policy_model: str) -> dict[str, Any]:
    candidates = [c for c in store.candidates() if c.task_id in tasks]
    verdicts = store.verdicts()
    mine = [verdicts[c.candidate_id] for c in candidates if c.candidate_id in verdicts]
    sampled = [verdicts[c.candidate_id] for c in candidates
               if c.meta.get("source") == policy_model and c.candidate_id in verdicts]  # fmt: skip
    summary = summarize(mine)
    ties = store.judgments("tie")
    all_judgments = store.judgments()
    calls = [call for j in all_judgments for call in j.calls]
    reached = {cid for j in ties for cid in (j.a_id, j.b_id)}
    outcomes = Counter(j.outcome.value for j in ties)
    conflicts = [j for j in store.judgments("conflict") if j.decided]
    pairs = store.pairs()
    by_id = {c.candidate_id: c for c in candidates}
    chosen = [len(by_id[p["chosen_id"]].completion) for p in pairs if p["chosen_id"] in by_id]
    rejected = [len(by_id[p["rejected_id"]].completion) for p in pairs if p["rejected_id"] in by_id]
    first_letter = [c for c in calls if c.get("winner") in ("a", "b")]
    shown_first_won = sum((c["winner"] == "a") == (c["order"] == "ab") for c in first_letter)
    anchors = store.info("anchors")
    return {
        "tasks": len(tasks),
        "candidates": len(candidates),
        "by_source": dict(Counter(str(c.meta.get("source", "")) for c in candidates)),
        "sample_abstains": len(store.ids("sample_abstains", "candidate_id")),
        "funnel": summary.funnel,
        "verifier_pass_rate": summary.pass_rate,
        "per_check_pass_rate": summary.per_check_pass_rate,
        "row_count_accuracy": summary.row_count_accuracy,
        "execution_accuracy_policy_model": (
            sum(v.passed for v in sampled if not v.abstained)
            / max(1, sum(not v.abstained for v in sampled))
            if sampled
            else None
        ),
        "reasons": summary.reasons,
        "verify_abstains": summary.abstained,
        "judge": {
            "candidates_reaching_judge": len(reached),
            "share_of_candidates_reaching_judge": len(reached) / len(candidates)
            if candidates
            else None,
            "judge_calls": len(calls),
            "judge_calls_per_candidate": len(calls) / len(candidates) if candidates else None,
            "tie_outcomes": dict(outcomes),
            "position_bias_rate": outcomes.get("position_bias", 0) / len(ties) if ties else None,
            "failed_calls": sum(1 for j in ties if j.outcome in FAILED),
            "first_shown_wins_share": shown_first_won / len(first_letter) if first_letter else None,
            "length_preference": length_preference(ties, by_id) if by_id else None,
            "conflict_probes": len(conflicts),
            "conflict_rate": (sum(j.winner == "b" for j in conflicts) / len(conflicts))
            if conflicts
            else None,
            "rubric": ties[0].rubric if ties else None,
        },
        "anchors": anchors,
        "pairs": len(pairs),
        "pairs_by_strategy": dict(Counter(p["strategy"] for p in pairs)),
        "filtered": store.filtered_counts(),
        "median_chars_chosen": statistics.median(chosen) if chosen else None,
        "median_chars_rejected": statistics.median(rejected) if rejected else None,
        "steps": store.steps(),
    }


def format_report(report: dict[str, Any]) -> str:
    pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    judge = report["judge"]
    anchors = report.get("anchors") or {}
    lines = [
        f"tasks {report['tasks']}, candidates {report['candidates']} {report['by_source']}"
        f" (sampling abstains {report['sample_abstains']})",
        "funnel: " + " -> ".join(f"{k} {v}" for k, v in report["funnel"].items()),
        f"verifier pass rate {pct(report['verifier_pass_rate'])}, row-count accuracy "
        f"{pct(report['row_count_accuracy'])}, execution accuracy of the policy model "
        f"{pct(report['execution_accuracy_policy_model'])}",
        f"judge: {judge['candidates_reaching_judge']} of {report['candidates']} candidates reached it "
        f"({pct(judge['share_of_candidates_reaching_judge'])}), {judge['judge_calls']} calls "
        f"({judge['judge_calls_per_candidate'] or 0:.2f} per candidate); ties {judge['tie_outcomes']}",
        f"  position-bias rate {pct(judge['position_bias_rate'])}, first-shown wins "
        f"{pct(judge['first_shown_wins_share'])}, longer answer wins {pct(judge['length_preference'])}, "
        f"verifier-judge conflict {pct(judge['conflict_rate'])} of {judge['conflict_probes']} probes",
        f"anchors: kappa {anchors.get('gate_kappa')} (threshold {anchors.get('threshold')}, "
        f"{'passes' if anchors.get('passes') else 'FAILS'})"
        if anchors
        else "anchors: none configured",
        f"pairs {report['pairs']} {report['pairs_by_strategy']}; filtered {report['filtered']}",
        f"median chars chosen {report['median_chars_chosen']} vs rejected {report['median_chars_rejected']}",
        "steps: " + ", ".join(f"{s['step']} {s['seconds']}s" for s in report["steps"][-6:]),
    ]
    return "\n".join(lines)


def _bar(items: Sequence[int] | range, desc: str, progress: bool) -> Any:
    from tqdm import tqdm

    return tqdm(items, desc=desc, disable=not progress, unit="batch")
