"""Does learning from the model's own verified samples beat SFT on the golds alone?

    python -m benchmarks.learning_effect [--scale 1] [--device auto] [--quick] [--replot]

Stages (every one evaluated greedily on the same held-out split, McNemar vs its parent):
1. base: the embedded SmolLM2-135M-Instruct;
2. sft: warm start on the golds of the first --sft-tasks train questions (loss on the answer);
3. default recipe, --rounds rounds (default 1) from the SFT checkpoint: sample the current model
   on new train questions (--samples per question over a temperature ladder, no gold shown),
   verify; fine-tune on the verified answers (RFT: `round1_rft`), then DPO on verified-vs-failed
   pairs (hard negatives) with the length-normalised loss (beta on SimPO's scale) plus the
   chosen side's NLL (TRL's rpo_alpha) (`round1`, ...); tried beside it, the same DPO on only
   the pairs whose chosen side is not the longer (`dpo_length_matched`), and the same DPO on
   all the pairs with R-DPO's length term at each of --length-alphas (`dpo_rdpo_<alpha>`);
4. from the SFT checkpoint on round 1's questions: sft_golds (fine-tuning on the golds of the
   same questions, same lr and steps as round 1's RFT: what the golds alone do) and
   grpo_dense (GRPO with partial-credit verifier rewards);
5. the ablation, same SFT checkpoint, same number of pairs and steps: verifier-first pairs
   with `sigmoid_norm` vs thumbs-up pairs (chosen by a simulated length- and
   confidence-biased labeller, `recipes.thumbs_up_score`) with the plain `sigmoid` loss;
   evaluated with full answers (prose after the SQL kept) to measure length.
--scale multiplies the questions per round, samples per question, steps and the SFT set
(scale 1: sized for 2 CPU cores; a GPU: --device cuda --scale 8). Writes
benchmarks/results/learning_effect[_quick].json and .png. Training and evaluation use the
shared-prefix paths (`train.fast`, `train.fastgen`); benchmarks/train_cost.py measures them.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.learning_effect_report import compare_stages, paired_change, plot
from benchmarks.machine import REPO_ROOT, RESULTS, describe_machine

PACK = REPO_ROOT / "examples" / "revenue"


@dataclass(frozen=True)
class Plan:
    sft_tasks: int = 128
    sft_epochs: int = 2
    sft_max_steps: int = -1  # -1: all epochs
    rounds: int = 1  # round 2 on the SFT set's questions undid round 1 (docs/learning-effect.md)
    round_questions: int = 112  # round 1: every train question the SFT set leaves out
    samples: int = 8
    epochs: int = 2  # over a round's verified answers (RFT) and its pairs (DPO), batches of 2
    grpo_steps: int = 6  # of 4 generations for one question each
    held_out: int = 0  # 0: all
    max_tokens: int = 96
    seed_golds: bool = False  # smoke run only: the golds join round 1's samples (see --quick)


def plan_for(scale: int, quick: bool) -> Plan:
    if quick:
        return Plan(sft_tasks=8, sft_epochs=1, sft_max_steps=2, rounds=1, round_questions=4, samples=2,
                    epochs=1, grpo_steps=1, held_out=6, max_tokens=48, seed_golds=True)  # fmt: skip
    base = Plan()
    return replace(base, sft_tasks=min(240, base.sft_tasks * scale),
                   round_questions=base.round_questions * scale, samples=base.samples * min(scale, 2),
                   grpo_steps=base.grpo_steps * scale)  # fmt: skip


def temperatures(samples: int) -> tuple[float, ...]:
    """The ladder: from 0.3 to 1.2 in `samples` steps (one sample at 0.7)."""
    if samples == 1:
        return (0.7,)
    return tuple(round(0.3 + 0.9 * i / (samples - 1), 2) for i in range(samples))


class Run:
    """One benchmark run: the held-out split, the device, the stages recorded so far."""

    def __init__(self, plan: Plan, device: str, work: Path) -> None:
        from rlaif_sql.kinds.registry import kind_of
        from rlaif_sql.models import load_tasks
        from rlaif_sql.train.common import resolve_device

        self.plan, self.device, self.work = plan, resolve_device(device), work
        db = str(PACK / "data" / "warehouse.duckdb")
        self.train = [replace(t, db=db) for t in load_tasks(PACK / "train_tasks.jsonl")]
        held = [replace(t, db=db) for t in load_tasks(PACK / "heldout_tasks.jsonl")]
        self.held_out = (
            held[:: max(1, len(held) // plan.held_out)][: plan.held_out] if plan.held_out else held
        )
        self.gold_chars = {t.task_id: len(kind_of(t).gold_answer(t) or "") for t in self.held_out}
        self.stages: list[dict[str, Any]] = []
        self.on_record: Any = None  # called after each stage: the JSON is written as it goes

    def backend(self, model: str, *, full: bool = False) -> Any:
        from rlaif_sql.train.fastgen import PrefixCachedBackend

        return PrefixCachedBackend(
            model, batch_size=16, device=self.device, stop_after_sql=not full
        )

    def record(
        self, stage: str, model: str, seconds: float, *, full: bool = False, **extra: Any
    ) -> None:
        from rlaif_sql.evaluate import EvalConfig, evaluate

        started = time.perf_counter()
        report = evaluate(self.held_out, self.backend(model, full=full),
                          EvalConfig(n=1, max_tokens=self.plan.max_tokens))  # fmt: skip
        passed = report["passed_task_ids"]
        kinds = {"compositions": lambda t: t.startswith("heldout-") and "outside" not in t,
                 "outside_grammar": lambda t: t.startswith("heldout-outside"),
                 "hand_written": lambda t: t.startswith("rev-")}  # fmt: skip
        self.stages.append({
            "stage": stage, "model": model, "train_seconds": round(seconds, 1), **extra,
            **{k: v for k, v in report.items() if k != "per_check_pass_rate"},
            "passed_by_kind": {k: sum(map(f, passed)) for k, f in kinds.items()},
            "median_chars_over_gold": statistics.median(
                n - self.gold_chars[t] for t, n in report["first_response_chars"].items()),
            "full_responses": full, "eval_seconds": round(time.perf_counter() - started, 1),
        })  # fmt: skip
        print(f"{stage}: accuracy {report['execution_accuracy']:.3f}, median chars "
              f"{report['median_response_chars']}", flush=True)  # fmt: skip
        if self.on_record:
            self.on_record()

    def config(
        self, name: str, model: str, lr: float, batch: int, steps: int, epochs: int = 1
    ) -> Any:
        from rlaif_sql.train.common import TrainConfig

        return TrainConfig(model=model, out=self.work / name, learning_rate=lr, batch_size=batch,
                           max_steps=steps, epochs=epochs, device=self.device, save_steps=10**6)  # fmt: skip

    def questions(self, round_no: int) -> list:
        """Round r's train questions: the ones after the SFT set, wrapping around the split."""
        n, start = (
            self.plan.round_questions,
            self.plan.sft_tasks + (round_no - 1) * self.plan.round_questions,
        )
        return [self.train[(start + i) % len(self.train)] for i in range(min(n, len(self.train)))]


