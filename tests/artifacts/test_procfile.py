"""The Procfile: ``type: command`` lines, as Heroku reads them."""

from __future__ import annotations

import pytest

from podium.artifacts import parse_procfile
from podium.errors import Invalid


def test_each_line_names_a_process_and_its_command() -> None:
    text = (
        "\ufeff# processes\r\n"
        "web: gunicorn -b [::]:$PORT app:app\r\n"
        "\r\n"
        "worker_2 :  celery -A app worker\n"
        "release: ./migrate\n"
    )
    assert parse_procfile(text) == {
        "web": "gunicorn -b [::]:$PORT app:app",
        "worker_2": "celery -A app worker",
        "release": "./migrate",
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "Procfile: no processes to run"),
        ("# only a comment\n", "Procfile: no processes to run"),
        ("release: ./migrate\n", "Procfile: no processes to run (only a release command)"),
        ("web python app.py\n", "Procfile line 1: expected 'type: command', got 'web python app.py'"),
        ("web: run\nweb.2: run\n", "Procfile line 2: process type 'web.2' may only use letters"),
        ("web:\n", "Procfile line 1: process type 'web' has no command"),
        ("web: a\n\nweb: b\n", "Procfile line 3: process type 'web' is defined twice"),
    ],
)
def test_a_bad_procfile_is_refused_with_the_line(text: str, reason: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_procfile(text)
    assert str(refused.value).startswith(reason)


def test_the_source_names_the_file_in_errors() -> None:
    with pytest.raises(Invalid, match=r"^app/Procfile line 1: "):
        parse_procfile("nope\n", source="app/Procfile")
