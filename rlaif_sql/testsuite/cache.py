"""One cache directory for test suites and counterexample searches, keyed by content.

Keys hash what decides the outcome (gold SQL, the database file's bytes, the settings, the
time budget), never a task id: the same gold on the same database is built once for every
task that asks. The directory is a setting (`cache_dir`), else the environment variable
`RLAIF_SQL_CACHE`, else `$XDG_CACHE_HOME/rlaif_sql` (default `~/.cache/rlaif_sql`); it is
always made absolute, so evidence paths resolve from any working directory.

>>> cache_root(None)                                  # doctest: +SKIP
PosixPath('/home/me/.cache/rlaif_sql')
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any, TypeVar

from rlaif_sql.errors import ConfigError

ENV = "RLAIF_SQL_CACHE"
_DIGESTS: dict[tuple[str, int, int], str] = {}
_LOCK = threading.Lock()
T = TypeVar("T")


def cache_root(setting: str | Path | None = None) -> Path:
    """The cache directory: the setting, else $RLAIF_SQL_CACHE, else the user cache dir."""
    if setting:
        root = Path(setting)
    elif os.environ.get(ENV):
        root = Path(os.environ[ENV])
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(base) / "rlaif_sql"
    return root.expanduser().resolve()


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes, remembered per (path, size, mtime) for this process."""
    stat = Path(path).stat()
    memo = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    with _LOCK:
        if memo in _DIGESTS:
            return _DIGESTS[memo]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    with _LOCK:
        _DIGESTS[memo] = digest.hexdigest()
    return _DIGESTS[memo]


def content_key(*parts: Any) -> str:
    """A short stable hash of JSON-able parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, value: Any) -> None:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    partial.write_text(json.dumps(value, indent=1, default=_jsonable) + "\n")
    partial.replace(path)


def publish(scratch: Path, folder: Path, manifest: str, *, replace: bool = False) -> bool:
    """Move a finished build, its `manifest` already inside, to `folder` in one rename, so a
    folder is never seen without its manifest. False when another builder's finished build
    is there first (`scratch` is left for the caller); `replace` moves an existing one aside
    (a rebuild). A folder without a manifest is a leftover of an older layout: removed."""
    there = folder.exists()
    if there and (replace or not (folder / manifest).is_file()):
        aside = folder.with_name(f"{folder.name}.{os.getpid()}.{threading.get_ident()}.old")
        with contextlib.suppress(OSError):  # another builder moved it first
            folder.rename(aside)
        shutil.rmtree(aside, ignore_errors=True)
    try:
        scratch.rename(folder)
    except OSError:  # another builder's finished build took the name
        return False
    return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def settings_from_value(cls: type[T], value: Any, setting: str, what: str) -> T | None:
    """A settings dataclass from a task's `compare.<setting>`: true, false, or a table of its
    fields (a misspelled field is a ConfigError naming the nearest one)."""
    if not value:
        return None
    if value is True:
        return cls()
    if not isinstance(value, dict):
        raise ConfigError(f"compare.{setting}={value!r} must be true or a table of {what} options")
    known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for name in value:
        if name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {near[0]}?" if near else f" (known: {', '.join(known)})"
            raise ConfigError(f"compare.{setting} has no option {name!r}{hint}")
    fields: dict[str, Any] = dict(value)
    if "cache_dir" in fields:
        fields["cache_dir"] = Path(fields["cache_dir"])
    if "infer_off" in fields:
        fields["infer_off"] = tuple(fields["infer_off"])
    return cls(**fields)