def run_sft(run: Run, lr: float) -> str:
    from rlaif_sql.train.fast import train_sft_fast
    from rlaif_sql.train.sft import gold_answers, sft_dataset

    tasks = run.train[: run.plan.sft_tasks]
    rows = list(sft_dataset(tasks, gold_answers(tasks)))
    started = time.perf_counter()
    config = run.config("sft", "embedded", lr, 4, run.plan.sft_max_steps, run.plan.sft_epochs)
    model = str(train_sft_fast(rows, config))
    run.record("sft", model, time.perf_counter() - started, parent="base")
    return model


@dataclass(frozen=True)
class Recipe:
    """How a round learns from its verified samples: rejection-sampling fine-tuning on the
    verified answers (lr `rft_lr`), then DPO on verified-vs-failed pairs with the
    length-normalised loss (beta on SimPO's scale) plus the chosen side's NLL (TRL's
    rpo_alpha), lr `dpo_lr`; `epochs` passes over each, batches of 2. The ablation's
    thumbs-up arm keeps DPO's plain summed loss with TRL's beta 0.1."""

    rft_lr: float
    dpo_lr: float
    beta: float
    rpo_alpha: float
    epochs: int
    length_alphas: tuple[float, ...] = ()  # R-DPO variants tried beside the default

    def steps(self, rows: int) -> int:
        return max(1, math.ceil(self.epochs * rows / 2))

    def rft(self, run: Run, name: str, model: str, rows: list) -> str:
        from rlaif_sql.train.fast import train_sft_fast

        config = run.config(name, model, self.rft_lr, 2, self.steps(len(rows)))
        return str(train_sft_fast(rows, config))

    def dpo(self, run: Run, name: str, model: str, pairs: list, *, plain: bool = False,
            length_alpha: float = 0.0) -> str:  # fmt: skip
        from rlaif_sql.train.fast import train_dpo_fast

        loss, beta = ("sigmoid", 0.1) if plain else ("sigmoid_norm", self.beta)
        config = run.config(name, model, self.dpo_lr, 2, self.steps(len(pairs)))
        return str(train_dpo_fast(pairs, config, beta=beta, loss_type=loss,
                                  rpo_alpha=self.rpo_alpha, length_alpha=length_alpha))  # fmt: skip


