"""Hypothesis strategies for the fuzz tests: byte mutations of seeds, and tree mutations.

Mutations are what a fuzzer does (bit flips, truncation, splices, inserted length bombs); tree
mutations change one node of a decoded structure (replace, delete, type swap), which is what
gets a fuzzed value past canonical-encoding checks once the envelope is re-signed.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, Final

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Deterministic and database-free, so CI runs the same examples every time; no deadline (the
# machine is shared and noisy: a timing assertion would be a flaky one).
FUZZ: Final = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Byte strings a decoder must survive anywhere: msgpack headers declaring huge lengths (str32,
# bin32, array32, map32, ext32), a deep nest, never-used and extension type bytes, a NaN
# float64, JSON that is deep, has a 5000-digit integer, a lone surrogate or a byte-order mark.
BOMBS: Final[tuple[bytes, ...]] = (
    b"\xdb\xff\xff\xff\xff",
    b"\xdb\x7f\xff\xff\xff",
    b"\xc6\xff\xff\xff\xff",
    b"\xdd\xff\xff\xff\xff",
    b"\xdf\xff\xff\xff\xff",
    b"\xc9\xff\xff\xff\xff\x01",
    b"\xda\xff\xff",
    b"\xde\xff\xff",
    b"\xdc\xff\xff",
    b"\x91" * 300,
    b"\x81\xa1a" * 300,
    b"\xc1",
    b"\xd6\xff\x00\x00\x00\x00",
    b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",
    b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
    b"[" * 3000,
    b'{"a":' * 1000,
    b"1" * 5000,
    b"1e999",
    b"NaN",
    b'"\\ud800"',
    b"\xef\xbb\xbf",
    b"\xff\xfe",
)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with one to four byte-level mutations."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(
            st.sampled_from(["flip", "set", "truncate", "delete", "insert", "splice", "bomb"])
        )
        at = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            i = min(at, len(data) - 1)
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[at:]
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "splice":
            other = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, len(other)))
            data[at:] = other[start:]
        else:
            data[at:at] = draw(st.sampled_from(BOMBS))
    return bytes(data)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=40)
    | st.sampled_from(["ITA-GDF", "MLT-AFM", "central-med", "routes", "alert", "AMBER"])
    | st.integers(4000, 6000).map(lambda n: "x" * n)
    # RFC 3339 times from year 1 to 9999, in and out of the range the wire can carry.
    | st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat().replace("+00:00", "Z"))
)
json_values: Final = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
msgpack_values: Final = st.recursive(
    _scalars | st.binary(max_size=100) | st.sampled_from([bytes(80), bytes(64), bytes(16)]),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=12) | st.integers(0, 9), inner, max_size=5)
    ),
    max_leaves=20,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _swap(value: Any) -> Any:
    """The same content under another type: what a careless or hostile encoder produces."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return list(value[:8])
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        return list(value.values())
    return [value]


@st.composite
def tree_mutated(draw: st.DrawFn, base: Any, values: st.SearchStrategy[Any]) -> Any:
    """``base`` (a decoded document) with one to three nodes replaced, deleted or type-swapped."""

    def copy(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: copy(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [copy(v) for v in obj]
        return obj

    doc = copy(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        op = draw(st.sampled_from(["replace", "delete", "swap", "duplicate"]))
        if not path:
            doc = draw(values) if op == "replace" else _swap(doc)
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if op == "replace":
            parent[key] = draw(values)
        elif op == "delete":
            del parent[key]
        elif op == "swap":
            parent[key] = _swap(parent[key])
        elif isinstance(parent, list):
            parent.extend([parent[key]] * draw(st.integers(1, 300)))
        else:
            parent[key] = [parent[key]] * draw(st.integers(2, 300))
    return doc
