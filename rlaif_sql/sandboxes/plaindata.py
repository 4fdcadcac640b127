"""Plain data between the trusted test process and the candidate process, and the framing.

Only these cross the pipe: None, bool, int, float, complex, str, bytes, the built-in types
themselves (`int`, `str`, ... as values, as MBPP passes them), and list, tuple, dict, set and
frozenset of them. The sending side turns a value into a JSON tree (`to_wire`); the receiving
side rebuilds it from that tree (`from_wire`) using only built-in constructors, so whatever the
candidate sends, the trusted side holds built-in objects it made itself: no candidate class,
no `__eq__` that lies, no pickle. JSON is parsed by the C decoder of the standard library.

Wire shapes: null/true/false/str/float as JSON; ints as JSON numbers below 2**63, else
``{"i": hex}``; lists as arrays; ``{"t": [...]}`` tuple, ``{"s": [...]}`` set,
``{"f": [...]}`` frozenset, ``{"b": hex}`` bytes, ``{"d": [[k, v], ...]}`` dict,
``{"c": [re, im]}`` complex, ``{"y": name}`` a built-in type.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON.
This module runs inside the sandbox: it must not import `rlaif_sql`.
"""

from __future__ import annotations

import json
import socket
import struct
from collections import Counter, OrderedDict, defaultdict
from typing import Any

MAX_DEPTH = 200
HEADER = struct.Struct(">I")
_BIG = 1 << 63
_DICT_LIKE = (dict, Counter, OrderedDict, defaultdict)  # library dicts travel as a plain dict
_TAGS: dict[type, str] = {tuple: "t", set: "s", frozenset: "f"}
BUILTIN_TYPES: dict[str, type] = {
    t.__name__: t
    for t in (int, float, complex, str, bytes, bool, list, tuple, dict, set, frozenset, type(None))
}


class PlainDataError(ValueError):
    """A value is not plain data, or a wire tree does not describe one."""


class ProtocolError(Exception):
    """The peer broke the framing (bad length, bad JSON, closed mid-frame)."""


def to_wire(value: Any, depth: int = 0) -> Any:
    """The JSON tree of `value`; PlainDataError names the first value outside plain data."""
    if depth > MAX_DEPTH:
        raise PlainDataError(f"the value is nested deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if value is None or kind in (bool, str, float):
        return value
    if kind is int:
        return value if -_BIG < value < _BIG else {"i": format(value, "x")}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    name = getattr(value, "__name__", "") if kind is type else ""
    if name and BUILTIN_TYPES.get(name) is value:
        return {"y": name}
    if kind is list:
        return [to_wire(v, depth + 1) for v in value]
    tag = _TAGS.get(kind)
    if tag is not None:
        return {tag: [to_wire(v, depth + 1) for v in value]}
    if kind in _DICT_LIKE:
        return {"d": [[to_wire(k, depth + 1), to_wire(v, depth + 1)] for k, v in value.items()]}
    raise PlainDataError(
        f"a value of type {kind.__module__}.{kind.__qualname__} is not plain data (None, bool, "
        "int, float, complex, str, bytes, built-in types, list, tuple, dict, set, frozenset)"
    )


def from_wire(tree: Any, depth: int = 0) -> Any:
    """Rebuild a value from its JSON tree with built-in constructors only."""
    if depth > MAX_DEPTH:
        raise PlainDataError(f"the value is nested deeper than {MAX_DEPTH} levels")
    if tree is None or type(tree) in (bool, str, float, int):
        return tree
    if type(tree) is list:
        return [from_wire(v, depth + 1) for v in tree]
    if type(tree) is not dict or len(tree) != 1:
        raise PlainDataError("malformed plain-data tree")
    ((tag, body),) = tree.items()
    try:
        if tag == "i" and type(body) is str:
            return int(body, 16)
        if tag == "b" and type(body) is str:
            return bytes.fromhex(body)
        if tag == "y" and type(body) is str and body in BUILTIN_TYPES:
            return BUILTIN_TYPES[body]
        if tag == "c" and type(body) is list and [type(p) in (int, float) for p in body] == [1, 1]:
            return complex(body[0], body[1])
        if tag in ("t", "s", "f") and type(body) is list:
            items = [from_wire(v, depth + 1) for v in body]
            return {"t": tuple, "s": set, "f": frozenset}[tag](items)
        if tag == "d" and type(body) is list:
            return {from_wire(k, depth + 1): from_wire(v, depth + 1) for k, v in _pairs(body)}
    except (TypeError, ValueError) as exc:  # unhashable set member or key, bad hex
        raise PlainDataError(f"malformed plain-data tree: {exc}") from exc
    raise PlainDataError(f"malformed plain-data tree (tag {tag!r})")


def _pairs(body: list[Any]) -> list[tuple[Any, Any]]:
    if not all(type(p) is list and len(p) == 2 for p in body):
        raise PlainDataError("malformed plain-data dict")
    return [(p[0], p[1]) for p in body]


def encode(message: dict[str, Any]) -> bytes:
    """One frame: header and JSON (the message's values are wire trees already)."""
    body = json.dumps(message, separators=(",", ":")).encode("utf-8", "surrogatepass")
    return HEADER.pack(len(body)) + body


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(encode(message))


def recv(sock: socket.socket, max_bytes: int) -> dict[str, Any] | None:
    """The next message, None on a clean end of stream; ProtocolError on anything else."""
    header = _read_exactly(sock, HEADER.size, allow_eof=True)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > max_bytes:
        raise ProtocolError(f"a message of {size} bytes is over the {max_bytes}-byte limit")
    body = _read_exactly(sock, size, allow_eof=False) or b""
    try:
        message = json.loads(body.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"a message is not valid JSON: {exc}") from exc
    if type(message) is not dict:
        raise ProtocolError("a message is not a JSON object")
    return message


def _read_exactly(sock: socket.socket, size: int, allow_eof: bool) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            if allow_eof and not chunks:
                return None
            raise ProtocolError("the stream ended in the middle of a message")
        chunks.extend(chunk)
    return bytes(chunks)