def run_rounds(run: Run, sft: str, recipe: Recipe) -> Any:
    """The default recipe; returns round 1's samples and verdicts for the other recipes."""
    from rlaif_sql.models import Candidate
    from rlaif_sql.sample import SamplingConfig
    from rlaif_sql.train.recipes import rft_rows, sample_round, verified_pairs

    model, first = sft, None
    sampling = SamplingConfig(n=run.plan.samples, temperatures=temperatures(run.plan.samples),
                              max_tokens=run.plan.max_tokens)  # fmt: skip
    for r in range(1, run.plan.rounds + 1):
        started = time.perf_counter()
        # whole answers (prose after the SQL too): the thumbs-up labeller judges all of it
        questions = run.questions(r)
        golds = [Candidate(t.task_id, f"{t.task_id}:gold", f"```sql\n{t.gold_sql[0]}\n```")
                 for t in questions] if run.plan.seed_golds else []  # fmt: skip
        data = sample_round(questions, run.backend(model, full=True), sampling, extra=golds)
        save_samples(data, run.work / f"round{r}_samples.jsonl")
        first = first or data
        rows, pairs = rft_rows(data), verified_pairs(data)
        info = {**data.summary(), "rft_rows": len(rows), "pairs": len(pairs)}
        print(f"round {r}: {info}", flush=True)
        if not rows:
            run.stages.append({"stage": f"round{r}", "skipped": "no verified sample", **info})
            break
        parent = "sft" if r == 1 else f"round{r - 1}"
        model = recipe.rft(run, f"rft{r}", model, rows)
        rft = model
        if r == 1:  # DPO's own share of the round, measured against this
            run.record("round1_rft", model, time.perf_counter() - started, parent=parent,
                       round_data=info)  # fmt: skip
            parent, started = "round1_rft", time.perf_counter()
        if pairs:
            model = recipe.dpo(run, f"dpo{r}", model, pairs)
        run.record(f"round{r}", model, time.perf_counter() - started, round_data=info,
                   parent=parent)  # fmt: skip
        if r == 1:
            length_variants(run, recipe, rft, data)
    return first


