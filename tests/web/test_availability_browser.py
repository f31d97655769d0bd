"""The service page's availability in Chromium: cards, a drawn chart, acknowledging an incident."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import ConsoleMessage, Page, expect
from tests.metrics.support import Seed
from tests.web.test_availability import add_check

from podium.core import Podium
from podium.store.db import utcnow
from podium.web.charts import LINE_COLOUR

if TYPE_CHECKING:
    from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
Pixel = tuple[int, ...]


def png_pixels(data: bytes) -> list[list[Pixel]]:
    """Rows of pixels of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes), with the stdlib."""
    assert data.startswith(PNG_SIGNATURE)
    offset, chunks = len(PNG_SIGNATURE), {"IDAT": b""}
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind = data[offset + 4:offset + 8].decode()
        body = data[offset + 8:offset + 8 + length]
        chunks[kind] = chunks["IDAT"] + body if kind == "IDAT" else body
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks["IHDR"])
    assert (depth, interlace) == (8, 0), "only 8-bit, non-interlaced PNGs"
    assert colour in (2, 6), "only RGB or RGBA PNGs"
    size = 4 if colour == 6 else 3
    raw, stride = zlib.decompress(chunks["IDAT"]), width * size
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - size] if i >= size else 0
            up, corner = previous[i], previous[i - size] if i >= size else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                nearest = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                line[i] = (line[i] + nearest[2]) & 0xFF
        rows.append(line)
        previous = line
    return [[tuple(row[x:x + size]) for x in range(0, stride, size)] for row in rows]


def near(pixel: Pixel, colour: str, tolerance: int = 40) -> bool:
    wanted = bytes.fromhex(colour.lstrip("#"))
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], wanted, strict=True))


@pytest.fixture
def history(catalog: None, core: Podium, admin: TestClient, team_client: Callable[[str], TestClient]) -> int:
    """cart's incidents over the last ten weeks, longer ones longer ago, and one still open: its id."""
    seed = Seed(core, admin, team_client)
    now = utcnow()
    for weeks in range(1, 10):
        start = now - timedelta(weeks=weeks, hours=weeks)
        seed.incident("cart", start, start + timedelta(minutes=10 * weeks), acknowledged=start + timedelta(minutes=2))
    add_check(core, "cart", "production", "down", error="connection refused")
    return seed.incident("cart", now - timedelta(minutes=30), summary="checkout returns 502")


def test_cards_a_drawn_chart_and_acknowledging_an_incident(
    page: Page, live_server: LiveServer, history: int, tmp_path: Path
) -> None:
    problems: list[str] = []
    page.on("console", lambda message: _keep_errors(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{live_server.url}/login?next=/services/cart")
    page.get_by_label("Token").fill(live_server.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/services/cart")

    production = page.locator('#health li[data-environment="production"]')
    expect(production.get_by_test_id("health-state")).to_have_text("down")
    expect(production).to_contain_text("incident open since")
    service_cards = page.get_by_test_id("service-cards")
    expect(service_cards.locator('[data-metric="incidents"] .card-value')).to_have_text("5")  # 4 in 30 days + open
    expect(service_cards.locator('[data-metric="mtta"] .card-value')).to_have_text("2m 00s")
    for metric in ("availability", "mttr", "mtbf"):
        expect(service_cards.locator(f'[data-metric="{metric}"] .card-value')).not_to_have_text("no data")

    chart = page.locator("svg.chart.availability")
    line = chart.locator("path.line")
    expect(line).to_have_attribute("d", re.compile(r"^M[\d.]+,[\d.]+(?: L[\d.]+,[\d.]+){8,}$"))
    expect(page.locator("svg.chart.mttr path.line")).to_have_count(1)
    chart.scroll_into_view_if_needed()
    drawn = chart.screenshot(path=tmp_path / "availability-chart.png")
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 200
    assert box["height"] > 80

    blank_page = page.context.new_page()
    blank_page.set_viewport_size({"width": 1280, "height": 800})
    blank_page.set_content(f'<body style="margin:0;background:#fff"><svg width="{box["width"]}" '
                           f'height="{box["height"]}"></svg></body>')
    blank = blank_page.locator("svg").screenshot()
    blank_page.close()
    assert drawn != blank
    pixels = [pixel for row in png_pixels(drawn) for pixel in row]
    assert not any(near(pixel, LINE_COLOUR) for row in png_pixels(blank) for pixel in row)
    assert sum(near(pixel, LINE_COLOUR) for pixel in pixels) > 200, "the line and its dots are drawn"

    row = page.locator(f'#incidents tr[data-incident="{history}"]')
    expect(row.get_by_test_id("incident-state")).to_have_text("triggered")
    row.get_by_role("button", name="Acknowledge").click()
    expect(page).to_have_url(f"{live_server.url}/services/cart#incidents")
    expect(row.get_by_test_id("incident-state")).to_have_text("acknowledged")
    expect(row).to_contain_text("platform/")
    expect(row.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(row.get_by_role("button", name="Resolve")).to_be_visible()

    page.screenshot(path=tmp_path / "service.png", full_page=True)
    assert problems == [], "the pages logged errors (a CSP violation, a failed script)"


def _keep_errors(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":
        problems.append(f"{message.text} ({message.location.get('url', '')})")
