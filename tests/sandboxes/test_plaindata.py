"""The plain-data codec between the judge and the candidate: exact round trips, and nothing
but built-in values out of any wire tree."""

from __future__ import annotations

import json
import math
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlaif_sql.sandboxes import plaindata
from rlaif_sql.sandboxes.plaindata import PlainDataError, ProtocolError, from_wire, to_wire

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
scalars |= st.binary() | st.complex_numbers(allow_nan=False) | st.sampled_from([int, str, bool])
hashable = scalars | st.tuples(scalars, scalars) | st.frozensets(scalars, max_size=3)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.sets(hashable, max_size=4) | st.dictionaries(hashable, inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


def same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


@given(values)
@settings(max_examples=150, deadline=None)
def test_plain_values_round_trip_with_their_exact_types(value):
    tree = json.loads(json.dumps(to_wire(value)))
    assert same(from_wire(tree), value)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text() | st.floats(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(max_size=2), inner),
    )
)
@settings(max_examples=300, deadline=None)
def test_any_wire_tree_gives_builtin_values_or_a_plain_data_error(tree):
    try:
        value = from_wire(tree)
    except PlainDataError:
        return
    stack = [value]
    while stack:
        item = stack.pop()
        assert type(item).__module__ == "builtins"
        if isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.items())


class Lying:
    def __eq__(self, other):
        return True


@pytest.mark.parametrize(
    "value",
    [Lying(), [Lying()], type("I", (int,), {})(3), (x for x in ()), math, object, {1: Lying()}],
)
def test_everything_else_is_refused_by_name(value):
    with pytest.raises(PlainDataError, match="not plain data"):
        to_wire(value)


def test_deep_nesting_and_unhashable_members_are_refused():
    deep: list = []
    for _ in range(500):
        deep = [deep]
    with pytest.raises(PlainDataError, match="deeper"):
        to_wire(deep)
    with pytest.raises(PlainDataError):
        from_wire({"s": [[1, 2]]})  # a list inside a set


def test_frames_enforce_the_size_limit_and_report_truncation():
    left, right = socket.socketpair()
    with left, right:
        plaindata.send(left, {"ok": to_wire((1, 2))})
        assert from_wire(plaindata.recv(right, 1024)["ok"]) == (1, 2)
        left.sendall(struct.pack(">I", 10_000) + b"{}")
        with pytest.raises(ProtocolError, match="limit"):
            plaindata.recv(right, 1024)
    a, b = socket.socketpair()
    with b:
        a.sendall(struct.pack(">I", 10) + b"{}")
        a.close()
        with pytest.raises(ProtocolError, match="middle"):
            plaindata.recv(b, 1024)
