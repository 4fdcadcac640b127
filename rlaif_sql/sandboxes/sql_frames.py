"""The SQL worker's wire format and its wait for requests, shared by the worker process
(`sql_worker`, which loads this file as a plain sibling module: standard library only) and
its parent (`sql_process`). A frame is an 8-byte little-endian length and a pickle."""

from __future__ import annotations

import os
import pickle
import select
import struct
import time
from typing import Any, BinaryIO

HEADER = struct.Struct("<Q")
SPIN_S = 0.001
"""After answering, poll for the next request this long before blocking: waking a blocked
process costs ~100 us on virtual machines, as much as a small query itself."""


def frames(*payloads: bytes) -> list[bytes]:
    out: list[bytes] = []
    for payload in payloads:
        out += [HEADER.pack(len(payload)), payload]
    return out


def write_all(fd: int, parts: list[bytes]) -> None:
    """Write `parts` with as few syscalls as possible (writev), surviving partial writes."""
    views = [memoryview(p) for p in parts if p]
    while views:
        written = os.writev(fd, views[:512])
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if written:
            views[0] = views[0][written:]


def spin_for_input(poller: select.poll, seconds: float) -> bool:
    """Busy-poll up to `seconds`; True when a request arrived meanwhile."""
    end = time.perf_counter() + seconds
    while not poller.poll(0):
        if time.perf_counter() >= end:
            return False
    return True


class Spinner:
    """Spin after an answer only while requests come back-to-back.

    When the parent does seconds of its own work between queries (parse, policy, compare in
    a checker process), a spin only burns a core other processes need; so after a spin that
    saw no request the worker blocks instead, until a request again arrives within SPIN_S.
    """

    def __init__(self, poller: select.poll) -> None:
        self.poller = poller
        self.enabled = True
        self.idle_since = 0.0

    def wait(self) -> None:
        """Called after an answer is written, before the next (blocking) read."""
        self.idle_since = time.perf_counter()
        if self.enabled:
            self.enabled = spin_for_input(self.poller, SPIN_S)

    def woke(self) -> None:
        """Called when a request was read: a short gap turns spinning back on."""
        if not self.enabled and time.perf_counter() - self.idle_since < SPIN_S:
            self.enabled = True


def read_frame(stream: BinaryIO) -> Any:
    """The next pickled object, or None at end of input (the parent closed the pipe)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    return pickle.loads(stream.read(size))
