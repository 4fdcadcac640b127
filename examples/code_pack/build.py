"""Build the bundled code pack: tasks.jsonl and candidates.jsonl (deterministic).

    python examples/code_pack/build.py

Each task has example tests and a hypothesis property (checked against a trusted oracle
in the test module). Candidates cover every verdict reason; `meta.expect` records the
reason each one must get (tests/verifiers/test_code_pack.py checks this).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name, signature, docstring, reference body, examples [(args, result)], strategy, oracle expr
SPECS = [
    (
        "add",
        "a: int, b: int",
        "Return a + b.",
        "return a + b",
        [("1, 2", "3")],
        "st.integers(), st.integers()",
        "a + b",
    ),
    (
        "absolute",
        "x: int",
        "Return |x|.",
        "return x if x >= 0 else -x",
        [("-3", "3")],
        "st.integers()",
        "abs(x)",
    ),
    (
        "maximum",
        "xs: list",
        "Largest element of a non-empty list.",
        "best = xs[0]\n    for x in xs:\n        if x > best:\n            best = x\n    return best",
        [("[1, 5, 2]", "5")],
        "st.lists(st.integers(), min_size=1)",
        "max(xs)",
    ),
    (
        "total",
        "xs: list",
        "Sum of a list of ints.",
        "s = 0\n    for x in xs:\n        s += x\n    return s",
        [("[1, 2, 3]", "6")],
        "st.lists(st.integers())",
        "sum(xs)",
    ),
    (
        "reverse",
        "s: str",
        "The string reversed.",
        "return s[::-1]",
        [("'abc'", "'cba'")],
        "st.text()",
        "s[::-1]",
    ),
    (
        "is_even",
        "n: int",
        "True when n is even.",
        "return n % 2 == 0",
        [("4", "True"), ("3", "False")],
        "st.integers()",
        "n % 2 == 0",
    ),
    (
        "count_vowels",
        "s: str",
        "Number of ASCII vowels (aeiou, either case).",
        "return sum(c in 'aeiouAEIOU' for c in s)",
        [("'Hello'", "2")],
        "st.text()",
        "len([c for c in s if c.lower() in 'aeiou' and c.isascii()])",
    ),
    (
        "factorial",
        "n: int",
        "n! for 0 <= n <= 20.",
        "r = 1\n    for i in range(2, n + 1):\n        r *= i\n    return r",
        [("5", "120"), ("0", "1")],
        "st.integers(0, 20)",
        "__import__('math').factorial(n)",
    ),
    (
        "fib",
        "n: int",
        "The n-th Fibonacci number (fib(0) = 0), 0 <= n <= 60.",
        "a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
        [("10", "55")],
        "st.integers(0, 60)",
        "_fib(n)",
    ),
    (
        "clamp",
        "x: int, lo: int, hi: int",
        "x limited to [lo, hi] (lo <= hi).",
        "return max(lo, min(x, hi))",
        [("5, 0, 3", "3")],
        "st.integers(), st.integers(-5, 0), st.integers(0, 5)",
        "sorted((lo, x, hi))[1]",
    ),
    (
        "dedupe",
        "xs: list",
        "Elements in first-seen order without repeats.",
        "seen = []\n    for x in xs:\n        if x not in seen:\n            seen.append(x)\n    return seen",
        [("[1, 2, 1, 3]", "[1, 2, 3]")],
        "st.lists(st.integers(0, 5))",
        "list(dict.fromkeys(xs))",
    ),
    (
        "word_count",
        "s: str",
        "Number of whitespace-separated words.",
        "return len(s.split())",
        [("'a b  c'", "3")],
        "st.text()",
        "len(s.split())",
    ),
    (
        "is_palindrome",
        "s: str",
        "True when s reads the same backwards.",
        "return s == s[::-1]",
        [("'abba'", "True"), ("'ab'", "False")],
        "st.text(alphabet='ab', max_size=6)",
        "s == s[::-1]",
    ),
    (
        "gcd",
        "a: int, b: int",
        "Greatest common divisor of non-negative a, b.",
        "while b:\n        a, b = b, a % b\n    return a",
        [("12, 18", "6")],
        "st.integers(0, 10**6), st.integers(0, 10**6)",
        "__import__('math').gcd(a, b)",
    ),
    (
        "running_sum",
        "xs: list",
        "Prefix sums.",
        "out, s = [], 0\n    for x in xs:\n        s += x\n        out.append(s)\n    return out",
        [("[1, 2, 3]", "[1, 3, 6]")],
        "st.lists(st.integers())",
        "list(__import__('itertools').accumulate(xs))",
    ),
    (
        "second_largest",
        "xs: list",
        "Second largest distinct value, or None.",
        "d = sorted(set(xs))\n    return d[-2] if len(d) > 1 else None",
        [("[3, 1, 3, 2]", "2"), ("[1]", "None")],
        "st.lists(st.integers(0, 9))",
        "(sorted(set(xs))[-2] if len(set(xs)) > 1 else None)",
    ),
    (
        "count_char",
        "s: str, c: str",
        "Occurrences of the character c in s.",
        "return s.count(c)",
        [("'banana', 'a'", "3")],
        "st.text(alphabet='ab'), st.sampled_from('ab')",
        "len([x for x in s if x == c])",
    ),
    (
        "title_case",
        "s: str",
        "Each space-separated word capitalised.",
        "return ' '.join(w.capitalize() for w in s.split(' '))",
        [("'hello world'", "'Hello World'")],
        "st.text(alphabet='ab ')",
        "' '.join(w.capitalize() for w in s.split(' '))",
    ),
    (
        "digits_sum",
        "n: int",
        "Sum of the decimal digits of n >= 0.",
        "return sum(int(d) for d in str(n))",
        [("123", "6")],
        "st.integers(0, 10**12)",
        "sum(map(int, str(n)))",
    ),
    (
        "flatten",
        "xss: list",
        "A list of lists flattened one level.",
        "return [x for xs in xss for x in xs]",
        [("[[1], [2, 3]]", "[1, 2, 3]")],
        "st.lists(st.lists(st.integers()))",
        "sum(xss, [])",
    ),
    (
        "min_index",
        "xs: list",
        "Index of the first smallest element of a non-empty list.",
        "return xs.index(min(xs))",
        [("[3, 1, 1]", "1")],
        "st.lists(st.integers(), min_size=1)",
        "min(range(len(xs)), key=lambda i: (xs[i], i))",
    ),
    (
        "rotate",
        "xs: list, k: int",
        "xs rotated left by k (k >= 0).",
        "if not xs:\n        return []\n    k %= len(xs)\n    return xs[k:] + xs[:k]",
        [("[1, 2, 3], 1", "[2, 3, 1]")],
        "st.lists(st.integers()), st.integers(0, 10)",
        "(xs[k % len(xs):] + xs[:k % len(xs)] if xs else [])",
    ),
    (
        "char_freq",
        "s: str",
        "A dict of character counts.",
        "d = {}\n    for c in s:\n        d[c] = d.get(c, 0) + 1\n    return d",
        [("'aab'", "{'a': 2, 'b': 1}")],
        "st.text(max_size=20)",
        "dict(__import__('collections').Counter(s))",
    ),
    (
        "binary",
        "n: int",
        "Binary digits of n >= 0 without prefix.",
        "return bin(n)[2:]",
        [("5", "'101'")],
        "st.integers(0, 10**9)",
        "format(n, 'b')",
    ),
    (
        "safe_div",
        "a: int, b: int",
        "a // b, or None when b == 0.",
        "return None if b == 0 else a // b",
        [("7, 2", "3"), ("1, 0", "None")],
        "st.integers(), st.integers(-3, 3)",
        "(None if b == 0 else a // b)",
    ),
    (
        "merge_sorted",
        "xs: list, ys: list",
        "Merge two sorted lists.",
        "return sorted(xs + ys)",
        [("[1, 3], [2]", "[1, 2, 3]")],
        "st.lists(st.integers()).map(sorted), st.lists(st.integers()).map(sorted)",
        "sorted(xs + ys)",
    ),
    (
        "vowel_strip",
        "s: str",
        "s without ASCII vowels.",
        "return ''.join(c for c in s if c.lower() not in 'aeiou')",
        [("'banana'", "'bnn'")],
        "st.text(alphabet='abcdeiou')",
        "''.join(c for c in s if c not in 'aeiouAEIOU')",
    ),
    (
        "pairs_sum",
        "xs: list, t: int",
        "Number of index pairs i < j with xs[i] + xs[j] == t.",
        "n = 0\n    for i in range(len(xs)):\n        for j in range(i + 1, len(xs)):\n            n += xs[i] + xs[j] == t\n    return n",
        [("[1, 2, 3], 4", "1")],
        "st.lists(st.integers(0, 4), max_size=8), st.integers(0, 8)",
        "sum(1 for i in range(len(xs)) for j in range(i + 1, len(xs)) if xs[i] + xs[j] == t)",
    ),
]
FIB_HELPER = (
    "def _fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"
)


def params(signature: str) -> list[str]:
    return [p.split(":")[0].strip() for p in signature.split(",")]


def tests_for(name: str, signature: str, examples: list, strategy: str, oracle: str) -> str:
    names = params(signature)
    lines = ["from hypothesis import given, strategies as st", f"from solution import {name}", ""]
    if "_fib" in oracle:
        lines.append(FIB_HELPER)
    for index, (args, result) in enumerate(examples):
        lines += [f"def test_example_{index}():", f"    assert {name}({args}) == {result}", ""]
    lines += [f"@given({strategy})", f"def test_property({', '.join(names)}):"]
    lines += [f"    expected = {oracle}", f"    assert {name}({', '.join(names)}) == expected", ""]
    return "\n".join(lines)


def prompt_for(name: str, signature: str, doc: str) -> str:
    return f'def {name}({signature}):\n    """{doc}"""\n'


def build_tasks() -> list[dict]:
    tasks = []
    for name, signature, doc, _body, examples, strategy, oracle in SPECS:
        tasks.append({
            "task_id": f"code/{name}", "kind": "code", "prompt": prompt_for(name, signature, doc),
            "entry_point": name, "tests": tests_for(name, signature, examples, strategy, oracle),
            "timeout_s": 3.0, "memory_mb": 256, "expected_tests": len(examples) + 1,
        })  # fmt: skip
    return tasks


def good_completions(name: str, signature: str, doc: str, body: str) -> list[tuple[str, str]]:
    full = f"def {name}({signature}):\n    {body}\n"
    return [
        ("fenced", f"Here is the function:\n\n```python\n{full}```\n"),
        ("bare", full),
        ("continuation", f"    {body}\n"),
    ]


HOSTILE = {
    "no_code": ("I'm sorry, I can't help with that.", "no_code"),
    "syntax_error": ("```python\ndef {name}({sig}):\n    return (\n```", "syntax_error"),
    "import_error": ("```python\nimport not_a_real_module\n{full}```", "import_error"),
    "raises_at_import": ("{full}raise RuntimeError('not today')\n", "import_error"),
    "wrong_answer": ("def {name}(*args):\n    return None\n", "test_failure"),
    "timeout": ("def {name}(*args):\n    while True:\n        pass\n", "timeout"),
    "memory_limit": ("def {name}(*args):\n    return bytearray(1 << 34)\n", "memory_limit"),
    "crash": ("import ctypes\ndef {name}(*args):\n    return ctypes.string_at(0)\n", "crash"),
    "forbidden": ("import socket\ndef {name}(*args):\n    socket.create_connection(('1.1.1.1', 53), timeout=1)\n", "forbidden"),
    "always_equal": ("class A:\n    def __eq__(self, o):\n        return True\ndef {name}(*args):\n    return A()\n", "test_failure"),
    "exit_early": ("import os\nos._exit(0)\n", "crash"),
}  # fmt: skip


def build_candidates() -> list[dict]:
    rows = []
    for index, (name, signature, doc, body, *_rest) in enumerate(SPECS):
        task_id = f"code/{name}"
        for style, text in good_completions(name, signature, doc, body):
            if index % 3 == ["fenced", "bare", "continuation"].index(style) or index < 3:
                rows.append(
                    {
                        "task_id": task_id,
                        "candidate_id": f"{name}:{style}",
                        "completion": text,
                        "expect": "ok",
                    }
                )
        kind = list(HOSTILE)[index % len(HOSTILE)]
        template, expect = HOSTILE[kind]
        full = f"def {name}({signature}):\n    {body}\n"
        text = template.replace("{name}", name).replace("{sig}", signature).replace("{full}", full)
        rows.append(
            {
                "task_id": task_id,
                "candidate_id": f"{name}:{kind}",
                "completion": text,
                "expect": expect,
            }
        )
    return rows


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    write(HERE / "tasks.jsonl", build_tasks())
    write(HERE / "candidates.jsonl", build_candidates())
    print(f"wrote {len(SPECS)} tasks and {len(build_candidates())} candidates to {HERE}")
