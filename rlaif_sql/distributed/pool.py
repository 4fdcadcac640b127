"""The driver side of the Ray engine: a pool of verifier actors fed from a bounded window.

Candidates are read lazily from the caller's iterable, cut into batches and sent to the
least-loaded live actor; at most `EngineConfig.window` batches are in flight or waiting to be
yielded, and verdicts are yielded in input order as soon as every earlier one is in, so the
driver's memory is flat in the number of candidates.

Faults: a batch whose actor died (process killed, node removed) is split into single
candidates and retried on the other actors while a replacement actor starts; a candidate
that was in flight at `kills_before_verdict` deaths gets the verdict the local engine gives a
candidate that kills its sandbox (`resource_limit` for SQL, `crash` for code). Every input
candidate gets exactly one verdict: results are keyed by input position, and a retried batch
is only resubmitted after its first attempt is known to have failed.

>>> with RayVerifierPool(VerifyConfig(), EngineConfig(kind="ray")) as pool:  # doctest: +SKIP
...     verdicts = list(pool.verify(tasks, candidates))
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from rlaif_sql.distributed.actor import VerifierActor
from rlaif_sql.distributed.engine import EngineConfig
from rlaif_sql.distributed.run_state import ActorSlot, Item, PoolRun
from rlaif_sql.distributed.runtime import NAMESPACE, connect
from rlaif_sql.distributed.shipping import Shipper
from rlaif_sql.errors import EngineError
from rlaif_sql.extras import require
from rlaif_sql.kinds.registry import kind_of
from rlaif_sql.models import Candidate, CheckOutcome, CheckStatus, Reason, Task, Verdict
from rlaif_sql.verifiers.context import VerifyConfig

log = logging.getLogger(__name__)
RESTARTS_PER_ACTOR = 8
"""Replacement actors allowed per configured actor before the run stops with EngineError."""


class RayVerifierPool:
    """Verifier actors on a Ray cluster; `verify` streams verdicts in input order."""

    def __init__(
        self, config: VerifyConfig, engine: EngineConfig, *, actor_cls: type | None = None
    ) -> None:
        self.ray = require("ray", extra="ray", feature="the Ray engine (--engine ray)")
        self.engine = engine
        self.config = replace(config, engine=None)
        self._started_ray = connect(self.ray, engine)
        self._remote = self.ray.remote(actor_cls or VerifierActor)
        self._shipper = Shipper(engine.max_ship_mb)
        self.counts: Counter[str] = Counter()
        self.slots = [self._start(i) for i in range(engine.actors)]

    # ------------------------------------------------------------------ actors

    def _start(self, index: int) -> ActorSlot:
        options: dict[str, Any] = {"num_cpus": self.engine.cpus_per_actor, "max_restarts": 0}
        if self.engine.pool_name:
            # detached: they outlive the process that made them, for the others sharing them
            options |= {"name": f"{self.engine.pool_name}-{index}", "namespace": NAMESPACE,
                        "get_if_exists": True, "lifetime": "detached"}  # fmt: skip
        handle = self._remote.options(**options).remote(self.config, str(self.engine.node_cache))
        return ActorSlot(index, handle, handle.ready.remote())

    def _replace(self, slot: ActorSlot, why: str) -> None:
        if slot.dead:
            return
        slot.dead = True
        self.counts["actor_deaths"] += 1
        if self.counts["actor_deaths"] > RESTARTS_PER_ACTOR * self.engine.actors:
            raise EngineError(
                f"{self.counts['actor_deaths']} verifier actors died (last: {why:.300}); "
                "check the nodes' memory and logs (ray logs), or lower [verify] workers"
            )
        log.warning("verifier actor %d died (%s); starting a replacement", slot.index, why[:200])
        self.slots[self.slots.index(slot)] = self._start(slot.index)

    def wait_ready(self) -> RayVerifierPool:
        """Block until every actor has started (else work starts on the first ready one)."""
        for slot in self.slots:
            if not slot.ready and not slot.dead:
                ready, _ = self.ray.wait([slot.ready_ref], timeout=self.engine.start_timeout_s)
                if not ready:
                    raise EngineError(_no_room(self.engine))
                self._started(slot, slot.ready_ref)
        return self

    def stats(self) -> list[dict[str, Any]]:
        """Each live actor's node, pid and counters (files fetched, candidates verified)."""
        live = [s for s in self.slots if s.ready and not s.dead]
        return list(self.ray.get([s.handle.stats.remote() for s in live]))

    # ------------------------------------------------------------------ verification

    def verify(self, tasks: Sequence[Task], candidates: Iterable[Candidate]) -> Iterator[Verdict]:
        """One verdict per candidate, in input order, as they arrive."""
        run = PoolRun({t.task_id: t for t in tasks}, enumerate(candidates))
        while not run.finished():
            self._submit(run)
            yield from run.drain()
            if run.finished():
                break
            self._collect(run)
            yield from run.drain()

    def _submit(self, run: PoolRun) -> None:
        if run.suspects:  # each alone on an idle actor, so a death there is its own
            for idle in self._live():
                if run.suspects and idle.inflight == 0:
                    self._send(run, idle, run.suspects.popleft(), alone=True)
            return  # no other work until they are placed: actors drain and become idle
        while True:
            slot = self._open_slot()
            if slot is None:
                return
            if run.retry:
                self._send(run, slot, run.retry.popleft())
                continue
            staged = self._staged_batch(run)
            if staged is not None:
                self._send(run, *staged)
            elif run.exhausted or self._window_full(run):
                return
            else:
                self._read(run)

    def _window_full(self, run: PoolRun) -> bool:
        return run.read - run.next_out >= self.engine.window * self.engine.batch_size

    def _open_slot(self, home: int | None = None) -> ActorSlot | None:
        """The least-loaded live actor with room (or actor `home`, if live and with room)."""
        live = [s for s in self._live() if s.inflight < self.engine.inflight_per_actor]
        if home is not None:
            live = [s for s in live if s.index == home]
        return min(live, key=lambda s: s.inflight, default=None)

    def _read(self, run: PoolRun) -> None:
        """Stage input candidates by home actor (a stable hash of the task id, so one actor
        sees a task's candidates and computes its gold and duplicates once) until a staged
        batch is full or the window is."""
        while not run.exhausted and not self._window_full(run):
            item = next(run.source, None)
            if item is None:
                run.exhausted = True
                return
            run.read += 1
            staged = run.staging.setdefault(_home(item[1].task_id, self.engine.actors), [])
            staged.append(item)
            if len(staged) >= self.engine.batch_size:
                return

    def _staged_batch(self, run: PoolRun) -> tuple[ActorSlot, list[Item]] | None:
        """A full staged batch for its home actor; once the input is exhausted or the window
        full, any staged batch, to its home or else to any actor with room (affinity is an
        optimisation, never a wait); a batch whose home is dead or starting goes anywhere."""
        size = self.engine.batch_size
        stuck = run.exhausted or self._window_full(run)
        live = {s.index for s in self._live()}
        for home, staged in sorted(run.staging.items(), key=lambda kv: -len(kv[1])):
            if not staged or (len(staged) < size and not stuck):
                continue
            slot = self._open_slot(home if home in live else None)
            if slot is None and stuck:
                slot = self._open_slot()
            if slot is not None:
                run.staging[home] = staged[size:]
                return slot, staged[:size]
        return None

    def _live(self) -> list[ActorSlot]:
        return [s for s in self.slots if s.ready and not s.dead and not s.alone]

    def _send(self, run: PoolRun, slot: ActorSlot, batch: list[Item], alone: bool = False) -> None:
        payload = {}
        for _, candidate in batch:
            task = run.tasks.get(candidate.task_id)
            if task is not None and task.task_id not in payload:
                if task.task_id not in run.refs:
                    run.refs[task.task_id] = self._shipper.refs(task)
                payload[task.task_id] = (task, run.refs[task.task_id])
        ref = slot.handle.verify_batch.remote(payload, [c for _, c in batch])
        self.counts["batches"] += 1
        run.pending[ref] = (slot, batch, self.counts["batches"])
        slot.inflight += 1
        slot.alone = alone

    def _collect(self, run: PoolRun) -> None:
        starting = {s.ready_ref: s for s in self.slots if not s.ready and not s.dead}
        waiting = [*run.pending, *starting]
        timeout = None if run.pending else self.engine.start_timeout_s
        ready, _ = self.ray.wait(waiting, num_returns=1, timeout=timeout)
        if not ready:
            raise EngineError(_no_room(self.engine))
        for ref in ready:
            if ref in starting:
                self._started(starting[ref], ref)
            else:
                self._finished(run, ref)

    def _started(self, slot: ActorSlot, ref: Any) -> None:
        try:
            slot.info = self.ray.get(ref)
            slot.ready = True
        except self.ray.exceptions.RayActorError as exc:
            self._replace(slot, f"it failed to start: {exc}")

    def _finished(self, run: PoolRun, ref: Any) -> None:
        errors = self.ray.exceptions
        slot, batch, seq = run.pending.pop(ref)
        slot.inflight -= 1
        slot.alone = False
        try:
            self._record(run, batch, self.ray.get(ref))
        except errors.RayActorError as exc:
            self._replace(slot, str(exc))
            self._after_death(run, slot, (seq, None, batch))
        except errors.ObjectLostError:  # the result, not the actor, was lost: just resend
            self.counts["lost_results"] += 1
            run.retry.append(batch)
        except errors.RayTaskError as exc:  # a bug, as the local engine would raise it
            raise exc.as_instanceof_cause() from None

    def _record(self, run: PoolRun, batch: list[Item], verdicts: list[Verdict]) -> None:
        for (index, _), verdict in zip(batch, verdicts, strict=True):
            run.done[index] = verdict
            run.deaths.pop(index, None)

    def _after_death(
        self, run: PoolRun, slot: ActorSlot, failed: tuple[int, Any, list[Item]]
    ) -> None:
        """An actor runs its batches one at a time in the order sent: of the batches it held,
        the first that failed is blamed (its candidates become suspects); the rest are resent
        as they were. A batch that finished before the death keeps its verdicts. The reply of
        a batch that finished just before the death can be lost with the process, so the
        blame can land on the batch before the killer's: its candidates then pass alone,
        and the killer, resent, is blamed at its next kill. A suspect runs alone on an idle
        actor, so a death while it runs is its own (or the node's)."""
        held = [(seq, r, b) for r, (s, b, seq) in run.pending.items() if s is slot]
        for _, ref, _ in held:
            del run.pending[ref]
        blamed = False
        for _, ref, other in sorted([failed, *held], key=lambda h: h[0]):
            if ref is not None:
                try:
                    self._record(run, other, self.ray.get(ref))
                    continue
                except (self.ray.exceptions.RayActorError, self.ray.exceptions.ObjectLostError):
                    pass
            if blamed:
                run.retry.append(other)
            else:
                self._blame(run, slot, other)
                blamed = True

    def _blame(self, run: PoolRun, slot: ActorSlot, batch: list[Item]) -> None:
        where = f"node {slot.info.get('node_id', '?')[:12]} ({slot.info.get('ip', '?')})"
        for index, candidate in batch:
            run.deaths[index] += 1
            deaths = run.deaths[index]
            if deaths >= self.engine.kills_before_verdict:
                task = run.tasks.get(candidate.task_id)
                run.done[index] = killed_verdict(task, candidate, deaths, where)
                run.deaths.pop(index)
                self.counts["killed_verdicts"] += 1
            else:  # alone, so a candidate that kills actors is told from its batch-mates
                run.suspects.append([(index, candidate)])
                self.counts["retried"] += 1

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        if not self.engine.pool_name:  # named actors are shared with other processes
            for slot in self.slots:
                self.ray.kill(slot.handle, no_restart=True)
        self.slots = []
        if self._started_ray:
            self.ray.shutdown()

    def __enter__(self) -> RayVerifierPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def killed_verdict(task: Task | None, candidate: Candidate, deaths: int, where: str) -> Verdict:
    """The local engine's verdict for a candidate that kills what runs it, as its kind
    reports a killed worker (SQL: resource_limit, code: crash; unknown task: resource_limit)."""
    unknown = (Reason.RESOURCE_LIMIT, "execute")  # a task the actor never got
    reason, check = kind_of(task).killed if task is not None else unknown
    detail = (f"the verifier actor died {deaths} times while this candidate was in flight "
              f"(last on {where}); not retried again")  # fmt: skip
    return Verdict(
        candidate.task_id, candidate.candidate_id, False, reason, detail,
        checks=(CheckOutcome(check, CheckStatus.FAILED, detail),),
        evidence={"engine": "ray", "actor_deaths": deaths},
    )  # fmt: skip


def _home(task_id: str, actors: int) -> int:
    return zlib.crc32(task_id.encode("utf-8", "backslashreplace")) % actors


def _no_room(engine: EngineConfig) -> str:
    return (
        f"no verifier actor started within {engine.start_timeout_s:.0f} s: the cluster lacks "
        f"{engine.cpus_per_actor} free CPU(s) per actor; lower [engine] actors or "
        "cpus_per_actor, or add nodes"
    )
