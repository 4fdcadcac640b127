"""Training on TRL: DPO on exported pairs, GRPO on verifier rewards, CPU-friendly defaults."""