def length_variants(run: Run, recipe: Recipe, rft: str, data: Any) -> None:
    """Tried beside the default from `round1_rft`: DPO on only the pairs whose chosen side is
    not the longer (`dpo_length_matched`), so the pairs cannot teach length; and DPO on all
    the pairs with R-DPO's length term (`dpo_rdpo_<alpha>`), which keeps every pair but
    credits a longer chosen side with margin it does not have to learn."""
    from rlaif_sql.train.recipes import verified_pairs

    variants = [("dpo_length_matched", verified_pairs(data, chosen_not_longer=True), 0.0)]
    variants += [(f"dpo_rdpo_{a:g}", verified_pairs(data), a) for a in recipe.length_alphas]
    for name, pairs, alpha in variants:
        if pairs:
            started = time.perf_counter()
            model = recipe.dpo(run, name, rft, pairs, length_alpha=alpha)
            run.record(name, model, time.perf_counter() - started, parent="round1_rft",
                       pairs=len(pairs), length_alpha=alpha)  # fmt: skip


def save_samples(data: Any, path: Path) -> None:
    """A round's samples with their verdicts, to read why a recipe did what it did."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for c in data.candidates:
            v = data.verdicts.get(c.candidate_id)
            out.write(json.dumps({"task_id": c.task_id, "candidate_id": c.candidate_id,
                                  "completion": c.completion, "passed": v and v.passed,
                                  "reason": v and v.reason.value}) + "\n")  # fmt: skip


def run_baselines(run: Run, sft: str, data: Any, recipe: Recipe) -> None:
    """From the SFT checkpoint on round 1's questions: the golds alone (SFT on the golds of
    the same questions, same lr and epochs as round 1's RFT) and GRPO with dense rewards."""
    from rlaif_sql.train.grpo import train_grpo
    from rlaif_sql.train.sft import gold_answers, sft_dataset

    tasks = list(data.tasks.values())
    started = time.perf_counter()
    rows = list(sft_dataset(tasks, gold_answers(tasks)))
    run.record("sft_golds", recipe.rft(run, "sft_golds", sft, rows),
               time.perf_counter() - started, parent="sft", rows=len(rows))  # fmt: skip
    started = time.perf_counter()
    config = replace(run.config("grpo", sft, recipe.dpo_lr, 4, run.plan.grpo_steps), model=sft)
    final, _ = train_grpo(tasks, config, num_generations=4, dense=True,
                          max_completion_length=run.plan.max_tokens)  # fmt: skip
    run.record("grpo_dense", str(final), time.perf_counter() - started, parent="sft")


