"""Schemas derived from the records they show: every field, in the record's order, described."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from podium.addons.service import AddonInfo
from podium.api.addons import AddonOut
from podium.api.health import CheckOut, IncidentOut, WindowOut
from podium.health.checks import CheckInfo
from podium.health.incidents import IncidentInfo, NoteInfo
from podium.health.maintenance import WindowInfo

AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def names(record: type) -> list[str]:
    return [field.name for field in dataclasses.fields(record)]


def test_a_schema_has_its_records_fields_in_order_then_its_own() -> None:
    assert list(CheckOut.model_fields) == [*(n for n in names(CheckInfo) if n != "id"), "target"]
    assert list(WindowOut.model_fields) == [*names(WindowInfo), "active"]
    assert list(IncidentOut.model_fields) == names(IncidentInfo)  # notes declared again, in place
    assert list(AddonOut.model_fields) == names(AddonInfo)
    assert AddonOut.model_fields["url"].default is None  # optional, as in the record


def test_a_described_field_keeps_its_description_in_the_openapi_schema() -> None:
    properties = CheckOut.model_json_schema()["properties"]
    assert properties["kind"]["description"] == "http | tcp"
    assert properties["target"]["description"] == "GET /health or TCP host:port"


def test_an_incident_shows_its_notes_only_when_asked() -> None:
    incident = IncidentInfo(
        id=7, service="cart", env="production", team="checkout", summary="down", source="manual", check=None,
        state="triggered", triggered_at=AT, acknowledged_at=None, acknowledged_by=None, resolved_at=None,
        resolved_by=None, cause_deploy="v3", opened_by="checkout", notes=(NoteInfo(1, AT, "checkout", "on it"),),
    )
    listed = IncidentOut.of(incident).model_dump()
    assert listed["notes"] is None
    assert {k: v for k, v in listed.items() if k != "notes"} == {
        k: v for k, v in dataclasses.asdict(incident).items() if k != "notes"
    }
    shown = IncidentOut.of(incident, with_notes=True).model_dump()
    assert shown["notes"] == [{"id": 1, "at": AT, "team": "checkout", "text": "on it"}]


def test_a_window_says_whether_it_is_on() -> None:
    window = WindowInfo(id=1, service="cart", env=None, starts_at=AT, ends_at=datetime(2999, 1, 1, tzinfo=UTC),
                        reason="upgrade", created_by="checkout", created_at=AT)
    shown = WindowOut.of(window).model_dump()
    assert shown == {**dataclasses.asdict(window), "active": True}
