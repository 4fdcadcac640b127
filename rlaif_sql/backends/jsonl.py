"""Completions the user brings: a JSONL file of `task_id` + `completion` (one line each).

Requests are matched to lines by the `task_id` in the request's metadata, in file order: the
k-th request for a task gets the task's k-th completion; a task with no line left is an
abstain for that request, never an invented answer.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Sequence
from pathlib import Path

from rlaif_sql.backends.base import Answer, ChatRequest, Completion
from rlaif_sql.errors import ProviderError, TaskError
from rlaif_sql.models import read_jsonl


class JsonlBackend:
    def __init__(self, path: str | Path, model: str = "jsonl") -> None:
        self.name = model
        self.path = Path(path)
        self._lines: dict[str, deque[str]] = defaultdict(deque)
        for i, row in enumerate(read_jsonl(self.path), 1):
            if "task_id" not in row or "completion" not in row:
                raise TaskError(f"{self.path}:{i}: needs task_id and completion")
            self._lines[str(row["task_id"])].append(str(row["completion"]))
        self._lock = threading.Lock()

    def complete(self, requests: Sequence[ChatRequest], *, progress: bool = False) -> list[Answer]:
        answers: list[Answer] = []
        with self._lock:
            for request in requests:
                task_id = str(request.meta.get("task_id", ""))
                queue = self._lines.get(task_id)
                if not queue or len(queue) < request.n:
                    answers.append(
                        ProviderError(f"{self.path} has no completion left for {task_id!r}")
                    )
                    continue
                texts = [queue.popleft() for _ in range(request.n)]
                answers.append([Completion(text=t, model=self.name) for t in texts])
        return answers
