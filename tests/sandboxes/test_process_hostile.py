"""Hostile candidates: each gets a clear failing verdict, quickly, and leaves nothing behind.

Every case runs with small limits (2 s, 256 MB) through the real sandbox. After each case the
host /proc is scanned for processes of the worker uids (none may be left) and the host file
system is checked for the files the candidate tried to create (none may exist).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rlaif_sql.models import Candidate, CodeTask, Reason, Verdict
from rlaif_sql.sandboxes.process import CodeSandbox, CodeSandboxConfig
from rlaif_sql.verifiers.code import check

TESTS = """\
from solution import add

def test_small():
    assert add(1, 2) == 3

def test_negative():
    assert add(-1, -2) == -3
"""
TASK = CodeTask("add", "", "add", TESTS, timeout_s=2.0, memory_mb=256)
GOOD = "def add(a, b):\n    return a + b\n"
MARK = "/tmp/rlaif-hostile-marker"


@pytest.fixture(scope="module")
def box():
    # a uid range of its own: on a shared machine other test runs use the default one, and
    # a uid's processes are what this module counts
    config = CodeSandboxConfig(
        workers=2, tmp_mb=64, file_size_mb=8, uid_base=62_000 + os.getpid() % 500
    )
    with CodeSandbox(config) as sandbox:
        yield sandbox


def leftover_pids(uids: tuple[int, ...]) -> list[int]:
    """Host processes owned by the sandbox's job uids (there must be none between jobs)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        if int(uid_line.split()[1]) in uids:
            found.append(int(entry))
    return found


def verify(box: CodeSandbox, body: str) -> tuple[Verdict, float]:
    started = time.monotonic()
    verdict = check(Candidate("add", "hostile", GOOD + body), TASK, sandbox=box)
    elapsed = time.monotonic() - started
    assert leftover_pids(box.worker_uids) == []
    assert not os.path.exists(MARK)
    return verdict, elapsed


def test_good_candidate_passes_in_bwrap(box):
    verdict, _ = verify(box, "")
    assert verdict.passed, verdict.detail
    assert verdict.evidence["isolation"] == "bwrap"
    assert verdict.evidence["passed"] == verdict.evidence["collected"] == 2


CASES = {
    "infinite_loop": ("while True:\n    pass\n", {Reason.TIMEOUT}),
    "sleep_forever": ("import time\ntime.sleep(10**6)\n", {Reason.TIMEOUT}),
    "memory_bomb": ("x = bytearray(2 * 1024**3)\n", {Reason.MEMORY_LIMIT}),
    "memory_bomb_list": ("x = [0] * (1 << 33)\n", {Reason.MEMORY_LIMIT}),
    "fork_bomb": (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        {Reason.TIMEOUT},
    ),
    "thread_bomb": (
        "import threading, time\n"
        "for _ in range(10_000):\n"
        "    threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n",
        {Reason.IMPORT_ERROR, Reason.MEMORY_LIMIT, Reason.CRASH},
    ),
    "network_connect": (
        "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)\n",
        {Reason.FORBIDDEN},
    ),
    "dns_lookup": ("import socket\nsocket.getaddrinfo('example.com', 80)\n", {Reason.FORBIDDEN}),
    "read_etc_passwd": ("open('/etc/passwd').read()\n", {Reason.IMPORT_ERROR}),
    "read_ssh_key": (
        "import os\nopen(os.path.expanduser('/root/.ssh/id_rsa')).read()\n",
        {Reason.IMPORT_ERROR, Reason.FORBIDDEN},
    ),
    "write_outside_tmp": (
        f"open('{MARK}', 'w').write('x')\nopen('/usr/evil', 'w')\n",
        {Reason.FORBIDDEN},
    ),
    "fill_disk": (
        "with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * (1 << 20))\n",
        {Reason.FORBIDDEN},
    ),
    "stdout_flood": (
        "import sys\nfor _ in range(200):\n    sys.stdout.write('x' * (1 << 20))\n",
        {Reason.OK, Reason.IMPORT_ERROR, Reason.FORBIDDEN},
    ),
    "kill_parent": ("import os\nos.kill(os.getppid(), 9)\n", {Reason.FORBIDDEN}),
    "ignore_sigterm_and_loop": (
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n",
        {Reason.TIMEOUT},
    ),
    "double_fork_daemon": (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(1000)\n"
        "    os._exit(0)\n",
        {Reason.OK},
    ),
    "segfault": ("import ctypes\nctypes.string_at(0)\n", {Reason.CRASH}),
    "input_call": ("input()\n", {Reason.IMPORT_ERROR}),
    "exit_zero_at_import": ("import os\nos._exit(0)\n", {Reason.CRASH}),
    "sys_exit_at_import": ("import sys\nsys.exit(0)\n", {Reason.IMPORT_ERROR}),
    "exit_zero_at_exit": (
        "import atexit, os\natexit.register(lambda: os._exit(0))\ndef add(a, b):\n    return 0\n",
        {Reason.TEST_FAILURE},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_candidate_fails_cleanly(box, name):
    body, reasons = CASES[name]
    verdict, elapsed = verify(box, body)
    assert verdict.reason in reasons, (name, verdict.reason, verdict.detail)
    assert elapsed < 15, f"{name} took {elapsed:.1f}s"
    assert verdict.evidence["isolation"] == "bwrap"
    # the worker survived: the next candidate in the same pool still passes
    assert verify(box, "")[0].passed
