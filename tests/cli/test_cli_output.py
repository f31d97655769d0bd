"""Rendering: JSON as the API sent it, tables that keep data whole, dates people read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from podium.cli.output import ago, print_json, print_table, when

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "said"),
    [
        (timedelta(seconds=-20), "just now"),
        (timedelta(seconds=30), "just now"),
        (timedelta(minutes=-5), "5m ago"),
        (timedelta(hours=-3, minutes=-10), "3h ago"),
        (timedelta(days=7, seconds=-2), "in 7d"),
        (timedelta(hours=12), "in 12h"),
        (timedelta(days=-40), "40d ago"),
    ],
)
def test_ago_says_how_far_in_the_largest_unit(delta: timedelta, said: str) -> None:
    assert ago(NOW + delta, NOW) == said


def test_api_timestamps_are_read_as_utc_and_shown_with_their_distance() -> None:
    assert when("2026-03-01T09:00:00Z", NOW) == "2026-03-01 09:00 UTC (3h ago)"
    assert when("2026-03-01T10:00:00+01:00", NOW) == "2026-03-01 09:00 UTC (3h ago)"
    assert when("2026-03-01T09:00:00", NOW) == "2026-03-01 09:00 UTC (3h ago)"  # naive: taken as UTC
    assert when(None) == ago(None) == "-"


def test_print_json_is_plain_json_even_for_long_strings(capsys: pytest.CaptureFixture[str]) -> None:
    data = [{"description": "x" * 300, "name": "caf\u00e9"}]
    print_json(data)
    assert json.loads(capsys.readouterr().out) == data


def test_tables_keep_brackets_and_long_ids_whole(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(["id", "reason"], [["a" * 120, "[bold]urgent[/bold] fix"]])
    out = capsys.readouterr().out
    assert "a" * 120 in out.replace("\n", "").replace(" ", "")
    assert "[bold]urgent[/bold] fix" in out


def test_an_empty_table_says_so_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(["id"], [], empty="no grants")
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "no grants\n")
