"""The whole pipeline, resumable: sample -> verify -> judge the ties -> pairs -> export -> report.

Each step reads what the run store already holds and does only the rest, writing in small
transactions, so a run killed anywhere picks up where it stopped. Candidates that fail a
hard check never reach the judge; the judge sees only ties among verified candidates, a
small sample of verified-vs-failed pairs (to measure conflicts) and the human anchors.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from rlaif_sql.anchors import load_anchors, measure
from rlaif_sql.backends.base import Backend, backend_from_config
from rlaif_sql.backends.local import EMBEDDED, model_label
from rlaif_sql.config import PipelineConfig
from rlaif_sql.distributed.judging import judge_backend
from rlaif_sql.errors import ConfigError, NothingVerifiedError
from rlaif_sql.export import export_dataset, preference_rows
from rlaif_sql.judge import Judge
from rlaif_sql.kinds.registry import kind_of
from rlaif_sql.models import Candidate, Reason, Task, load_candidates, load_tasks
from rlaif_sql.pairs import build_pairs, normalised, similarity, stable_fraction
from rlaif_sql.progress import ProgressFactory, factory
from rlaif_sql.rubrics import load_rubric
from rlaif_sql.run_report import build_report, format_report
from rlaif_sql.sample import SampleId, sample
from rlaif_sql.store import RunStore
from rlaif_sql.verifiers.context import VerifierContext
from rlaif_sql.verify import verify_many

__all__ = ["Pipeline", "build_report", "format_report"]
log = logging.getLogger(__name__)
SAMPLE_BATCH_TASKS = 4
VERIFY_BATCH = 32
JUDGE_BATCH = 8
"""Comparisons judged (and stored) together: what Ctrl-C or a kill can lose at most."""
STEPS = ("sample", "verify", "judge", "pairs", "export")


class Pipeline:
    """The steps on one run store. `progress`: True (bars), False, or a ProgressFactory;
    `notify` receives one-line messages for the user (resuming, forced export)."""

    def __init__(
        self, config: PipelineConfig, *, all_tasks: bool = False,
        progress: bool | ProgressFactory = True, notify: Callable[[str], None] | None = None,
        create: bool = True,
    ) -> None:  # fmt: skip
        self.config = config
        self.progress = factory(progress)
        self.notify = notify or log.warning
        tasks = load_tasks(config.tasks)
        if not tasks:
            raise NothingVerifiedError(
                f"{config.tasks}: the tasks file holds no tasks; add one JSON object per line "
                "(task_id, question, db, gold_sql)"
            )
        self.all_tasks: dict[str, Task] = {t.task_id: t for t in tasks}
        if config.task_limit and not all_tasks:
            tasks = tasks[: config.task_limit]
        self.tasks: dict[str, Task] = {t.task_id: t for t in tasks}
        existed = config.store.is_file()
        if not existed and not create:
            raise ConfigError(
                f"no run yet at {config.store}: start one with `rlaif-sql run "
                f"{config.path or 'CONFIG'}` (or `rlaif-sql sample ...`)"
            )
        self.store = RunStore(config.store)
        self._judge: Judge | None = None
        self._sampler: Backend | None = None
        if existed and create:
            self._say_resuming()

    def close(self) -> None:
        self.store.close()

    def _say_resuming(self) -> None:
        def count(table: str) -> int:
            row = self.store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            return int(row[0]) if row else 0

        if count("candidates") or count("steps"):
            self.notify(
                f"resuming run at {self.config.store} ({count('candidates')} candidates, "
                f"{count('verdicts')} verdicts, {count('judgments')} judgments done)"
            )

    # ------------------------------------------------------------------ steps

    def run(self) -> dict[str, Any]:
        for step in STEPS:
            getattr(self, step)()
        return self.report()

    @contextmanager
    def _timed(self, step: str) -> Iterator[dict[str, Any]]:
        """Log the step's time and counts, also when it is interrupted (the report adds a
        resumed step's runs up)."""
        started, counts = time.time(), dict[str, Any]()
        try:
            yield counts
        except BaseException:
            self.store.log_step(step, started, {**counts, "interrupted": True})
            raise
        self.store.log_step(step, started, counts)

    def _add_tasks(self) -> None:
        self.store.add_tasks({"task_id": t.task_id, "kind": t.kind, "question": getattr(t, "question", "")}
                             for t in self.tasks.values())  # fmt: skip

    def sample(self) -> None:
        self._add_tasks()
        with self._timed("sample") as counts:
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
            counts.update(brought=brought, sampled=0, abstained=0)
            tasks, n = list(self.tasks.values()), self.config.sampling.n
            name = self.sampler.name
            todo = sum(SampleId(t.task_id, name, k).candidate_id not in have
                       for t in tasks for k in range(n))  # fmt: skip
            if not todo:
                return
            bar = self.progress(f"sample ({name})", todo, "completion")
            try:
                for start in range(0, len(tasks), SAMPLE_BATCH_TASKS):
                    batch = tasks[start : start + SAMPLE_BATCH_TASKS]
                    report = sample(
                        batch, self.sampler, self.config.sampling, skip=have, progress=bar
                    )
                    self.store.add_candidates(
                        report.candidates, [(a.candidate_id, a.task_id) for a in report.abstained]
                    )
                    counts["sampled"] += len(report.candidates)
                    counts["abstained"] += len(report.abstained)
            finally:
                bar.close()

    def verify(self) -> None:
        self._add_tasks()
        with self._timed("verify") as counts:
            done = self.store.ids("verdicts", "candidate_id", "NOT abstained")
            mine = [c for c in self.store.candidates() if c.task_id in self.tasks]
            if not mine:
                raise NothingVerifiedError(
                    f"no candidates to verify in {self.config.store}: sample first "
                    "(`rlaif-sql sample CONFIG`), or check [sampling.backend] and bring"
                )
            todo = [c for c in mine if c.candidate_id not in done]
            bar = self.progress("verify", len(todo), "candidate")
            try:
                with VerifierContext(self.config.verify) as ctx:
                    for start in range(0, len(todo), VERIFY_BATCH):
                        chunk = todo[start : start + VERIFY_BATCH]
                        self.store.add_verdicts(
                            verify_many(list(self.tasks.values()), chunk, ctx=ctx, progress=bar)
                        )
            finally:
                bar.close()
            counts["verified"] = len(todo)
        self._check_something_verified(mine)

    def _check_something_verified(self, mine: list[Candidate]) -> None:
        verdicts = self.store.verdicts()
        got = [verdicts[c.candidate_id] for c in mine if c.candidate_id in verdicts]
        if got and all(v.abstained for v in got):
            reasons = Counter(v.reason.value for v in got)
            example = next((v for v in got if v.reason is Reason.TASK_ERROR), got[0])
            raise NothingVerifiedError(
                f"no candidate could be verified: {dict(reasons)} (e.g. {example.task_id}: "
                f"{example.detail[:160]}); fix the tasks (rlaif-sql validate --tasks "
                f"{self.config.tasks}) and rerun"
            )

    def judge(self) -> None:
        self._add_tasks()
        with self._timed("judge") as counts:
            candidates = {c.candidate_id: c for c in self.store.candidates()}
            judged = {(j.a_id, j.b_id) for j in self.store.judgments()}
            verdicts = self.store.verdicts()
            if candidates and not verdicts:
                self.notify(f"no verdicts yet in {self.config.store}: only verified candidates "
                            "are judged; run `rlaif-sql verify CONFIG` first")  # fmt: skip
            ties, conflicts = self._judge_items(candidates, verdicts)
            labels = {"tie": "judge ties", "conflict": "judge conflict probes"}
            for purpose, items in (("tie", ties), ("conflict", conflicts)):
                todo = [i for i in items if (i[1].candidate_id, i[2].candidate_id) not in judged]
                counts[purpose] = 0
                if not todo:
                    continue
                bar = self.progress(labels[purpose], 0, "call")
                try:
                    for start in range(0, len(todo), JUDGE_BATCH):
                        chunk = todo[start : start + JUDGE_BATCH]
                        self.store.add_judgments(
                            self.judge_model.compare_many(chunk, progress=bar), purpose
                        )
                        counts[purpose] += len(chunk)
                finally:
                    bar.close()
            if self.config.anchors and self.store.info("anchors") is None:
                bar = self.progress("anchors (judge vs human labels)", 0, "call")
                try:
                    report, judgments = measure(
                        self.judge_model, load_anchors(self.config.anchors), self.tasks,
                        self.config.kappa_threshold, progress=bar,
                    )  # fmt: skip
                finally:
                    bar.close()
                self.store.add_judgments(judgments, "anchor")
                self.store.set_info("anchors", report.to_dict())
                counts["anchor"] = len(judgments)

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
                c.candidate_id: normalised(task, c, verdicts.get(c.candidate_id))
                for c in passed + failed
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
        with self._timed("pairs") as counts:
            result = build_pairs(
                self.tasks, self.store.candidates(), self.store.verdicts(),
                self.store.judgments("tie"), self.store.judgments("conflict"), self.config.pairs,
            )  # fmt: skip
            self.store.replace_pairs(result.pairs, result.filtered)
            counts.update(result.counts)

    def export(self) -> None:
        with self._timed("export") as counts:
            anchors = self.store.info("anchors")
            if anchors is not None and not anchors["passes"]:
                kappa = anchors["gate_kappa"]
                message = (f"judge-human kappa {kappa if kappa is None else round(kappa, 3)} is "
                           f"below {self.config.kappa_threshold} for rubric {anchors['rubric']}")  # fmt: skip
                if not self.config.force_export:
                    raise ConfigError(f"export refused: {message}; fix the judge or rubric, or "
                                      "force it ([anchors] force = true / --force)")  # fmt: skip
                self.notify(f"WARNING: exporting anyway (forced): {message}")
            candidates = {c.candidate_id: c for c in self.store.candidates()}
            rows = preference_rows(self.store.pairs(), self.tasks, candidates,
                                   source=self.config.source, rubric=self.judge_rubric,
                                   verdicts=self.store.verdicts())  # fmt: skip
            export_dataset(rows, self.config.export_dir, self.config.export_formats)
            counts.update(rows=len(rows), forced=bool(anchors and not anchors["passes"]))

    def report(self) -> dict[str, Any]:
        report = build_report(self.store, self.tasks, self.sampler_name)
        self.config.export_dir.mkdir(parents=True, exist_ok=True)
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
        """The policy model's name as its candidates record it, without building it."""
        spec = self.config.sampling_backend
        if spec["kind"] == "local":
            return model_label(spec.get("model", EMBEDDED))
        return str(spec.get("model", spec["kind"]))

    @property
    def judge_rubric(self) -> str:
        """The judge's rubric as name@version (the config may name it by its file); without
        one, the task kinds' default rubrics (comma-separated when the kinds differ)."""
        named = self.config.judge.rubric
        refs = {named} if named else {kind_of(t).default_rubric for t in self.tasks.values()}
        return ", ".join(sorted({load_rubric(ref).ref for ref in refs}))

    @property
    def judge_model(self) -> Judge:
        if self._judge is None:
            backends = []
            for spec in self.config.judge_backends:
                same = spec == self.config.sampling_backend
                backends.append(self.sampler if same else judge_backend(spec, self.config.engine))
            self._judge = Judge(backends, self.config.judge)
        return self._judge
