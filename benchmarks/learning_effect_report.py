"""Statistics and the plot of the learning-effect benchmark (see learning_effect.py)."""

from __future__ import annotations

import itertools
import math
import statistics
from pathlib import Path
from typing import Any


def paired_change(before: list[str], after: list[str]) -> dict[str, Any]:
    """Held-out tasks gained and lost from one stage to the next, with McNemar's exact two-sided
    p-value: on 157 tasks a few flips either way are noise, and this says how many is too many."""
    gained, lost = len(set(after) - set(before)), len(set(before) - set(after))
    n = gained + lost
    tail = sum(math.comb(n, i) for i in range(min(gained, lost) + 1)) / 2**n if n else 0.5
    return {"gained": gained, "lost": lost, "mcnemar_p": round(min(1.0, 2 * tail), 6)}


def compare_stages(stages: list[dict[str, Any]]) -> None:
    """Each evaluated stage against the stage it was trained from (`parent`, else the one
    before it), and against the SFT checkpoint."""
    evaluated = [s for s in stages if "passed_task_ids" in s]
    by_name = {s["stage"]: s for s in evaluated}
    for before, after in itertools.pairwise(evaluated):
        parent = by_name.get(after.get("parent", ""), before)
        after["vs_parent"] = {"parent": parent["stage"],
                              **paired_change(parent["passed_task_ids"], after["passed_task_ids"])}  # fmt: skip
        if "sft" in by_name and after["stage"] not in ("sft", "base"):
            sft = by_name["sft"]
            after["vs_sft"] = {**paired_change(sft["passed_task_ids"], after["passed_task_ids"]),
                               "median_chars_both_right": both_right_chars(sft, after)}  # fmt: skip


def both_right_chars(a: dict[str, Any], b: dict[str, Any]) -> list[float | None] | None:
    """Median response length of two stages on the questions both answered right: the same
    questions, so a difference is how each writes a right answer, not which ones it gets."""
    both = set(a["passed_task_ids"]) & set(b["passed_task_ids"])
    if not both or "first_response_chars" not in a or "first_response_chars" not in b:
        return None
    return [statistics.median(s["first_response_chars"][t] for t in both) for s in (a, b)]


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
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    x = range(len(names))
    left.bar([i - 0.2 for i in x], ran, width=0.4, color="#8da0cb", label="ran under the policy")
    left.bar([i + 0.2 for i in x], matched, width=0.4, color="#4c72b0", label="matched the gold")
    left.set_xticks(list(x), names)
    left.set_ylim(0, 100)
    left.set_ylabel("held-out answers (%)")
    left.legend(fontsize=8)
    right.bar(names, [s["median_response_chars"] or 0 for s in shown], color="#dd8452")
    right.set_ylabel("median response length (chars)")
    for axis in (left, right):
        axis.tick_params(axis="x", labelrotation=45, labelsize=8)
        for label in axis.get_xticklabels():
            label.set_horizontalalignment("right")
    fig.suptitle("SmolLM2-135M on the revenue held-out split")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
