"""Assignment against GrowthBook's published test vectors and against the growthbook package itself.

The vectors are copied from GrowthBook's shared SDK test cases, ``packages/sdk-js/test/cases.json``
in the growthbook/growthbook repository (spec version 0.5.4): the ``hash``, ``getBucketRange``,
``chooseVariation``, ``inNamespace``, ``getEqualWeights`` and ``run`` sections, plus the buckets
the ``feature`` and ``stickyBucket`` sections report for experiment rules.
"""

from __future__ import annotations

import random
import uuid

import pytest
from growthbook import Experiment, GrowthBook

from podium.experiments.assign import (
    CompiledExperiment,
    assign,
    choose_variation,
    fnv1a32,
    get_bucket_ranges,
    get_equal_weights,
    hash,
    in_namespace,
)

HASH_VECTORS = [
    ("", "a", 1, 0.22),
    ("", "b", 1, 0.077),
    ("b", "a", 1, 0.946),
    ("ef", "d", 1, 0.652),
    ("asdf", "8952klfjas09ujk", 1, 0.549),
    ("", "123", 1, 0.011),
    ("", '___)((*":&', 1, 0.563),
    ("seed", "a", 2, 0.0505),
    ("seed", "b", 2, 0.2696),
    ("foo", "ab", 2, 0.2575),
    ("foo", "def", 2, 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 2, 0.124),
    ("90850943850283058242805", "123", 2, 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 2, 0.0128),
    ("abc", "def", 99, None),
]


@pytest.mark.parametrize(("seed", "value", "version", "expected"), HASH_VECTORS)
def test_hash_matches_growthbook_vectors(seed: str, value: str, version: int, expected: float | None) -> None:
    assert hash(seed, value, version) == expected


def test_fnv1a32_known_values() -> None:
    # The FNV-1a 32-bit reference values: the offset basis for "", and "a" and "foobar".
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968


def test_fnv1a32_hashes_utf16_code_units() -> None:
    # "é" is one UTF-16 unit (0x00E9); "😀" is the surrogate pair 0xD83D 0xDE00, as JavaScript sees it.
    def by_units(units: list[int]) -> int:
        state = 0x811C9DC5
        for unit in units:
            state = ((state ^ unit) * 0x01000193) & 0xFFFFFFFF
        return state

    assert fnv1a32("é") == by_units([0xE9])
    assert fnv1a32("a😀") == by_units([0x61, 0xD83D, 0xDE00])


BUCKET_RANGE_VECTORS = [
    ("normal 50/50", (2, 1, None), [(0, 0.5), (0.5, 1)]),
    ("reduced coverage", (2, 0.5, None), [(0, 0.25), (0.5, 0.75)]),
    ("zero coverage", (2, 0, None), [(0, 0), (0.5, 0.5)]),
    ("4 variations", (4, 1, None), [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ("uneven weights", (2, 1, [0.4, 0.6]), [(0, 0.4), (0.4, 1)]),
    ("uneven weights, 3 variations", (3, 1, [0.2, 0.3, 0.5]), [(0, 0.2), (0.2, 0.5), (0.5, 1)]),
    ("uneven weights, reduced coverage", (3, 0.2, [0.2, 0.3, 0.5]), [(0, 0.04), (0.2, 0.26), (0.5, 0.6)]),
    ("negative coverage", (2, -0.2, None), [(0, 0), (0.5, 0.5)]),
    ("coverage above 1", (2, 1.5, None), [(0, 0.5), (0.5, 1)]),
    ("weights sum below 1", (2, 1, [0.4, 0.1]), [(0, 0.5), (0.5, 1)]),
    ("weights sum above 1", (2, 1, [0.7, 0.6]), [(0, 0.5), (0.5, 1)]),
    (
        "weights length not equal to num variations",
        (4, 1, [0.4, 0.4, 0.2]),
        [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)],
    ),
    ("weights sum almost equals 1", (2, 1, [0.4, 0.5999]), [(0, 0.4), (0.4, 0.9999)]),
]


@pytest.mark.parametrize(("name", "args", "expected"), BUCKET_RANGE_VECTORS, ids=[v[0] for v in BUCKET_RANGE_VECTORS])
def test_bucket_ranges_match_growthbook_vectors(
    name: str, args: tuple[int, float, list[float] | None], expected: list[tuple[float, float]]
) -> None:
    ranges = get_bucket_ranges(*args)
    assert len(ranges) == len(expected)
    for (start, end), (want_start, want_end) in zip(ranges, expected, strict=True):
        assert start == pytest.approx(want_start)
        assert end == pytest.approx(want_end)


@pytest.mark.parametrize("weights", [[float("nan"), 1.0], [1.2, -0.2], [float("inf"), 0.0]])
def test_unusable_weights_fall_back_to_equal_weights(weights: list[float]) -> None:
    assert get_bucket_ranges(2, 1.0, weights) == [(0, 0.5), (0.5, 1)]


EVEN = [(0, 0.5), (0.5, 1)]
REDUCED = [(0, 0.25), (0.5, 0.75)]
CHOOSE_VECTORS = [
    (0.2, EVEN, 0),
    (0.4, EVEN, 0),
    (0.6, EVEN, 1),
    (0.8, EVEN, 1),
    (0, EVEN, 0),
    (0.5, EVEN, 1),
    (0.2, REDUCED, 0),
    (0.4, REDUCED, -1),
    (0.6, REDUCED, 1),
    (0.8, REDUCED, -1),
    (0.25, REDUCED, -1),
    (0.5, REDUCED, 1),
    (0.5, [(0, 0.5), (0.5, 0.5), (0.5, 1)], 2),
]


@pytest.mark.parametrize(("n", "ranges", "expected"), CHOOSE_VECTORS)
def test_choose_variation_matches_growthbook_vectors(
    n: float, ranges: list[tuple[float, float]], expected: int
) -> None:
    assert choose_variation(n, ranges) == expected


NAMESPACE_VECTORS = [
    ("1", ("namespace1", 0, 0.4), False),
    ("1", ("namespace1", 0.4, 1), True),
    ("1", ("namespace2", 0, 0.4), False),
    ("1", ("namespace2", 0.4, 1), True),
    ("2", ("namespace1", 0, 0.4), False),
    ("2", ("namespace1", 0.4, 1), True),
    ("2", ("namespace2", 0, 0.4), False),
    ("2", ("namespace2", 0.4, 1), True),
    ("3", ("namespace1", 0, 0.4), False),
    ("3", ("namespace1", 0.4, 1), True),
    ("3", ("namespace2", 0, 0.4), True),
    ("3", ("namespace2", 0.4, 1), False),
    ("4", ("namespace1", 0, 0.4), False),
    ("4", ("namespace1", 0.4, 1), True),
    ("4", ("namespace2", 0, 0.4), True),
    ("4", ("namespace2", 0.4, 1), False),
]


@pytest.mark.parametrize(("user_id", "namespace", "expected"), NAMESPACE_VECTORS)
def test_in_namespace_matches_growthbook_vectors(
    user_id: str, namespace: tuple[str, float, float], expected: bool
) -> None:
    assert in_namespace(user_id, namespace) is expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [(-1, []), (0, []), (1, [1]), (2, [0.5, 0.5]), (3, [0.33333333] * 3), (4, [0.25] * 4)],
)
def test_equal_weights_match_growthbook_vectors(n: int, expected: list[float]) -> None:
    assert get_equal_weights(n) == pytest.approx(expected)


