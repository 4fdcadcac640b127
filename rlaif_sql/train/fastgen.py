"""Greedy evaluation that computes the shared schema prefix once: `PrefixCachedBackend`.

Every held-out prompt of a pack starts with the same system message and schema (~510 of its
~530 tokens). `LocalBackend` runs all of them for every question; this backend runs them once
(transformers' prompt reuse: a cache for the common prefix, copied and repeated per batch),
then feeds each batch's question suffixes left-padded behind it (the pads masked out, positions
counted over real tokens), and stops a row when its SQL block closes (`stop_after_sql`; off
when the prose after the SQL matters, e.g. to measure answer length). The prompt text is
LocalBackend's, token for token. Sampling works as LocalBackend's (one seed per batch, each
row's own temperature); several samples per request and choice log-probabilities go to
LocalBackend unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from rlaif_sql.backends.base import Answer, ChatRequest, Completion
from rlaif_sql.backends.local import EMBEDDED, FinishedRows, LocalBackend

FENCE = "```"


class PrefixCachedBackend(LocalBackend):
    """LocalBackend with the common prompt prefix computed once."""

    def __init__(self, model: str = EMBEDDED, batch_size: int = 16, device: str = "cpu",
                 threads: int | None = None, *, stop_after_sql: bool = True) -> None:  # fmt: skip
        super().__init__(model, batch_size=batch_size, device=device, threads=threads)
        self.stop_after_sql = stop_after_sql
        self._prefixes: dict[tuple[int, ...], Any] = {}

    def _generate(
        self, batch: list[ChatRequest], counter: FinishedRows | None = None
    ) -> list[Answer]:
        first = batch[0]
        if first.choices or first.n != 1:
            return super()._generate(batch, counter)
        import torch

        from rlaif_sql.backends.local import RowTemperature

        model, tokenizer = self.load()
        texts = [
            tokenizer.apply_chat_template(
                [dict(m) for m in r.messages], tokenize=False, add_generation_prompt=True
            )
            for r in batch
        ]
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        shared = common_prefix(ids)
        cache = copy.deepcopy(self._prefix_cache(model, tuple(ids[0][:shared])))
        cache.batch_repeat_interleave(len(batch))
        width = max(len(i) - shared for i in ids)
        pad = tokenizer.pad_token_id
        input_ids = torch.full((len(batch), shared + width), pad, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        input_ids[:, :shared] = torch.tensor(ids[0][:shared])
        mask[:, :shared] = 1
        for b, row in enumerate(ids):  # left padding between the shared prefix and the suffix
            input_ids[b, shared + width - (len(row) - shared) :] = torch.tensor(row[shared:])
            mask[b, shared + width - (len(row) - shared) :] = 1
        stops: list[Any] = (
            [counter.criterion(input_ids.shape[1], tokenizer.eos_token_id)] if counter else []
        )
        if self.stop_after_sql:
            stops.append(SqlBlockClosed(tokenizer, input_ids.shape[1]))
        temperatures = [r.temperature for r in batch]
        sampling = any(t > 0 for t in temperatures)
        torch.manual_seed(first.seed)
        with torch.no_grad():
            output = model.generate(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                cache=cache, max_new_tokens=first.max_tokens, do_sample=sampling,
                temperature=1.0 if sampling else None, top_p=first.top_p if sampling else None,
                top_k=None, pad_token_id=pad, stopping_criteria=stops or None,
                logits_processor=[RowTemperature(temperatures)] if sampling else None,
            )  # fmt: skip
        return [
            [self._completion(tokenizer, output[b, input_ids.shape[1] :], len(ids[b]))]
            for b in range(len(batch))
        ]

    def _prefix_cache(self, model: Any, prefix: tuple[int, ...]) -> Any:
        import torch

        if prefix not in self._prefixes:
            if len(self._prefixes) >= 4:
                self._prefixes.clear()
            with torch.no_grad():
                out = model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True,
                            logits_to_keep=1)  # fmt: skip
            self._prefixes[prefix] = out.cache
        return self._prefixes[prefix]

    def _completion(self, tokenizer: Any, new: Any, prompt_tokens: int) -> Completion:
        tokens = [t for t in new.tolist() if t != tokenizer.pad_token_id]
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        closed = self.stop_after_sql and text.count(FENCE) >= 2
        return Completion(
            text=text,
            finish_reason="stop" if tokenizer.eos_token_id in new.tolist() or closed else "length",
            prompt_tokens=prompt_tokens,
            completion_tokens=len(tokens),
            model=self.name,
        )


def common_prefix(ids: Sequence[Sequence[int]]) -> int:
    """The longest prefix all rows share, leaving every row at least one token of its own."""
    limit = min(len(i) for i in ids) - 1
    n = 0
    while n < limit and all(i[n] == ids[0][n] for i in ids):
        n += 1
    return max(1, n)


class SqlBlockClosed:
    """A stopping criterion: a row is done once its new text has closed a ``` block."""

    def __init__(self, tokenizer: Any, prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        texts = self.tokenizer.batch_decode(
            input_ids[:, self.prompt_len :], skip_special_tokens=True
        )
        return torch.tensor([t.count(FENCE) >= 2 for t in texts], device=input_ids.device)
