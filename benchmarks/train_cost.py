"""What one SFT step, one DPO step and one held-out question cost, before vs after.

    python -m benchmarks.train_cost [--threads 1] [--steps 2] [--questions 16] [--device cpu]

Same process, same thread count, same prompts (the chat template of `prompts.messages_for`):
- SFT step of 4 (prompt, gold answer) rows: TRL's SFTTrainer as `train.sft` sets it up (before)
  vs `train.fast.train_sft_fast` (after: the shared schema prefix runs once per batch);
- DPO step of 2 pairs (gold vs another task's gold: real lengths), `sigmoid_norm`: TRL's
  DPOTrainer as `train.dpo` sets it up (reference model run every step) vs `train_dpo_fast`
  (shared prefix; reference log-probabilities computed once before step 1, timed apart);
- held-out question, greedy, 96 new tokens at most, on the fast-SFT checkpoint (a model that
  writes fenced SQL, like the benchmark's evaluated stages): `LocalBackend` batch 16 (before)
  vs `PrefixCachedBackend` batch 16 (after: prefix cache, stop when the SQL block closes);
  the verdicts of the two are compared question by question.
Writes benchmarks/results/train_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from typing import Any

from benchmarks.machine import REPO_ROOT, RESULTS, describe_machine

PACK = REPO_ROOT / "examples" / "revenue"


def step_timer() -> tuple[Any, list[tuple[float, float]]]:
    from transformers import TrainerCallback

    seconds: list[tuple[float, float]] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.started = (time.perf_counter(), time.process_time())

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            wall, cpu = time.perf_counter() - self.started[0], time.process_time() - self.started[1]
            seconds.append((wall, cpu))

    return Timer(), seconds


class FastTimer:
    """The fast loops' step hook reports wall seconds; this adds the process's CPU seconds."""

    def __init__(self) -> None:
        self.seconds: list[tuple[float, float]] = []
        self.cpu = time.process_time()

    def __call__(self, step: int, loss: float, wall: float) -> None:
        now = time.process_time()
        self.seconds.append((wall, now - self.cpu))
        self.cpu = now


def summary(seconds: list[tuple[float, float]]) -> dict[str, Any]:
    """Wall and CPU seconds per step: on a shared machine the wall time depends on the other
    processes; the CPU time of this (one-thread) process much less."""
    return {"per_step_wall_s": [round(w, 2) for w, _ in seconds],
            "per_step_cpu_s": [round(c, 2) for _, c in seconds],
            "median_wall_s": round(statistics.median(w for w, _ in seconds), 2),
            "median_cpu_s": round(statistics.median(c for _, c in seconds), 2)}  # fmt: skip


def sft_cost(tasks: list, steps: int, work: Any, device: str) -> tuple[dict, dict, str]:
    from rlaif_sql.train.common import TrainConfig
    from rlaif_sql.train.fast import train_sft_fast
    from rlaif_sql.train.sft import gold_answers, sft_dataset, sft_trainer

    rows = sft_dataset(tasks, gold_answers(tasks))
    config = TrainConfig(out=work / "sft_trl", learning_rate=2e-4, batch_size=4, max_steps=steps,
                         save_steps=10_000, device=device)  # fmt: skip
    timer, before = step_timer()
    sft_trainer(rows, config, callbacks=[timer]).train()
    after = FastTimer()
    fast = replace(config, out=work / "sft_fast", max_steps=max(steps, 6))
    ckpt = train_sft_fast(list(rows), fast, on_step=after)
    return summary(before), summary(after.seconds[1:]), str(ckpt)


def dpo_cost(tasks: list, steps: int, work: Any, device: str, model: str) -> tuple[dict, dict]:
    from rlaif_sql.prompts import messages_for
    from rlaif_sql.train.common import TrainConfig
    from rlaif_sql.train.dpo import train_dpo
    from rlaif_sql.train.fast import train_dpo_fast

    def fenced(task: Any) -> list[dict[str, str]]:  # conversational, as rlaif-sql export writes
        return [{"role": "assistant", "content": f"```sql\n{task.gold_sql[0]}\n```"}]

    pairs = [{"prompt": [dict(m) for m in messages_for(t)], "chosen": fenced(t),
              "rejected": fenced(tasks[(i + 7) % len(tasks)])} for i, t in enumerate(tasks[: 2 * steps])]  # fmt: skip
    work.mkdir(parents=True, exist_ok=True)
    (work / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    config = TrainConfig(model=model, out=work / "dpo_trl", learning_rate=1e-5, batch_size=2,
                         max_steps=steps, save_steps=10_000, device=device)  # fmt: skip
    timer, before = step_timer()
    train_dpo(work / "pairs.jsonl", config, beta=0.1, loss_type="sigmoid_norm",
              callbacks=[timer])  # fmt: skip
    after = FastTimer()
    started = time.process_time()
    train_dpo_fast(pairs, replace(config, out=work / "dpo_fast"), loss_type="sigmoid_norm",
                   on_step=after)  # fmt: skip
    total = time.process_time() - started
    fast = summary(after.seconds)
    fast["cpu_s_including_reference_and_setup"] = round(total, 2)
    fast["amortised_cpu_s_per_step"] = round(total / len(after.seconds), 2)
    return summary(before), fast


def eval_cost(held_out: list, model: str, device: str) -> dict[str, Any]:
    from rlaif_sql.backends.local import LocalBackend
    from rlaif_sql.evaluate import EvalConfig, evaluate
    from rlaif_sql.train.fastgen import PrefixCachedBackend

    out: dict[str, Any] = {}
    for name, backend in (("before", LocalBackend(model, batch_size=16, device=device)),
                          ("after", PrefixCachedBackend(model, batch_size=16, device=device))):  # fmt: skip
        backend.load()
        started, cpu = time.perf_counter(), time.process_time()
        report = evaluate(held_out, backend, EvalConfig(n=1, max_tokens=96))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        out[name] = {"wall_s": round(seconds, 1), "per_question_wall_s": round(seconds / len(held_out), 2),
                     "cpu_s": round(cpu, 1), "per_question_cpu_s": round(cpu / len(held_out), 2),
                     "execution_accuracy": report["execution_accuracy"],
                     "passed": sorted(report["passed_task_ids"]),
                     "median_response_chars": report["median_response_chars"]}  # fmt: skip
    out["same_passed_questions"] = out["before"]["passed"] == out["after"]["passed"]
    return out


def ratio(before: float, after: float) -> float:
    return round(before / after, 2) if after else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2, help="timed steps of each trainer")
    parser.add_argument("--questions", type=int, default=8, help="held-out questions timed")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    import torch

    from rlaif_sql.models import load_tasks

    torch.set_num_threads(args.threads)
    work = REPO_ROOT / "runs" / "train_cost"
    db = str(PACK / "data" / "warehouse.duckdb")
    train = [replace(t, db=db) for t in load_tasks(PACK / "train_tasks.jsonl")[:32]]
    held_out = [replace(t, db=db) for t in load_tasks(PACK / "heldout_tasks.jsonl")]
    held_out = held_out[:: max(1, len(held_out) // args.questions)][: args.questions]
    started = time.perf_counter()
    result: dict[str, Any] = {"benchmark": "train_cost", "machine": describe_machine(),
                              "settings": vars(args), "torch_threads": torch.get_num_threads()}  # fmt: skip

    def save(key: str, value: Any) -> None:  # after each part: a killed run keeps what it measured
        result[key] = value
        result["load_average_now"] = os.getloadavg()
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "train_cost.json").write_text(json.dumps(result, indent=2, default=str) + "\n")

    before, after, ckpt = sft_cost(train, args.steps, work, args.device)
    save("sft_step_4_examples", {"before_trl": before, "after_shared_prefix": after,
                                 "speedup_cpu": ratio(before["median_cpu_s"], after["median_cpu_s"]),
                                 "speedup_wall": ratio(before["median_wall_s"], after["median_wall_s"])})  # fmt: skip
    before, after = dpo_cost(train, args.steps, work, args.device, ckpt)
    save("dpo_step_2_pairs", {"before_trl": before, "after_shared_prefix": after,
                              "speedup_cpu": ratio(before["median_cpu_s"], after["median_cpu_s"]),
                              "speedup_cpu_with_reference_amortised": ratio(before["median_cpu_s"], after["amortised_cpu_s_per_step"]),
                              "speedup_wall": ratio(before["median_wall_s"], after["median_wall_s"])})  # fmt: skip
    evals = eval_cost(held_out, ckpt, args.device)
    save("held_out_question", {**evals, "speedup_cpu": ratio(evals["before"]["cpu_s"], evals["after"]["cpu_s"]),
                               "speedup_wall": ratio(evals["before"]["wall_s"], evals["after"]["wall_s"])})  # fmt: skip
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2, default=str))


if __name__ == "__main__":
    main()