# The ``run`` section: experiment "my-test" (hash version 1, GrowthBook's default) for users "1".."9".
# Each entry is the variation index, or None when the user is not in the experiment.
RUN_VECTORS: list[tuple[str, dict[str, object], list[int | None]]] = [
    ("default weights", {"variations": 2}, [1, 0, 0, 1, 1, 1, 0, 1, 0]),
    ("uneven weights", {"variations": 2, "weights": [0.1, 0.9]}, [1, 1, 0, 1, 1, 1, 0, 1, 1]),
    ("coverage", {"variations": 2, "coverage": 0.4}, [None, 0, 0, None, 1, None, 0, 1, None]),
    ("three way test", {"variations": 3}, [2, 0, 0, 2, 1, 2, 0, 1, 0]),
]


@pytest.mark.parametrize(("name", "experiment", "expected"), RUN_VECTORS, ids=[v[0] for v in RUN_VECTORS])
def test_run_matches_growthbook_vectors(name: str, experiment: dict[str, object], expected: list[int | None]) -> None:
    count = experiment["variations"]
    assert isinstance(count, int)
    variations = [str(i) for i in range(count)]
    weights = experiment.get("weights")
    coverage = experiment.get("coverage", 1.0)
    assert weights is None or isinstance(weights, list)
    assert isinstance(coverage, float)
    for user, want in zip("123456789", expected, strict=True):
        got = assign("my-test", user, variations, weights, coverage, hash_version=1)
        assert got == (None if want is None else str(want)), f"user {user}"


@pytest.mark.parametrize(
    ("case", "kwargs", "expected"),
    [
        ("test name my-test", {"key": "my-test", "user_id": "1"}, "1"),
        ("test name my-test-3", {"key": "my-test-3", "user_id": "1"}, "0"),
        ("empty id", {"key": "my-test", "user_id": ""}, None),
        ("namespace pass", {"key": "my-test", "user_id": "1", "namespace": ("namespace", 0.1, 1)}, "1"),
        ("namespace fail", {"key": "my-test", "user_id": "1", "namespace": ("namespace", 0, 0.1)}, None),
        ("coverage works when 0", {"key": "no-coverage", "user_id": "1", "coverage": 0.0}, None),
        ("seed and hash version 2", {"key": "key", "user_id": "1", "seed": "foo", "hash_version": 2}, "1"),
        (
            "seed with weights and coverage",
            {"key": "key", "user_id": "1", "seed": "foo", "hash_version": 2, "weights": [0.5, 0.5], "coverage": 0.99},
            "1",
        ),
        ("unknown hash version", {"key": "my-test", "user_id": "1", "hash_version": 99}, None),
    ],
)
def test_run_cases(case: str, kwargs: dict[str, object], expected: str | None) -> None:
    arguments: dict[str, object] = {"variations": ["0", "1"], "weights": None, "coverage": 1.0, "hash_version": 1}
    arguments.update(kwargs)
    assert assign(**arguments) == expected  # type: ignore[arg-type]