def run_ablation(run: Run, sft: str, data: Any, recipe: Recipe) -> dict[str, Any]:
    from rlaif_sql.train.recipes import thumbs_up_pairs, verified_pairs

    verifier = verified_pairs(data, max_pairs_per_task=1)
    thumbs = thumbs_up_pairs(data, limit=len(verifier))
    n = min(len(verifier), len(thumbs))
    if n == 0:
        return {"skipped": "no pairs for one of the two arms"}
    run.record("sft_full", sft, 0.0, full=True, parent="sft")
    for name, pairs, plain in (("ablation_verifier", verifier[:n], False),
                               ("ablation_thumbs_up", thumbs[:n], True)):  # fmt: skip
        started = time.perf_counter()
        model = recipe.dpo(run, name, sft, pairs, plain=plain)
        run.record(name, model, time.perf_counter() - started, full=True, parent="sft_full",
                   pairs=n, loss="sigmoid" if plain else "sigmoid_norm")  # fmt: skip
    arms = {s["stage"]: s for s in run.stages if s["stage"].startswith(("ablation", "sft_full"))}
    return {k: {"accuracy": s["execution_accuracy"], "median_chars": s["median_response_chars"]}
            for k, s in arms.items()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: a few tasks and steps; the golds join round 1's samples so "
        "every recipe has data (it checks the wiring, not the learning)",
    )
    parser.add_argument("--scale", type=int, default=1, help="1: 2 CPU cores; 8: one GPU")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--sft-lr", type=float, default=2e-4)
    parser.add_argument("--rft-lr", type=float, default=5e-5, help="also the golds-only control's")
    parser.add_argument("--dpo-lr", type=float, default=2e-5, help="also GRPO's")
    parser.add_argument(
        "--dpo-beta", type=float, default=2.0, help="for the length-normalised loss (SimPO's scale)"
    )
    parser.add_argument(
        "--rpo-alpha",
        type=float,
        default=1.0,
        help="weight of the chosen side's NLL in DPO (0: none)",
    )
    parser.add_argument("--rounds", type=int, default=Plan.rounds, help="rounds of the recipe")
    parser.add_argument(
        "--length-alphas",
        default="0.05,0.2",
        help="R-DPO length weights tried beside the default (comma list; empty: none)",
    )
    parser.add_argument("--skip", default="", help="comma list of: baselines, ablation")
    parser.add_argument(
        "--replot", action="store_true", help="redraw the plot and the targets from the JSON"
    )
    args = parser.parse_args()
    name = "learning_effect_quick" if args.quick else "learning_effect"
    if args.replot:
        replot(RESULTS / f"{name}.json")
        return
    from rlaif_sql.errors import ConfigError

    try:
        if args.rounds < 1:
            raise ConfigError(f"--rounds {args.rounds}: at least 1")
        length_alphas = parse_alphas(args.length_alphas)
        plan = plan_for(args.scale, args.quick)
        plan = plan if args.quick else replace(plan, rounds=args.rounds)
        run = Run(plan, args.device, REPO_ROOT / "runs" / name)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    started = time.perf_counter()

    def checkpoint() -> None:
        compare_stages(run.stages)
        write(run, args, {}, time.perf_counter() - started, name, partial=True)

    run.on_record = checkpoint
    shutil.rmtree(run.work, ignore_errors=True)
    run.record("base", "embedded", 0.0)
    sft = run_sft(run, args.sft_lr)
    recipe = Recipe(args.rft_lr, args.dpo_lr, args.dpo_beta, args.rpo_alpha, run.plan.epochs,
                    length_alphas)  # fmt: skip
    data = run_rounds(run, sft, recipe)
    ablation: dict[str, Any] = {}
    if data is not None and "ablation" not in args.skip:
        ablation = run_ablation(run, sft, data, recipe)
    if data is not None and "baselines" not in args.skip:
        run_baselines(run, sft, data, recipe)
    compare_stages(run.stages)
    write(run, args, ablation, time.perf_counter() - started, name)


def parse_alphas(text: str) -> tuple[float, ...]:
    from rlaif_sql.errors import ConfigError

    try:
        alphas = tuple(float(a) for a in text.split(",") if a.strip())
    except ValueError:
        raise ConfigError(f"--length-alphas {text!r}: a comma list of numbers") from None
    if any(a < 0 or not math.isfinite(a) for a in alphas):
        raise ConfigError(f"--length-alphas {text!r}: each at least 0")
    return alphas


def write(run: Run, args: Any, ablation: dict[str, Any], seconds: float, name: str, *,
          partial: bool = False) -> None:  # fmt: skip
    evaluated = {s["stage"]: s for s in run.stages if "execution_accuracy" in s}
    sft, default = sft_and_default(run.stages)
    result = {
        "benchmark": "learning_effect", "machine": describe_machine(), "device": run.device,
        "model": "SmolLM2-135M-Instruct (embedded)", "quick": args.quick, "scale": args.scale,
        "plan": vars(run.plan), "settings": {k: v for k, v in vars(args).items() if k != "replot"},
        "held_out_tasks": len(run.held_out), "default_recipe": "rounds of RFT on verified samples, then DPO (sigmoid_norm + rpo_alpha) on verified-vs-failed pairs",
        "default_vs_sft": default.get("vs_sft") if default else None,
        "gain_points_over_sft": round(100 * (default["execution_accuracy"] - sft["execution_accuracy"]), 1)
        if default and sft else None,
        "median_chars_sft_vs_default": [sft and sft["median_response_chars"], default and default["median_response_chars"]],
        "ablation": ablation, "stages": run.stages, "wall_seconds": round(seconds, 1),
        "partial": partial,
    }  # fmt: skip
    rft, golds = evaluated.get("round1_rft"), evaluated.get("sft_golds")
    if rft and golds:  # the same questions: the model's own verified answers vs their golds
        result["own_verified_answers_vs_golds"] = {
            "round1_rft": rft["execution_accuracy"], "sft_golds": golds["execution_accuracy"],
            **paired_change(golds["passed_task_ids"], rft["passed_task_ids"])}  # fmt: skip
    result["targets"] = targets(result, sft, default)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    plot(run.stages, RESULTS / f"{name}.png")
    if partial:
        return
    print(
        json.dumps(
            {k: v for k, v in result.items() if k not in ("stages", "machine")},
            indent=2,
            default=str,
        )
    )


