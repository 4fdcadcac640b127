"""Completions the user brings: a JSONL file of `task_id` + `completion` (one line each).

Requests are matched to lines by the `task_id` in the request's metadata: a request carrying
a sample index `k` gets the task's k-th line (so a resumed run gets the same answers), one
without gets the next unused line. A task with no such line is an abstain for that request,
never an invented answer.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from rlaif_sql.backends.base import Answer, ChatRequest, Completion
from rlaif_sql.errors import ProviderError, TaskError
from rlaif_sql.models import read_jsonl
from rlaif_sql.progress import Progress, own


class JsonlBackend:
    def __init__(self, path: str | Path, model: str = "jsonl") -> None:
        self.name = model
        self.path = Path(path)
        self._lines: dict[str, list[str]] = defaultdict(list)
        for i, row in enumerate(read_jsonl(self.path), 1):
            if "task_id" not in row or "completion" not in row:
                raise TaskError(f"{self.path}:{i}: needs task_id and completion")
            self._lines[str(row["task_id"])].append(str(row["completion"]))
        self._next: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def complete(
        self, requests: Sequence[ChatRequest], *, progress: bool | Progress = False
    ) -> list[Answer]:
        bar, owned = own(progress, f"generate ({self.name})", len(requests), "completion")
        answers: list[Answer] = []
        with self._lock:
            for request in requests:
                task_id = str(request.meta.get("task_id", ""))
                if "k" in request.meta:
                    index = int(request.meta["k"])
                else:
                    index, self._next[task_id] = self._next[task_id], self._next[task_id] + 1
                start = index * request.n
                texts = self._lines.get(task_id, [])[start : start + request.n]
                if len(texts) < request.n:
                    missing = f"{self.path} has no completion #{start} for task {task_id!r}"
                    answers.append(ProviderError(missing))
                else:
                    answers.append([Completion(text=t, model=self.name) for t in texts])
                bar.update()
        if owned:
            bar.close()
        return answers
