"""How the CLI speaks: errors as one line on stderr and an exit code; JSON, tables, dates."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from podium.errors import Conflict, Forbidden, Invalid, NotFound, PodiumError, Unauthorized

if TYPE_CHECKING:  # Rich is imported by the first command that prints a table, not by `podium --help`
    from rich.console import RenderableType

PIPE_WIDTH = 160  # columns of tables written to a pipe or file

EXIT_CODES: dict[type[PodiumError], int] = {
    Invalid: 2,
    Unauthorized: 3,
    Forbidden: 4,
    NotFound: 5,
    Conflict: 6,
}


def exit_code(error: PodiumError) -> int:
    """The exit code of an error: its class's, or its nearest ancestor's, else 1."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


def run_cli(app: Callable[[], object]) -> None:
    """Run the Typer app (or its root command), turning a PodiumError into one line on stderr and its exit code.

    Usage errors stay Typer's own (exit 2 with the usage line).
    """
    try:
        app()
    except PodiumError as error:
        typer.echo(f"error: {error.detail}", err=True)
        sys.exit(exit_code(error))


# Rendering ---------------------------------------------------------------------------


def print_json(data: Any) -> None:
    """Print data as the API returned it: plain indented JSON on stdout, never wrapped."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def notice(text: str) -> None:
    """A note for the person at the terminal, on stderr so stdout stays pipeable."""
    typer.echo(text, err=True)


def render(renderable: RenderableType) -> None:
    """Print with Rich on stdout; to a pipe or file wide (no wrapping at 80) and without trailing blanks."""
    from rich.console import Console

    if sys.stdout.isatty():
        Console(soft_wrap=False).print(renderable)
        return
    console = Console(soft_wrap=False, width=PIPE_WIDTH, color_system=None)
    with console.capture() as captured:
        console.print(renderable)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def print_table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = "nothing yet") -> None:
    """A Rich table on stdout; ``empty`` on stderr when there are no rows."""
    rows = list(rows)
    if not rows:
        notice(empty)
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")  # fold, never cut: ids must survive whole
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # Text: values are data, not Rich markup
    render(table)


def print_fields(fields: Sequence[tuple[str, str]]) -> None:
    """``label  value`` lines on stdout, labels aligned: the view of one resource."""
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in fields:
        table.add_row(label, Text(value))
    render(table)


def parse_time(value: str | datetime) -> datetime:
    """An API timestamp (ISO 8601) as an aware datetime; naive ones are taken as UTC."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def ago(value: str | datetime | None, now: datetime | None = None) -> str:
    """How far ``value`` is from now, the way people say it: ``3h ago``, ``in 7d``, ``just now``."""
    if value is None:
        return "-"
    now = now or datetime.now(UTC)
    seconds = int((parse_time(value) - now).total_seconds())
    size = abs(seconds)
    if size < 60:
        return "just now"
    length, unit = next((n, u) for n, u in ((86400, "d"), (3600, "h"), (60, "m")) if size >= n)
    amount = f"{round(size / length)}{unit}"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def when(value: str | datetime | None, now: datetime | None = None) -> str:
    """A timestamp for one resource's view: ``2026-03-01 14:02 UTC (3h ago)``."""
    if value is None:
        return "-"
    moment = parse_time(value).astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M} UTC ({ago(moment, now)})"
