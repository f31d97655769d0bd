"""Properties of assignment: stable, monotone in coverage, and splitting users as the weights say."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from podium.experiments.assign import CompiledExperiment, assign

user_ids = st.text(min_size=1, max_size=40)
keys = st.text(min_size=1, max_size=30)
coverages = st.floats(min_value=0.0, max_value=1.0)

# No per-example deadline: the machine is shared, and speed is measured in bench/, not asserted here.
untimed = settings(deadline=None)


@st.composite
def weight_vectors(draw: st.DrawFn) -> list[float]:
    raw = draw(st.lists(st.integers(min_value=1, max_value=100), min_size=2, max_size=5))
    return [w / sum(raw) for w in raw]


@untimed
@given(key=keys, user_id=user_ids, weights=weight_vectors(), coverage=coverages, hash_version=st.sampled_from([1, 2]))
def test_the_same_user_always_gets_the_same_variation(
    key: str, user_id: str, weights: list[float], coverage: float, hash_version: int
) -> None:
    variations = [f"v{i}" for i in range(len(weights))]
    first = assign(key, user_id, variations, weights, coverage, hash_version=hash_version)
    for _ in range(3):
        assert assign(key, user_id, variations, weights, coverage, hash_version=hash_version) == first


@untimed
@given(key=keys, user_id=user_ids, weights=weight_vectors(), low=coverages, high=coverages)
def test_raising_coverage_only_adds_users(
    key: str, user_id: str, weights: list[float], low: float, high: float
) -> None:
    low, high = min(low, high), max(low, high)
    variations = [f"v{i}" for i in range(len(weights))]
    before = assign(key, user_id, variations, weights, low)
    if before is not None:
        assert assign(key, user_id, variations, weights, high) == before


@untimed
@given(
    key=keys,
    user_id=st.one_of(user_ids, st.integers(min_value=0).map(str), st.just("")),
    weights=st.one_of(weight_vectors(), st.lists(st.floats(allow_nan=True), min_size=2, max_size=4)),
    coverage=st.floats(min_value=-0.5, max_value=1.5),
    seed=st.one_of(st.none(), st.text(max_size=10)),
    hash_version=st.sampled_from([1, 2, 3]),
    namespace=st.one_of(st.none(), st.tuples(st.text(max_size=8), coverages, coverages)),
)
def test_compiled_experiment_agrees_with_assign(
    key: str,
    user_id: str,
    weights: list[float],
    coverage: float,
    seed: str | None,
    hash_version: int,
    namespace: tuple[str, float, float] | None,
) -> None:
    variations = [f"v{i}" for i in range(len(weights))]
    compiled = CompiledExperiment(key, variations, weights, coverage, seed, hash_version, namespace)
    expected = assign(key, user_id, variations, weights, coverage, seed, hash_version, namespace)
    assert compiled.assign(user_id) == expected


SYNTHETIC_USERS = [f"u{i:06d}" for i in range(100_000)]


def test_split_matches_the_weights() -> None:
    weights = [0.2, 0.3, 0.5]
    variations = ["a", "b", "c"]
    for hash_version in (1, 2):
        counts = dict.fromkeys(variations, 0)
        for user_id in SYNTHETIC_USERS:
            variation = assign("split", user_id, variations, weights, 1.0, hash_version=hash_version)
            assert variation is not None
            counts[variation] += 1
        expected = [w * len(SYNTHETIC_USERS) for w in weights]
        result = stats.chisquare([counts[v] for v in variations], expected)
        assert result.pvalue > 0.001, (hash_version, counts)


def test_two_percent_coverage_exposes_two_percent() -> None:
    compiled = CompiledExperiment("capped", ["control", "treatment"], [0.5, 0.5], 0.02)
    counts = {"control": 0, "treatment": 0}
    for user_id in SYNTHETIC_USERS:
        variation = compiled.assign(user_id)
        if variation is not None:
            counts[variation] += 1
    exposed = sum(counts.values())
    assert stats.binomtest(exposed, len(SYNTHETIC_USERS), 0.02).pvalue > 0.001, exposed
    # And the exposed users split evenly between the two variations.
    assert stats.binomtest(counts["control"], exposed, 0.5).pvalue > 0.001, counts