def sft_and_default(stages: list[dict[str, Any]]) -> tuple[Any, Any]:
    """The SFT stage and the default recipe's last round."""
    evaluated = {s["stage"]: s for s in stages if "execution_accuracy" in s}
    rounds = [s for k, s in evaluated.items() if k.startswith("round")]
    return evaluated.get("sft"), rounds[-1] if rounds else None


def replot(path: Path) -> None:
    """Redraw the plot and recompute the targets from a run's JSON."""
    result = json.loads(path.read_text())
    result["targets"] = targets(result, *sft_and_default(result["stages"]))
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    plot(result["stages"], path.with_suffix(".png"))


BASELINES = ("sft_golds", "grpo_dense")
TRIED_BESIDE = ("dpo_length_matched", "dpo_rdpo_")
"""Stages beyond the issue's timed scope (base, SFT, the rounds, the ablation): the baselines
and the variants tried beside the default recipe."""


def targets(result: dict[str, Any], sft: Any, default: Any) -> dict[str, Any]:
    """The issue's targets, each with the measured value and whether it was met."""
    out: dict[str, Any] = {}
    if sft and default:
        gain, p = result["gain_points_over_sft"], default["vs_sft"]["mcnemar_p"]
        longer = (default["median_response_chars"] or 0) > (sft["median_response_chars"] or 0)
        out["rl_plus_8_points_p_below_0.05_no_length_growth"] = {
            "gain_points": gain, "mcnemar_p": p, "median_chars_grew": longer,
            "median_chars_sft_vs_default": [sft["median_response_chars"], default["median_response_chars"]],
            "median_chars_both_right": default["vs_sft"].get("median_chars_both_right"),
            "median_chars_over_gold_sft_vs_default": [sft.get("median_chars_over_gold"), default.get("median_chars_over_gold")],
            "met": gain >= 8 and p < 0.05 and not longer}  # fmt: skip
    arms = result["ablation"]
    if {"ablation_verifier", "ablation_thumbs_up", "sft_full"} <= set(arms):
        a, b, ref = arms["ablation_verifier"], arms["ablation_thumbs_up"], arms["sft_full"]
        out["verifier_beats_thumbs_up_which_grows_length"] = {
            "verifier_accuracy": a["accuracy"], "thumbs_up_accuracy": b["accuracy"],
            "thumbs_up_median_chars": b["median_chars"], "sft_median_chars": ref["median_chars"],
            "met": (a["accuracy"] or 0) > (b["accuracy"] or 0) and (b["median_chars"] or 0) > (ref["median_chars"] or 0)}  # fmt: skip
    scoped = sum(s.get("train_seconds", 0) + s.get("eval_seconds", 0) for s in result["stages"]
                 if s["stage"] not in BASELINES and not s["stage"].startswith(TRIED_BESIDE))  # fmt: skip
    out["within_60_minutes"] = {
        "minutes": round(result["wall_seconds"] / 60, 1),
        "minutes_base_sft_rounds_ablation": round(scoped / 60, 1),
        "met": scoped <= 3600,
    }
    return out


if __name__ == "__main__":
    main()
