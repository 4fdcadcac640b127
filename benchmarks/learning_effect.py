"""Does training with the pipeline make the embedded model write more correct SQL?

    python -m benchmarks.learning_effect [--quick] [--rounds 1]

Method (why: a 135M model starts at ~0% on this warehouse, so there is nothing for DPO or
GRPO to contrast until it can sometimes answer; a warm start on verified answers gives it
that, and the verifier-first round then sharpens it against its own failures):
1. evaluate the embedded SmolLM2-135M-Instruct on the held-out split (greedy, one sample);
2. SFT warm start on verified answers to the first --train-tasks questions of the train split
   (generated questions whose golds pass `rlaif-sql validate`), loss on the answer only;
3. each round: sample 2 completions per question from the current model on the next
   --round-tasks train questions (ones the SFT never saw; no gold is shown, only verdicts),
   verify them, pair verified vs failed (hard negatives), DPO with the length-normalised loss;
4. evaluate after each stage on the same held-out split.
Held-out = two question templates training never sees + the odd-numbered hand-written tasks.
Writes benchmarks/results/learning_effect.json and learning_effect.png.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.machine import REPO_ROOT, RESULTS, describe_machine
from rlaif_sql.backends.local import LocalBackend
from rlaif_sql.evaluate import EvalConfig, evaluate
from rlaif_sql.export import export_dataset, preference_rows
from rlaif_sql.models import load_tasks
from rlaif_sql.pairs import PairsConfig, build_pairs
from rlaif_sql.sample import SamplingConfig, sample
from rlaif_sql.train.common import TrainConfig
from rlaif_sql.train.dpo import train_dpo
from rlaif_sql.train.sft import gold_answers, sft_dataset, train_sft
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify_many

PACK = REPO_ROOT / "examples" / "revenue"


def held_out_eval(model: str, tasks: list, max_tokens: int) -> dict[str, Any]:
    started = time.perf_counter()
    report = evaluate(
        tasks, LocalBackend(model, batch_size=16), EvalConfig(n=1, max_tokens=max_tokens)
    )
    passed = report["passed_task_ids"]
    return {
        **report,
        "passed_held_out_templates": sum(t.startswith("heldout-") for t in passed),
        "passed_hand_written": sum(not t.startswith("heldout-") for t in passed),
        "seconds": round(time.perf_counter() - started, 1),
    }


def paired_change(before: list[str], after: list[str]) -> dict[str, Any]:
    """Held-out tasks gained and lost from one stage to the next, with McNemar's exact two-sided
    p-value: on 61 tasks a few flips either way are noise, and this says how many is too many."""
    gained, lost = len(set(after) - set(before)), len(set(before) - set(after))
    n = gained + lost
    tail = sum(math.comb(n, i) for i in range(min(gained, lost) + 1)) / 2**n if n else 0.5
    return {"gained": gained, "lost": lost, "mcnemar_p": round(min(1.0, 2 * tail), 6)}


def compare_stages(stages: list[dict[str, Any]]) -> None:
    evaluated = [s for s in stages if "passed_task_ids" in s]
    for before, after in itertools.pairwise(evaluated):
        after["vs_previous"] = paired_change(before["passed_task_ids"], after["passed_task_ids"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few tasks and steps: a smoke run")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--train-tasks", type=int, default=128, help="questions for the SFT")
    parser.add_argument("--round-tasks", type=int, default=32, help="new questions per round")
    parser.add_argument("--sft-epochs", type=float, default=1.0)
    parser.add_argument("--sft-lr", type=float, default=2e-4)
    parser.add_argument("--dpo-lr", type=float, default=1e-5)
    parser.add_argument("--samples", type=int, default=2, help="per train task, each round")
    parser.add_argument("--dpo-steps", type=int, default=4, help="of 2 pairs each")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--replot", action="store_true", help="redraw the plot from the JSON")
    args = parser.parse_args()
    if args.replot:
        saved = json.loads((RESULTS / "learning_effect.json").read_text())
        plot(saved["stages"], RESULTS / "learning_effect.png")
        return
    started = time.perf_counter()
    work = REPO_ROOT / "runs" / "learning_effect"
    shutil.rmtree(work, ignore_errors=True)
    all_train = load_tasks(PACK / "train_tasks.jsonl")
    held_out = load_tasks(PACK / "heldout_tasks.jsonl")
    if args.quick:
        args.train_tasks, args.round_tasks, held_out = 8, 4, held_out[:6]
    train_tasks = all_train[: args.train_tasks]
    stages: list[dict[str, Any]] = []

    def record(stage: str, model: str, seconds: float) -> None:
        result = held_out_eval(model, held_out, args.max_tokens)
        stages.append({"stage": stage, "train_seconds": round(seconds, 1), **result})
        print(f"{stage}: execution accuracy {result['execution_accuracy']:.3f}, median chars "
              f"{result['median_response_chars']}", flush=True)  # fmt: skip

    record("base", "embedded", 0.0)
    t0 = time.perf_counter()
    sft_config = TrainConfig(out=work / "sft", learning_rate=args.sft_lr, epochs=args.sft_epochs,
                             batch_size=4, save_steps=10_000, max_steps=4 if args.quick else -1)  # fmt: skip
    model = str(train_sft(sft_dataset(train_tasks, gold_answers(train_tasks)), sft_config))
    record("sft", model, time.perf_counter() - t0)

    for round_no in range(1, args.rounds + 1):
        t0 = time.perf_counter()
        first = args.train_tasks + (round_no - 1) * args.round_tasks
        round_tasks = all_train[first : first + args.round_tasks]
        backend = LocalBackend(model, batch_size=16)
        sampled = sample(round_tasks, backend, SamplingConfig(n=args.samples, temperatures=(0.5, 0.9),
                                                              max_tokens=args.max_tokens), progress=True)  # fmt: skip
        with VerifierContext(VerifyConfig(workers=2)) as ctx:
            verdicts = {
                v.candidate_id: v for v in verify_many(round_tasks, sampled.candidates, ctx=ctx)
            }
        tasks = {t.task_id: t for t in round_tasks}
        pairs = build_pairs(tasks, sampled.candidates, verdicts, [], [],
                            PairsConfig(strategies=("verified_vs_failed",), max_pairs_per_task=2,
                                        max_length_ratio=4.0)).pairs  # fmt: skip
        cands = {c.candidate_id: c for c in sampled.candidates}
        stage = {"round": round_no, "samples": len(cands), "verified": sum(v.passed for v in verdicts.values()),
                 "pairs": len(pairs)}  # fmt: skip
        print(f"round {round_no}: {stage}", flush=True)
        if not pairs:
            stages.append(
                {"stage": f"round{round_no}", "skipped": "no verified-vs-failed pairs", **stage}
            )
            break
        export_dataset(preference_rows(pairs, tasks, cands), work / f"pairs{round_no}", ("disk",))
        dpo_config = replace(sft_config, model=model, out=work / f"dpo{round_no}", learning_rate=args.dpo_lr,
                             batch_size=2, epochs=1.0, max_steps=4 if args.quick else args.dpo_steps)  # fmt: skip
        model = str(
            train_dpo(work / f"pairs{round_no}", dpo_config, beta=0.1, loss_type="sigmoid_norm")
        )
        record(f"round{round_no}_dpo", model, time.perf_counter() - t0)
        stages[-1].update({f"train_{k}": v for k, v in stage.items()})

    compare_stages(stages)
    base, last = stages[0], [s for s in stages if "execution_accuracy" in s][-1]
    result = {
        "benchmark": "learning_effect",
        "machine": describe_machine(),
        "model": "SmolLM2-135M-Instruct (embedded, CPU)",
        "method": "SFT warm start on verified answers (generated train questions, loss on the "
        "answer only), then verifier-first rounds on new train questions: sample -> verify -> "
        "verified-vs-failed pairs -> DPO (sigmoid_norm)",
        "settings": {k: v for k, v in vars(args).items() if k != "replot"},
        "train_tasks": len(train_tasks),
        "held_out_tasks": len(held_out),
        "quick": args.quick,
        "stages": [{k: v for k, v in s.items() if k != "per_check_pass_rate"} for s in stages],
        "execution_accuracy_before": base["execution_accuracy"],
        "execution_accuracy_after": last["execution_accuracy"],
        "gain_points": round(
            100 * ((last["execution_accuracy"] or 0) - (base["execution_accuracy"] or 0)), 1
        ),
        "median_chars_before": base["median_response_chars"],
        "median_chars_after": last["median_response_chars"],
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "learning_effect_quick" if args.quick else "learning_effect"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    plot(stages, RESULTS / f"{name}.png")
    print(json.dumps({k: v for k, v in result.items() if k not in ("stages", "machine")}, indent=2))


def plot(stages: list[dict[str, Any]], path: Path) -> None:
    """Held-out answers that ran under the policy (reached comparison) and that matched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in stages if "execution_accuracy" in s]
    names = [s["stage"] for s in shown]
    ran = [100 * (s["reasons"].get("ok", 0) + s["reasons"].get("wrong_result", 0)) / max(1, sum(s["reasons"].values()))
           for s in shown]  # fmt: skip
    matched = [100 * (s["execution_accuracy"] or 0) for s in shown]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    x = range(len(names))
    left.bar([i - 0.2 for i in x], ran, width=0.4, color="#8da0cb", label="ran under the policy")
    left.bar([i + 0.2 for i in x], matched, width=0.4, color="#4c72b0", label="matched the gold")
    left.set_xticks(list(x), names)
    left.set_ylim(0, 100)
    left.set_ylabel("held-out answers (%)")
    left.legend(fontsize=8)
    right.bar(names, [s["median_response_chars"] or 0 for s in shown], color="#dd8452")
    right.set_ylabel("median response length (chars)")
    fig.suptitle("SmolLM2-135M on the revenue held-out split")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
