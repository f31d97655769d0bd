"""The ``podium`` console script's root command, which builds only the command it runs.

Typer builds the whole tree of commands (every parameter of every function) before it
parses anything, and importing every command module takes longer still. ``LazyRoot``
lists the top-level names and their one-line help from ``podium.cli.main.TOP_LEVEL``
without importing any of them, and imports and builds one command, or one group, when
it is invoked.

Typer also coerces each parameter's value through a pydantic ``TypeAdapter``, built at
the parameter's first value, even an option left out (None) or a default: that import
alone is a large share of a short command's time. ``defer_coercion`` lets values that
need no coercion (None, a ``str`` for a ``str`` option, an ``int`` default) through as
they are, and leaves every other value to Typer's own coercion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from podium.cli.main import Entry

PLAIN_TYPES = (str, int, float)


def _nothing() -> None:
    """A group's callback that does nothing."""


class AsIs:
    """A parameter's coercion until a value needs Typer's: None and values of the exact
    plain type the parameter asks for (without bounds or a parser) pass unchanged."""

    def coerce(self, value: Any, *, param: Any, ctx: Any) -> Any:
        several = param.multiple or param.nargs == -1
        if value is None:
            return () if several else None  # what Typer gives for a missing value
        descriptor = param.type_descriptor
        plain = descriptor.annotation in PLAIN_TYPES and descriptor.parameter_info.parser is None
        if plain and not several and not descriptor.is_ranged and type(value) is descriptor.annotation:
            return value
        param._runtime_param = None  # Typer builds its own from here on
        return param.get_runtime_param().coerce(value, param=param, ctx=ctx)


def defer_coercion(command: Any) -> None:
    """Give each parameter of ``command`` and of its subcommands, ``--help`` included,
    ``AsIs`` coercion.

    Only for a Typer that coerces through runtime parameters it builds on first use;
    any other keeps its own."""
    # --help is made on first use and kept; made now, with the names a context has by default.
    help_option = command.get_help_option(command.context_class(command))
    for param in [*command.params, help_option]:
        if hasattr(param, "get_runtime_param") and hasattr(param, "type_descriptor") \
                and getattr(param, "_runtime_param", AsIs) is None:
            param._runtime_param = AsIs()
    for sub in getattr(command, "commands", {}).values():
        defer_coercion(sub)


class LazyRoot(TyperGroup):
    """The app's top level: names and help at once, each command imported and built on first use."""

    def __init__(self, help_text: str, entries: Sequence[Entry]) -> None:
        super().__init__(name="podium", help=help_text, no_args_is_help=True, rich_markup_mode=None)
        defer_coercion(self)
        self._entries = {entry.name: entry for entry in entries}
        self._built: dict[str, Any] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self._entries)

    def helps(self) -> dict[str, str]:
        """Each top-level name with its one-line help, as ``podium --help`` lists them."""
        return {name: entry.help for name, entry in self._entries.items()}

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self._entries:
            return None
        if cmd_name not in self._built:
            self._built[cmd_name] = self._build(self._entries[cmd_name])
        return self._built[cmd_name]

    def _build(self, entry: Entry) -> Any:
        # Built under a root of its own (no shell-completion options), holding only it.
        holder = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        holder.callback()(_nothing)
        found = entry.load()
        if isinstance(found, typer.Typer):
            holder.add_typer(found, name=entry.name)
        else:
            holder.command(name=entry.name)(found)
        command = typer.main.get_command(holder).commands[entry.name]  # type: ignore[attr-defined]
        defer_coercion(command)
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, entry.help) for name, entry in self._entries.items()]
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, text if len(text) <= limit else text[: limit - 3] + "...")
                                for name, text in rows])