def test_single_variation_exposes_nobody() -> None:
    assert assign("my-test", "1", ["0"], None, 1.0, hash_version=1) is None


@pytest.mark.parametrize(("user_id", "expected"), [("123", "c"), ("456", "a"), ("fds", "b")])
def test_feature_rule_buckets(user_id: str, expected: str) -> None:
    # The "empty experiment rule" cases: key "feature", hash version 1, buckets 0.863, 0.178, 0.514.
    assert assign("feature", user_id, ["a", "b", "c"], None, 1.0, hash_version=1) == expected


@pytest.mark.parametrize(("user_id", "bucket", "expected"), [("d123", 0.6468, "red"), ("i123", 0.9943, "blue")])
def test_hash_version_2_three_way_buckets(user_id: str, bucket: float, expected: str) -> None:
    # From the stickyBucket cases: experiment "feature-exp", hash version 2, weights 0.3334/0.3333/0.3333.
    weights = [0.3334, 0.3333, 0.3333]
    assert hash("feature-exp", user_id, 2) == bucket
    assert assign("feature-exp", user_id, ["control", "red", "blue"], weights, 1.0, seed="feature-exp") == expected


def growthbook_variation(
    user_id: str, key: str, variations: list[str], weights: list[float], coverage: float, **extra: object
) -> str | None:
    experiment = Experiment(key=key, variations=variations, weights=weights, coverage=coverage, **extra)  # type: ignore[arg-type]
    result = GrowthBook(attributes={"id": user_id}).run(experiment)
    return result.value if result.inExperiment else None


USERS = [f"user-{i}" for i in range(10_000)]


@pytest.mark.parametrize(
    ("variations", "weights"),
    [(["control", "treatment"], [0.5, 0.5]), (["control", "big", "bigger"], [0.2, 0.3, 0.5])],
)
def test_same_variation_as_the_growthbook_package_at_two_percent(variations: list[str], weights: list[float]) -> None:
    compiled = CompiledExperiment("signup-button", variations, weights, 0.02)
    exposed = 0
    for user_id in USERS:
        expected = growthbook_variation(user_id, "signup-button", variations, weights, 0.02, hashVersion=2)
        assert assign("signup-button", user_id, variations, weights, 0.02) == expected, user_id
        assert compiled.assign(user_id) == expected, user_id
        exposed += expected is not None
    assert 100 < exposed < 300  # about 2% of 10,000: the comparison saw exposed users too


@pytest.mark.parametrize(
    ("extra", "ours"),
    [
        ({"hashVersion": 1}, {"hash_version": 1}),
        ({"hashVersion": 2, "seed": "other-seed"}, {"seed": "other-seed"}),
        ({"hashVersion": 2, "namespace": ("pricing", 0.2, 0.7)}, {"namespace": ("pricing", 0.2, 0.7)}),
    ],
)
def test_same_variation_as_the_growthbook_package_with_options(
    extra: dict[str, object], ours: dict[str, object]
) -> None:
    variations, weights = ["a", "b", "c"], [0.25, 0.25, 0.5]
    users = [*USERS[:2_000], "é", "ünïcödé-42", "😀", "a😀b", "用户-7", " ", "0"]
    for user_id in users:
        expected = growthbook_variation(user_id, "checkout", variations, weights, 0.6, **extra)
        got = assign("checkout", user_id, variations, weights, 0.6, **ours)  # type: ignore[arg-type]
        assert got == expected, user_id
        assert CompiledExperiment("checkout", variations, weights, 0.6, **ours).assign(user_id) == expected  # type: ignore[arg-type]


def test_the_c_hash_and_the_python_loop_give_the_same_variations() -> None:
    """Podium's environment hashes with fnv-hash-fast; an app's own may not have it and runs the loop."""
    from fnv_hash_fast import fnv1a_32

    from podium.experiments.assign import _FNV_OFFSET, _fnv1a32_from

    rng = random.Random(5)  # noqa: S311 - test ids, not secrets
    users = USERS[:3000] + [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(3000)]
    users += ["ü-ser", "user 😀", "", "a" * 300]
    for user_id in users:
        assert fnv1a_32(user_id.encode()) == _fnv1a32_from(_FNV_OFFSET, user_id) or not user_id.isascii()
    for seed in (None, "other-seed", "sëed"):
        with_c = CompiledExperiment("checkout", ["control", "a", "b"], [0.2, 0.3, 0.5], 0.3, seed)
        without = CompiledExperiment("checkout", ["control", "a", "b"], [0.2, 0.3, 0.5], 0.3, seed, accelerated=None)
        got = [with_c.assign(u) for u in users]
        assert got == [without.assign(u) for u in users]
        assert got == [assign("checkout", u, ["control", "a", "b"], [0.2, 0.3, 0.5], 0.3, seed) for u in users]
        assert 0.2 < sum(v is not None for v in got) / len(got) < 0.4
