"""Databases and policy files reach every node: read from their path where it is visible,
else shipped once per node through Ray's object store, content-addressed by sha256.

Driver side (`Shipper`): each distinct file is hashed once (keyed by path, size and mtime)
and `ray.put` once, so the object store holds one copy; the reference travels inside each
batch and is only fetched by a node that needs it. Node side (`NodeFiles`): a path that
exists on the node with the same sha256 is used as is; otherwise the bytes are fetched (Ray
pulls an object to a node once, however many actors read it) and written atomically to
`<cache_dir>/<sha256>/<file name>`, which every actor of the node then reuses. A file that
cannot reach a node (too large to ship, or its object lost) is `Unreachable`, which the actor
turns into a `task_error` verdict naming the node and the path.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rlaif_sql.kinds.registry import kind_of
from rlaif_sql.models import Task

CHUNK = 1 << 20


class Unreachable(Exception):
    """A task's file can reach neither this node's filesystem nor its cache."""


@dataclass(frozen=True)
class FileRef:
    """One file of the driver: where it is there, what it holds, how to fetch it."""

    path: str
    sha256: str
    size: int
    data: Any = None
    """A `ray.ObjectRef` to the bytes, or None when the file is over `max_ship_mb`."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def task_files(task: Task) -> dict[str, str]:
    """The task's fields that name a file (its kind's `files`: a SQL task's database and
    policy file; nothing for code tasks, which carry their tests inline)."""
    return kind_of(task).files(task)


class _Hashes:
    """sha256 of files, recomputed only when a file's size or mtime changes."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> tuple[str, int] | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._known.get(key)
        if known is None:
            known = sha256_file(path)
            with self._lock:
                self._known[key] = known
        return known, stat.st_size


class Shipper:
    """Driver side: a `FileRef` per file, each put into the object store at most once."""

    def __init__(self, max_ship_mb: int) -> None:
        self.max_bytes = max_ship_mb * 1024 * 1024
        self._hashes = _Hashes()
        self._objects: dict[str, Any] = {}
        self.shipped_bytes = 0

    def refs(self, task: Task) -> dict[str, FileRef]:
        """The task's files the driver can read; one it cannot read is left to the verifier,
        which gives the same task_error the local engine gives."""
        out = {}
        for field_name, path in task_files(task).items():
            ref = self._ref(Path(path))
            if ref is not None:
                out[field_name] = ref
        return out

    def _ref(self, path: Path) -> FileRef | None:
        hashed = self._hashes.get(path)
        if hashed is None or not path.is_file():
            return None
        sha, size = hashed
        if size > self.max_bytes:
            return FileRef(str(path), sha, size)
        if sha not in self._objects:
            import ray

            self._objects[sha] = ray.put(path.read_bytes())
            self.shipped_bytes += size
        return FileRef(str(path), sha, size, self._objects[sha])


class NodeFiles:
    """Node side: resolve a `FileRef` to a readable local path (see the module docstring)."""

    def __init__(self, cache_dir: Path, *, isolated: bool, fetch_timeout_s: float = 600.0) -> None:
        self.cache_dir = cache_dir
        self.isolated = isolated
        self.fetch_timeout_s = fetch_timeout_s
        self._hashes = _Hashes()
        self._resolved: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.fetched = 0
        self.from_cache = 0

    def resolve(self, ref: FileRef) -> str:
        key = (ref.path, ref.sha256)
        with self._lock:
            if key in self._resolved:
                return self._resolved[key]
        local = self._locate(ref)
        with self._lock:
            self._resolved[key] = local
        return local

    def _locate(self, ref: FileRef) -> str:
        if not self.isolated and self._visible(Path(ref.path), ref.sha256):
            return ref.path
        target = self.cache_dir / ref.sha256 / Path(ref.path).name
        if target.is_file() and target.stat().st_size == ref.size:
            self.from_cache += 1
            return str(target)
        if ref.data is None:
            raise Unreachable(
                f"not visible here and {ref.size / 2**20:.0f} MiB is over max_ship_mb; copy it "
                "to the node at the same path or raise [engine] max_ship_mb"
            )
        import ray

        try:
            data = ray.get(ref.data, timeout=self.fetch_timeout_s)
        except ray.exceptions.RayError as exc:
            raise Unreachable(f"its shipped copy could not be fetched: {exc!s:.300}") from exc
        _write_atomic(target, data)
        self.fetched += 1
        return str(target)

    def _visible(self, path: Path, sha256: str) -> bool:
        hashed = self._hashes.get(path)
        return hashed is not None and hashed[0] == sha256

    def localise(self, task: Task, refs: Mapping[str, FileRef]) -> tuple[Task, dict[str, str]]:
        """The task with its files' local paths, and {local path: driver path} for messages."""
        changes: dict[str, Any] = {}
        back: dict[str, str] = {}
        for field_name, ref in refs.items():
            try:
                local = self.resolve(ref)
            except Unreachable as exc:
                name = "database" if field_name == "db" else field_name
                raise Unreachable(f"{name} {ref.path} cannot reach this node: {exc}") from None
            if local != ref.path:
                changes[field_name] = local
                back[local] = ref.path
        # only SQL tasks (dataclasses) name files
        return (replace(task, **changes) if changes else task), back  # type: ignore[type-var]


def _write_atomic(target: Path, data: bytes) -> None:
    """Concurrent actors of one node may write the same file: each writes a private temporary
    file and renames it over the target, so a reader never sees a partial file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
