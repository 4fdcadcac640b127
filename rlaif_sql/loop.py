"""`rlaif-sql loop CONFIG --rounds K`: sample from the current policy, verify, judge, pair,
train (DPO), evaluate; each round's metrics are kept in its run store (`runs` table, key
`round`) and collected in `loop.json` beside the rounds, so rounds can be compared; `loop.html`
beside it draws the per-round curves and links each round's page (`<export>-round<k>/report.html`).

Round k uses its own store (`<store>-round<k>.duckdb`) and export folder, so a killed loop
resumes inside the round it was in, and the next round samples from the model round k trained.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from rlaif_sql.backends.local import EMBEDDED, LocalBackend
from rlaif_sql.config import PipelineConfig
from rlaif_sql.evaluate import EvalConfig, evaluate
from rlaif_sql.models import load_tasks
from rlaif_sql.pipeline import Pipeline
from rlaif_sql.report import write_loop_page, write_pipeline_page
from rlaif_sql.train.common import TrainConfig
from rlaif_sql.train.dpo import train_dpo


def run_loop(config: PipelineConfig, rounds: int, eval_tasks: Path | None, *, model: str = EMBEDDED,
             dpo: TrainConfig | None = None, progress: bool = True,
             on_round: Callable[[dict[str, Any]], None] | None = None,
             notify: Callable[[str], None] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Run the rounds; `on_round` receives each round's metrics as it ends, `notify` the
    pipeline's one-line messages (resuming, forced export)."""
    held_out = load_tasks(eval_tasks) if eval_tasks else None
    history: list[dict[str, Any]] = []
    summary_path = config.store.with_name(config.store.stem + "-loop.json")
    pages: dict[int, Path] = {}
    for k in range(1, rounds + 1):
        store = config.store.with_name(f"{config.store.stem}-round{k}.duckdb")
        export_dir = config.export_dir.with_name(f"{config.export_dir.name}-round{k}")
        backend = {**config.sampling_backend, "kind": "local", "model": model}
        round_config = replace(config, store=store, export_dir=export_dir, sampling_backend=backend)
        pipeline = Pipeline(round_config, progress=progress, notify=notify)
        try:
            report = pipeline.run()
            pages[k] = write_pipeline_page(pipeline, export_dir / "report.html")
            entry: dict[str, Any] = {"round": k, "policy": model, "pairs": report["pairs"],
                                     "verifier_pass_rate": report["verifier_pass_rate"],
                                     "execution_accuracy_train": report["execution_accuracy_policy_model"]}  # fmt: skip
            if report["pairs"]:
                train = dpo or TrainConfig(learning_rate=5e-6)
                model = str(train_dpo(export_dir, replace(train, model=model, out=export_dir / "dpo"),
                                      loss_type="sigmoid_norm"))  # fmt: skip
            entry["trained"] = model
            if held_out:
                ev = evaluate(held_out, LocalBackend(model), EvalConfig(n=1), verify=config.verify,
                              progress=progress)  # fmt: skip
                entry.update({f"heldout_{key}": ev[key] for key in
                              ("execution_accuracy", "median_response_chars", "no_sql_rate")})  # fmt: skip
            pipeline.store.set_info("round", entry)
        finally:
            pipeline.close()
        history.append(entry)
        summary_path.write_text(json.dumps(history, indent=2, default=str) + "\n")
        loop_page = write_loop_page(history, pages, summary_path.with_suffix(".html"),
                                    title=f"{config.source}: loop")  # fmt: skip
        if on_round is not None:
            on_round({**entry, "loop_page": str(loop_page), "round_page": str(pages[k])})
    return history
