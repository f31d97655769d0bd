"""GrowthBook-compatible assignment of users to experiment variations.

A user gets the same variation here as from GrowthBook's SDKs for the same experiment:
FNV-1a 32-bit hashing (versions 1 and 2), seed, coverage, weights and namespaces follow
GrowthBook's published algorithm and test vectors (``cases.json``). The module uses the
standard library only, because the application SDK imports it; when ``fnv-hash-fast`` is
installed (Podium's own environment has it), its C hash replaces the Python loop.

``assign`` is the reference, step by step as GrowthBook runs an experiment;
``CompiledExperiment`` gives the same answers with the per-experiment work done once,
for SDKs that evaluate the same experiment for many users.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence
from functools import cache

ByteHash = Callable[[bytes], int]


def _c_hash() -> ByteHash | None:
    """FNV-1a 32 in C (``fnv-hash-fast``) when the process has it: the same hash, many times sooner.

    An app's own environment may not have it; the pure-Python hash gives the same answers.
    """
    try:
        from fnv_hash_fast import fnv1a_32
    except ImportError:
        return None
    return fnv1a_32


_fnv1a32_bytes = _c_hash()

BucketRange = tuple[float, float]
"""A half-open interval ``[start, end)`` of hash values that selects one variation."""

Namespace = tuple[str, float, float]
"""``(namespace id, start, end)``: experiments whose ranges in one namespace do not overlap
never share a user."""

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK32 = 0xFFFFFFFF

# GrowthBook replaces weight vectors whose sum falls outside this tolerance with equal weights.
_WEIGHT_SUM_MIN = 0.99
_WEIGHT_SUM_MAX = 1.01

_V2_BUCKETS = 10_000  # hash version 2 yields n = k / 10000 for an integer k


def fnv1a32(value: str) -> int:
    """FNV-1a 32-bit hash of ``value``'s UTF-16 code units.

    Code units are what JavaScript's ``charCodeAt`` sees, which is what GrowthBook's SDKs
    hash; for ASCII they are the bytes.
    """
    if _fnv1a32_bytes is not None and value.isascii():
        return _fnv1a32_bytes(value.encode())
    return _fnv1a32_from(_FNV_OFFSET, value)


def _fnv1a32_from(state: int, value: str) -> int:
    """Continue an FNV-1a 32-bit hash from ``state`` over ``value``'s UTF-16 code units."""
    if value.isascii():
        for unit in value.encode():
            state = ((state ^ unit) * _FNV_PRIME) & _MASK32
        return state
    data = value.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(data), 2):
        state = ((state ^ (data[i] | data[i + 1] << 8)) * _FNV_PRIME) & _MASK32
    return state


# Named as in GrowthBook's SDKs; shadowing the builtin inside this module is deliberate.
def hash(seed: str, value: str, version: int) -> float | None:
    """The hash of ``value`` under ``seed`` as a number in ``[0, 1)``; None for an unknown version.

    Version 1: ``(fnv1a32(value + seed) % 1000) / 1000``.
    Version 2: ``(fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000``.
    """
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10_000) / 10_000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def get_equal_weights(num_variations: int) -> list[float]:
    """``num_variations`` equal weights summing to 1 (an empty list below 1)."""
    if num_variations < 1:
        return []
    return [1 / num_variations] * num_variations


def _usable_weights(num_variations: int, weights: Sequence[float] | None) -> list[float]:
    """``weights`` when GrowthBook would use them, equal weights otherwise.

    GrowthBook uses a weight vector with one finite, non-negative number per variation
    summing to 1 within 0.01; anything else falls back to equal weights.
    """
    if weights is None or len(weights) != num_variations:
        return get_equal_weights(num_variations)
    if not all(isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w) and w >= 0 for w in weights):
        return get_equal_weights(num_variations)
    if not _WEIGHT_SUM_MIN <= sum(weights) <= _WEIGHT_SUM_MAX:
        return get_equal_weights(num_variations)
    return list(weights)


