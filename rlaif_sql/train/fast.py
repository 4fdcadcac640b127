"""SFT and DPO steps that run the shared schema prefix once per batch (see `prefix`).

The same objectives as TRL's trainers with this project's settings: SFT is the mean negative
log-likelihood of the completion tokens (TRL's `completion_only_loss`); DPO is TRL's `sigmoid`
(summed log-ratios) or `sigmoid_norm` (log-ratios averaged over each side's tokens) loss, plus
TRL's `rpo_alpha` times the chosen side's mean token NLL when asked (it keeps the chosen
answers likely while the margin grows; Pang et al. 2024 found it needed for iterated DPO), and
R-DPO's length term when asked (`length_alpha`: Park et al. 2024 add alpha times the chosen
minus the rejected side's token count inside the log-sigmoid, so a longer chosen side needs a
smaller learned margin and the pairs teach less length). The
reference model's log-probabilities are computed once, before the first step (TRL's
`precompute_ref_log_probs`), also with the shared prefix. AdamW, linear decay, gradient norm
clipped at 1.0: TRL's defaults. Checkpoints are plain transformers folders, like `finish`'s.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlaif_sql.errors import ConfigError
from rlaif_sql.train.common import TrainConfig, load_model, resolve_device
from rlaif_sql.train.prefix import Encoded, completion_logps, encode

log = logging.getLogger(__name__)
StepHook = Callable[[int, float, float], None]  # (step, loss, seconds)
DPO_LOSSES = ("sigmoid", "sigmoid_norm")


def _setup(config: TrainConfig, total_steps: int) -> tuple[Any, Any, Any, Any]:
    import torch

    torch.manual_seed(config.seed)
    model, tokenizer = load_model(config.model)
    model.to(resolve_device(config.device)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1 - step / max(1, total_steps))
    )
    return model, tokenizer, optimizer, scheduler


def _batches(n_rows: int, config: TrainConfig) -> list[range]:
    per_epoch = [
        range(i, min(n_rows, i + config.batch_size)) for i in range(0, n_rows, config.batch_size)
    ]
    epochs = max(1, round(config.epochs)) if config.max_steps < 0 else 10**6
    steps = [b for _ in range(epochs) for b in per_epoch]
    return steps[: config.max_steps] if config.max_steps > 0 else steps


def _step(model: Any, optimizer: Any, scheduler: Any, loss: Any) -> float:
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def _save(model: Any, tokenizer: Any, out: Path) -> Path:
    final = out / "final"
    model.save_pretrained(final)
    tokenizer.save_pretrained(final)
    return final


def train_sft_fast(rows: Sequence[Mapping[str, Any]], config: TrainConfig, *,
                   max_completion: int = 256, on_step: StepHook | None = None) -> Path:  # fmt: skip
    """`rows`: {"prompt": messages, "completion": [{"role": "assistant", "content": ...}]}, as
    `sft.sft_dataset` builds them."""
    if not rows:
        raise ConfigError("SFT needs at least one (prompt, verified answer) row")
    batches = _batches(len(rows), config)
    model, tokenizer, optimizer, scheduler = _setup(config, len(batches))
    encoded = [encode(tokenizer, r["prompt"], r["completion"][-1]["content"]) for r in rows]
    for step, batch in enumerate(batches, 1):
        started = time.perf_counter()
        sums, counts = completion_logps(model, [encoded[i] for i in batch], trim=max_completion)
        loss = _step(model, optimizer, scheduler, -sums.sum() / counts.sum().clamp(min=1))
        _report(on_step, step, loss, started)
    return _save(model, tokenizer, config.out)


def reference_logps(model: Any, encoded: Sequence[Encoded], *, chunk: int = 8,
                    trim: int = 256) -> list[float]:  # fmt: skip
    """Each row's summed completion log-probability under `model`, no gradients."""
    import torch

    out: list[float] = []
    with torch.no_grad():
        for i in range(0, len(encoded), chunk):
            sums, _ = completion_logps(model, encoded[i : i + chunk], trim=trim)
            out.extend(float(s) for s in sums)
    return out


def train_dpo_fast(pairs: Sequence[Mapping[str, Any]], config: TrainConfig, *, beta: float = 0.1,
                   loss_type: str = "sigmoid_norm", rpo_alpha: float = 0.0,
                   length_alpha: float = 0.0, max_completion: int = 256,
                   on_step: StepHook | None = None) -> Path:  # fmt: skip
    """`pairs`: {"prompt": messages, "chosen": text, "rejected": text} (texts or the
    one-message lists `rlaif-sql export` writes). With `sigmoid_norm` the log-ratios are
    per-token averages, so `beta` is on SimPO's scale (about 2), not DPO's 0.1."""
    import torch

    if loss_type not in DPO_LOSSES:
        raise ConfigError(f"loss_type {loss_type!r}: the fast DPO knows {DPO_LOSSES}; "
                          "use rlaif_sql.train.dpo.train_dpo for TRL's other losses")  # fmt: skip
    if not pairs:
        raise ConfigError("DPO needs at least one (prompt, chosen, rejected) pair")
    batches = _batches(len(pairs), config)
    model, tokenizer, optimizer, scheduler = _setup(config, len(batches))
    chosen = [encode(tokenizer, p["prompt"], _text(p["chosen"])) for p in pairs]
    rejected = [encode(tokenizer, p["prompt"], _text(p["rejected"])) for p in pairs]
    reference = copy.deepcopy(model).eval()
    ref = reference_logps(reference, chosen + rejected, trim=max_completion)
    del reference
    ref_c, ref_r = torch.tensor(ref[: len(pairs)]), torch.tensor(ref[len(pairs) :])
    for step, batch in enumerate(batches, 1):
        started = time.perf_counter()
        idx = list(batch)
        sums, counts = completion_logps(
            model, [chosen[i] for i in idx] + [rejected[i] for i in idx], trim=max_completion
        )
        device = sums.device
        ratio_c = sums[: len(idx)] - ref_c[idx].to(device)
        ratio_r = sums[len(idx) :] - ref_r[idx].to(device)
        count_c, count_r = counts[: len(idx)], counts[len(idx) :]
        if loss_type == "sigmoid_norm":
            ratio_c, ratio_r = ratio_c / count_c, ratio_r / count_r
        margin = beta * (ratio_c - ratio_r) + length_alpha * (count_c - count_r)
        loss = -torch.nn.functional.logsigmoid(margin).mean()
        if rpo_alpha:
            loss = loss + rpo_alpha * (-sums[: len(idx)] / count_c).mean()
        _report(on_step, step, _step(model, optimizer, scheduler, loss), started)
    return _save(model, tokenizer, config.out)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else value[-1]["content"]


def _report(hook: StepHook | None, step: int, loss: float, started: float) -> None:
    seconds = time.perf_counter() - started
    log.info("step %d: loss %.4f (%.1f s)", step, loss, seconds)
    if hook:
        hook(step, loss, seconds)
