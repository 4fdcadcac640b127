"""A seccomp filter for the candidate process: no new namespaces, mounts or memfds.

bubblewrap 0.8's ``--disable-userns`` needs ``--unshare-user``, which the sandbox cannot use
(it runs bwrap as root without a user namespace so that each job can drop to its own uid), so
the candidate's process installs this filter itself, after its private /tmp is mounted and
its uid dropped, with ``PR_SET_NO_NEW_PRIVS``. Denied with EPERM:

- new namespaces: ``unshare``, ``setns``, ``clone`` with any CLONE_NEW* flag (a user namespace
  would give the candidate CAP_SYS_ADMIN over a tmpfs of its own, outside every size cap);
  ``clone3`` answers ENOSYS so that libc falls back to ``clone``, whose flags are visible;
- mounts: ``mount``, ``umount2``, ``pivot_root`` and the new mount API;
- memory outside RLIMIT_AS: ``memfd_create``, ``memfd_secret``;
- kernel attack surface an honest solution never needs: ``bpf``, ``userfaultfd``,
  ``perf_event_open``, ``io_uring_*``, ``keyctl``/``add_key``/``request_key``, ``ptrace``;
- every system call of another ABI (x32, i386 via ``int 0x80``), whose numbers differ.

Only x86_64 and aarch64 are known; elsewhere `install` returns False and says so.
This module runs inside the sandbox: it must not import `rlaif_sql`.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

# classic BPF
_LD_W_ABS, _JEQ_K, _JSET_K, _JGE_K, _RET_K = 0x20, 0x15, 0x45, 0x35, 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_NR, _ARCH, _ARG0_LOW = 0, 4, 16  # offsets in struct seccomp_data (little endian)
_CLONE_NEW = 0x7E020080  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2

_GENERIC_NEW = {  # numbers shared by x86_64 and aarch64 (the "new" syscall table)
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "memfd_secret": 447,
}  # fmt: skip
_TABLES = {
    "x86_64": (0xC000003E, 56, {
        "memfd_create": 319, "unshare": 272, "setns": 308, "mount": 165, "umount2": 166,
        "pivot_root": 155, "bpf": 321, "userfaultfd": 323, "perf_event_open": 298,
        "keyctl": 250, "add_key": 248, "request_key": 249, "ptrace": 101, **_GENERIC_NEW,
    }),
    "aarch64": (0xC00000B7, 220, {
        "memfd_create": 279, "unshare": 97, "setns": 268, "mount": 40, "umount2": 39,
        "pivot_root": 41, "bpf": 280, "userfaultfd": 282, "perf_event_open": 241,
        "keyctl": 219, "add_key": 217, "request_key": 218, "ptrace": 117, **_GENERIC_NEW,
    }),
}  # fmt: skip
_CLONE3 = 435
_X32_BIT = 0x40000000


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes | None:
    """The filter's instructions for this machine, or None when the ABI is unknown."""
    table = _TABLES.get(machine or platform.machine())
    if table is None:
        return None
    arch, clone_nr, denied = table
    eperm, enosys = _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    out = [_ins(_LD_W_ABS, _ARCH), _ins(_JEQ_K, arch, 1, 0), _ins(_RET_K, eperm)]
    out.append(_ins(_LD_W_ABS, _NR))
    if arch == 0xC000003E:
        out += [_ins(_JGE_K, _X32_BIT, 0, 1), _ins(_RET_K, eperm)]
    out += [_ins(_JEQ_K, _CLONE3, 0, 1), _ins(_RET_K, enosys)]
    for number in sorted(set(denied.values())):
        out += [_ins(_JEQ_K, number, 0, 1), _ins(_RET_K, eperm)]
    out += [_ins(_JEQ_K, clone_nr, 0, 3), _ins(_LD_W_ABS, _ARG0_LOW)]
    out += [_ins(_JSET_K, _CLONE_NEW, 0, 1), _ins(_RET_K, eperm)]
    out.append(_ins(_RET_K, _RET_ALLOW))
    return b"".join(out)


def install(code: bytes | None) -> bool:
    """Load `code` for this process and its future children; False when it is None."""
    if code is None:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    count = len(code) // 8
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HxxxxxxP", count, ctypes.addressof(buffer))
    fprog_buffer = ctypes.create_string_buffer(fprog, len(fprog))
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, fprog_buffer, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
    return True
