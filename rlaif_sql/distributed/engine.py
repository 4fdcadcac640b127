"""The execution engine setting: `local` (threads in this process) or `ray` (a cluster).

One frozen settings object for the Python API (`VerifyConfig(engine=...)`), the CLI
(`--engine ray --ray-address ... --actors N`) and the pipeline TOML (`[engine]`).

>>> EngineConfig(kind="ray", actors=4).window
8
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from rlaif_sql.errors import ConfigError

KINDS = ("local", "ray")
ISOLATED_LABEL = ("rlaif_sql.fs", "isolated")
"""A node labelled `rlaif_sql.fs=isolated` (`ray start --labels`) treats every path of the
driver as absent and always receives files through the object store: for nodes that share a
path but not its content, and for the tests' simulated two-node cluster on one machine."""


@dataclass(frozen=True)
class EngineConfig:
    """Where verification runs ([engine] in a pipeline config; --engine on the CLI)."""

    kind: str = "local"
    """'local': threads and sandbox workers in this process. 'ray': a pool of Ray actors."""
    address: str | None = None
    """Ray cluster to join: None starts a Ray instance on this machine, 'auto' joins the one
    `ray start` made here, 'ray://host:10001' a remote head through Ray Client."""
    actors: int = 2
    """Verifier actors; each holds one warm VerifierContext with `[verify] workers` sandbox
    workers, so the cluster runs actors x workers queries at once."""
    cpus_per_actor: float = 1.0
    """CPUs Ray reserves for each actor; set it to `[verify] workers` on dedicated nodes."""
    batch_size: int = 16
    """Candidates per actor call: larger amortises Ray's per-call cost (~1 ms), smaller
    loses less work when an actor dies and keeps the tail short."""
    inflight_per_actor: int = 2
    """Batches queued on each actor, so it never idles while the driver reads results; the
    driver holds at most actors x inflight_per_actor batches (memory stays flat)."""
    kills_before_verdict: int = 2
    """An actor death retries the candidates it held; one that was in flight at this many
    deaths gets the local engine's verdict for a candidate that kills its sandbox
    (resource_limit for SQL, crash for code) instead of another retry."""
    max_ship_mb: int = 4096
    """Largest database or policy file shipped through the object store to nodes that cannot
    read its path; a larger one there is a task_error naming the node and path."""
    cache_dir: str | None = None
    """Per-node folder for shipped files, named by their sha256; None: <tmp>/rlaif_sql-ray."""
    pool_name: str | None = None
    """Name the actors (`<pool_name>-<i>`, namespace rlaif_sql) so that every process of a
    multi-process trainer using the same name shares one pool (detached: they outlive the
    process that started them; end them with `ray.kill` or `ray stop`); None: private actors
    that end with the pool."""
    start_timeout_s: float = 300.0
    """How long to wait for an actor to start before giving up (cluster without room)."""

    def __post_init__(self) -> None:
        checks = [
            (self.kind in KINDS, f"kind={self.kind!r} must be one of {', '.join(KINDS)}"),
            (self.actors >= 1, f"actors={self.actors} must be >= 1"),
            (self.cpus_per_actor >= 0, f"cpus_per_actor={self.cpus_per_actor} must be >= 0"),
            (self.batch_size >= 1, f"batch_size={self.batch_size} must be >= 1"),
            (
                self.inflight_per_actor >= 1,
                f"inflight_per_actor={self.inflight_per_actor} must be >= 1",
            ),
            (
                self.kills_before_verdict >= 1,
                f"kills_before_verdict={self.kills_before_verdict} must be >= 1",
            ),
            (self.max_ship_mb >= 0, f"max_ship_mb={self.max_ship_mb} must be >= 0"),
            (self.start_timeout_s > 0, f"start_timeout_s={self.start_timeout_s} must be > 0"),
            (
                self.address is None or _valid_address(self.address),
                f"address={self.address!r} must be 'auto', 'host:port' or 'ray://host:port'",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(
                    f"{message}; set it in [engine] of the pipeline config "
                    "(or --engine/--ray-address/--actors)"
                )

    @property
    def window(self) -> int:
        """Most batches in flight or waiting to be yielded in order."""
        return self.actors * self.inflight_per_actor

    @property
    def node_cache(self) -> Path:
        return Path(self.cache_dir or Path(tempfile.gettempdir()) / "rlaif_sql-ray")


def _valid_address(address: str) -> bool:
    if address == "auto":
        return True
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    return bool(host) and port.isdigit()
