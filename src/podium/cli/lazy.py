"""The ``podium`` console script's root command, which builds only the command it runs.

Typer builds the whole tree of commands (every parameter of every function) before it
parses anything; with some hundred commands that is most of the time a short command
takes. ``LazyRoot`` lists the top-level names and their one-line help from the app's
registrations, and builds one command, or one group, when it is invoked.
"""

from __future__ import annotations

import inspect
from typing import Any

import typer
from typer.core import TyperGroup


def _one_line(text: str | None) -> str:
    return (text or "").strip().split("\n\n")[0].replace("\n", " ")


def _nothing() -> None:
    """A group's callback that does nothing."""


class LazyRoot(TyperGroup):
    """The app's top level: names and help at once, each command built on first use."""

    def __init__(self, app: typer.Typer) -> None:
        super().__init__(name="podium", help=app.info.help, no_args_is_help=True, rich_markup_mode=None)
        self._app = app
        self._built: dict[str, Any] = {}
        self._helps: dict[str, str] = {}
        for command in app.registered_commands:
            name = command.name or (command.callback.__name__ if command.callback else "")
            self._helps[name] = _one_line(command.help or inspect.getdoc(command.callback))
        for group in app.registered_groups:
            instance = group.typer_instance
            self._helps[group.name or ""] = _one_line(group.help or (instance.info.help if instance else ""))

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self._helps)

    def helps(self) -> dict[str, str]:
        """Each top-level name with its one-line help, as ``podium --help`` lists them."""
        return dict(self._helps)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self._helps:
            return None
        if cmd_name not in self._built:
            self._built[cmd_name] = self._build(cmd_name)
        return self._built[cmd_name]

    def _build(self, name: str) -> Any:
        # Built under a root of its own (no shell-completion options), holding only it.
        holder = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        holder.callback()(_nothing)
        holder.registered_groups = [g for g in self._app.registered_groups if g.name == name]
        holder.registered_commands = [
            c for c in self._app.registered_commands
            if (c.name or (c.callback.__name__ if c.callback else "")) == name
        ]
        return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = list(self._helps.items())
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, text if len(text) <= limit else text[: limit - 3] + "...")
                                for name, text in rows])
