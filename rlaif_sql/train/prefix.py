"""Shared-prefix forward passes: every prompt of a pack starts with the same ~520 schema tokens.

A batch's rows are tokenized exactly as TRL does it (the chat template of prompt + completion;
the completion is what follows the templated prompt), then split into the longest prefix all
rows share and each row's own suffix. The prefix runs once per batch, with gradients, and its
keys/values are repeated for every row; the suffixes run on top of them. Autograd sums each
row's gradient through the shared prefix, so the loss and its gradient are those of the full,
unshared batch (up to float rounding); only the redundant work is gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rlaif_sql.errors import ConfigError


@dataclass(frozen=True)
class Encoded:
    """One row's token ids and where its completion (the scored part) starts."""

    ids: tuple[int, ...]
    completion_start: int


def encode(tokenizer: Any, prompt: Sequence[Mapping[str, str]], completion: str) -> Encoded:
    """Prompt + assistant reply through the chat template, as TRL's prompt/completion rows."""
    messages = [dict(m) for m in prompt]
    head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": completion}], tokenize=False
    )
    if not full.startswith(head):
        raise ConfigError("the chat template does not extend the prompt with the reply; "
                          "shared-prefix training needs a template that does (ChatML does)")  # fmt: skip
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full[len(head) :], add_special_tokens=False)["input_ids"]
    return Encoded(tuple(head_ids) + tuple(full_ids), len(head_ids))


def shared_length(rows: Sequence[Encoded]) -> int:
    """The longest prefix all rows share, never reaching into a completion."""
    limit = min(r.completion_start for r in rows)
    first = rows[0].ids
    n = 0
    while n < limit and all(r.ids[n] == first[n] for r in rows):
        n += 1
    return n


def completion_logps(model: Any, rows: Sequence[Encoded], *, trim: int = 0) -> tuple[Any, Any]:
    """(sum of each row's completion-token log-probabilities, completion token counts).

    `trim` > 0 keeps at most that many completion tokens per row (shorter max lengths)."""
    import torch

    device = next(model.parameters()).device
    rows = [_trimmed(r, trim) for r in rows] if trim else list(rows)
    shared = max(1, shared_length(rows))
    prefix = torch.tensor([rows[0].ids[:shared]], device=device)
    head = model(input_ids=prefix, use_cache=True, logits_to_keep=1)
    cache = head.cache
    cache.batch_repeat_interleave(len(rows))
    suffixes = [r.ids[shared:] for r in rows]
    width = max(len(s) for s in suffixes)
    ids = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), shared + width), dtype=torch.long, device=device)
    mask[:, :shared] = 1
    for i, s in enumerate(suffixes):  # right padding: later pads never touch earlier tokens
        ids[i, : len(s)] = torch.tensor(s, device=device)
        mask[i, shared : shared + len(s)] = 1
    positions = torch.arange(shared, shared + width, device=device).expand(len(rows), -1)
    tail = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                 cache=cache, use_cache=True)  # fmt: skip
    # logits predicting suffix token j: the prefix's last position for j = 0, else suffix j-1
    logits = torch.cat([head.logits[:, -1:].expand(len(rows), -1, -1), tail.logits[:, :-1]], 1)
    logps = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    scored = torch.zeros_like(logps)
    for i, r in enumerate(rows):
        start = r.completion_start - shared
        scored[i, start : len(suffixes[i])] = 1.0
    return (logps * scored).sum(dim=1), scored.sum(dim=1)


def _trimmed(row: Encoded, keep: int) -> Encoded:
    return Encoded(row.ids[: row.completion_start + keep], row.completion_start)