def get_bucket_ranges(
    num_variations: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[BucketRange]:
    """One ``[start, start + coverage * weight)`` range per variation, laid end to end by weight.

    Coverage is clamped to ``[0, 1]``; unusable weights become equal weights. Each range
    starts where the full-coverage range would, so raising coverage only adds users.
    """
    if coverage < 0:
        coverage = 0.0
    if coverage > 1:
        coverage = 1.0
    ranges: list[BucketRange] = []
    cumulative = 0.0
    for weight in _usable_weights(num_variations, weights):
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variation(n: float, ranges: Sequence[BucketRange]) -> int:
    """The index of the first range holding ``n``, or -1 when none does (the user is not exposed)."""
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


def in_namespace(user_id: str, namespace: Namespace) -> bool:
    """Whether the user falls in the namespace's ``[start, end)`` slice (hash version 1, seed ``__<id>``)."""
    name, start, end = namespace
    n = hash("__" + name, user_id, 1)
    return n is not None and start <= n < end


def assign(
    key: str,
    user_id: str,
    variations: Sequence[str],
    weights: Sequence[float] | None,
    coverage: float,
    seed: str | None = None,
    hash_version: int = 2,
    namespace: Namespace | None = None,
) -> str | None:
    """The variation GrowthBook would give ``user_id`` in experiment ``key``, or None when not exposed.

    Not exposed: fewer than two variations, an empty user id, outside the namespace, an
    unknown hash version, or a hash outside every variation's range. The seed defaults
    to the key (an empty seed too, as in GrowthBook).
    """
    if len(variations) < 2 or not user_id:
        return None
    if namespace is not None and not in_namespace(user_id, namespace):
        return None
    n = hash(seed or key, user_id, hash_version)
    if n is None:
        return None
    index = choose_variation(n, get_bucket_ranges(len(variations), coverage, weights))
    return variations[index] if index >= 0 else None


@cache
def _five_digit_states() -> array[int]:
    """FNV-1a state after hashing each 5-digit decimal string, indexed by its value.

    Hash version 2 hashes the decimal digits of a 32-bit number, which almost always has
    9 or 10 digits; starting from this table skips five of those steps. About 400 kB,
    built once per process in tens of milliseconds.
    """
    states = {d: ((_FNV_OFFSET ^ (48 + d)) * _FNV_PRIME) & _MASK32 for d in range(1, 10)}
    for _ in range(4):
        states = {v * 10 + d: ((s ^ (48 + d)) * _FNV_PRIME) & _MASK32 for v, s in states.items() for d in range(10)}
    table = array("I", [0]) * 100_000
    for value, state in states.items():
        table[value] = state
    return table


class CompiledExperiment:
    """One experiment's assignment rule, with everything that does not depend on the user done once.

    ``CompiledExperiment(...).assign(user_id)`` equals ``assign(...)`` with the same
    arguments for every user. For hash version 2 without a namespace it precomputes the
    FNV state after the seed, the variation of each of the 10,000 possible buckets, and
    the state after each 5-digit prefix of the inner hash's digits.
    """

    __slots__ = (
        "_accelerated",
        "_fast",
        "_outcomes",
        "_prefix_states",
        "_seed_bytes",
        "_seed_state",
        "_slot_by_bucket",
        "coverage",
        "hash_version",
        "key",
        "namespace",
        "ranges",
        "seed",
        "variations",
        "weights",
    )

    def __init__(
        self,
        key: str,
        variations: Sequence[str],
        weights: Sequence[float] | None = None,
        coverage: float = 1.0,
        seed: str | None = None,
        hash_version: int = 2,
        namespace: Namespace | None = None,
        accelerated: ByteHash | None = _fnv1a32_bytes,
    ) -> None:
        self.key = key
        self.variations = tuple(variations)
        self.weights = None if weights is None else tuple(weights)
        self.coverage = coverage
        self.seed = seed or key
        self.hash_version = hash_version
        self.namespace = namespace
        self.ranges = tuple(get_bucket_ranges(len(self.variations), coverage, weights))
        # Slot 0 is "not exposed"; slot i + 1 is variation i.
        self._outcomes: tuple[str | None, ...] = (None, *self.variations)
        self._fast = len(self.variations) >= 2 and hash_version == 2 and namespace is None
        # With a C hash, two calls beat the tables; the seed must be ASCII to hash it as bytes.
        self._accelerated = accelerated if self._fast and self.seed.isascii() else None
        self._seed_bytes = self.seed.encode() if self._accelerated is not None else b""
        self._seed_state = fnv1a32(self.seed)
        self._slot_by_bucket = self._bucket_slots() if self._fast else array("H")
        self._prefix_states = _five_digit_states() if self._fast and self._accelerated is None else array("I")

    def _bucket_slots(self) -> array[int]:
        """The slot of each hash-version-2 bucket ``k``, deciding ``k / 10000`` as ``choose_variation`` does."""
        slots = array("H", [0]) * _V2_BUCKETS
        for index, (start, end) in enumerate(self.ranges):
            k = max(0, math.floor(start * _V2_BUCKETS) - 1)
            while k < _V2_BUCKETS and k / _V2_BUCKETS < end:
                # The first matching range wins, as in choose_variation.
                if slots[k] == 0 and start <= k / _V2_BUCKETS:
                    slots[k] = index + 1
                k += 1
        return slots

    def assign(self, user_id: str) -> str | None:
        """The user's variation, or None when the user is not exposed."""
        if not (self._fast and user_id and user_id.isascii()):
            return assign(
                self.key,
                user_id,
                self.variations,
                self.weights,
                self.coverage,
                self.seed,
                self.hash_version,
                self.namespace,
            )
        fnv = self._accelerated
        if fnv is not None:
            return self._outcomes[self._slot_by_bucket[fnv(b"%d" % fnv(self._seed_bytes + user_id.encode())) % 10_000]]
        # fnv1a32(str(fnv1a32(seed + user_id))) % 10000, with the seed already hashed. The
        # 32-bit mask is applied once at the end: XOR with a byte and multiplication both
        # keep the low 32 bits exact, so masking after every byte changes nothing.
        inner = self._seed_state
        for unit in user_id.encode():
            inner = (inner ^ unit) * 16777619
        inner &= 0xFFFFFFFF
        if inner >= 1_000_000_000:
            outer = self._prefix_states[inner // 100_000]
            for digit in b"%05d" % (inner % 100_000):
                outer = (outer ^ digit) * 16777619
        elif inner >= 100_000_000:
            outer = self._prefix_states[inner // 10_000]
            for digit in b"%04d" % (inner % 10_000):
                outer = (outer ^ digit) * 16777619
        else:
            outer = 2166136261
            for digit in str(inner).encode():
                outer = (outer ^ digit) * 16777619
        return self._outcomes[self._slot_by_bucket[(outer & 0xFFFFFFFF) % 10_000]]
