"""``podium``: the command line entry point; each command group lives in its own module.

The console script runs :func:`main`, which imports no command module up front:
``TOP_LEVEL`` names every top-level command and group, where it lives and its one-line
help, so ``podium --help`` is written from the table and ``podium services list`` imports
``podium.cli.catalog`` alone (``podium.cli.lazy``). The whole Typer app, for the command
reference and the tests, is built from the same table (``podium.cli.app``; also reachable
as ``podium.cli.main.app``); a test checks that each help line is the command's own.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import textwrap
from typing import Any, NamedTuple

HELP = "Podium: deploys, ownership, availability and experiments for product teams."


class Entry(NamedTuple):
    """A top-level command or group: its name, where it lives, and what ``podium --help`` says of it."""

    name: str
    target: str  # "module:attribute", a command's function or a group's Typer
    help: str

    def load(self) -> Any:
        """The command's function or the group's Typer (importing its module)."""
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


TOP_LEVEL: tuple[Entry, ...] = (
    Entry("server", "podium.cli.server:server", "Start the Podium server (API, web pages, and the local node)."),
    Entry("login", "podium.cli.catalog:login",
          "Sign in through the company's provider (device flow), or check a token; save both for later commands."),
    Entry("whoami", "podium.cli.catalog:whoami",
          "Show the team the current token acts as, and the server it talks to."),
    Entry("audit", "podium.cli.catalog:audit", "Show the audit log, newest first: who changed what, when."),
    Entry("deploy", "podium.cli.deploy:deploy",
          "Deploy a directory or slug: upload, roll out with a health check, follow until live."),
    Entry("releases", "podium.cli.deploy:releases",
          "List releases, newest first: status, what changed, who, when, and why one failed."),
    Entry("rollback", "podium.cli.deploy:rollback",
          "Make a new release from an older one's artifact and config, and follow it."),
    Entry("promote", "podium.cli.deploy:promote",
          "Roll staging's live artifact out to production, with production's own config."),
    Entry("scale", "podium.cli.deploy:scale", "Set how many processes of each type run; rolled out as a new release."),
    Entry("ps", "podium.cli.deploy:ps", "Show the live release's processes: state, port, pid, uptime, restarts."),
    Entry("logs", "podium.cli.deploy:logs", "Print the logs of every process, oldest first; --follow keeps streaming."),
    Entry("teams", "podium.cli.catalog:teams", "Teams: each service is owned by exactly one."),
    Entry("tokens", "podium.cli.catalog:tokens", "Team tokens: what the CLI and API authenticate with."),
    Entry("users", "podium.cli.users:users", "People: names, e-mails, contact methods, teams."),
    Entry("services", "podium.cli.catalog:services", "Services: each owned by one team, changed only by it."),
    Entry("grants", "podium.cli.catalog:grants", "Time-boxed rights for another team on a service."),
    Entry("catalog", "podium.cli.catalog:catalog_app", "The catalog as a whole: import from Backstage."),
    Entry("config", "podium.cli.deploy:config_app", "Config vars: a change makes and rolls out a new release."),
    Entry("incidents", "podium.cli.health:incidents",
          "Incidents: opened by checks or by hand, acknowledged, resolved."),
    Entry("checks", "podium.cli.health:checks",
          "Health checks: the web check every deployed app gets, and extra ones."),
    Entry("maintenance", "podium.cli.health:maintenance", "Maintenance windows: planned downtime opens no incident."),
    Entry("oncall", "podium.cli.oncall:oncall_app", "On-call rotations: who is paged when an incident opens."),
    Entry("metrics", "podium.cli.metrics:metrics_app",
          "Availability, MTTR, MTBF, SLOs and DORA keys, per service or team."),
    Entry("slo", "podium.cli.metrics:slo_app",
          "Service level objectives: availability targets and their error budgets."),
    Entry("billing", "podium.cli.billing:billing_app",
          "What each team's use of the platform costs: usage, invoices, prices."),
    Entry("addons", "podium.cli.addons:addons_app",
          "Database add-ons: PostgreSQL per service environment, DATABASE_URL, backups."),
    Entry("domains", "podium.cli.domains:domains_app", "Custom domains of a service environment, served over HTTPS."),
    Entry("experiments", "podium.cli.experiments:experiments_app",
          "A/B tests on a capped share of a service environment's users."),
    Entry("flags", "podium.cli.flags:flags_app",
          "Feature flags: on, off or a value, with targeting rules and a gradual rollout."),
    Entry("groups", "podium.cli.groups:groups_app",
          "Saved groups: a team's named lists of user ids (or other attribute values) that conditions name "
          "with $inGroup."),
    Entry("app-token", "podium.cli.app_tokens:app_token_app",
          "The token deployed apps get as PODIUM_TOKEN (definitions, evaluate, events of their own environment)."),
    Entry("nodes", "podium.cli.nodes:nodes_app", "The machines releases run on: list, drain, activate."),
    Entry("secrets", "podium.cli.secrets:secrets_app", "The key that seals config vars in the store."),
    Entry("node", "podium.cli.node:node_app", "This machine's node: stop it, or see what runs on it."),
)


def root_help(columns: int) -> str:
    """``podium --help`` as the root command (``podium.cli.lazy.LazyRoot``) writes it for a
    terminal of ``columns``, written without importing Typer; a test compares the two."""
    width = max(min(columns, 80) - 2, 50)  # Click's help formatter: 80 columns at most, 50 at least
    names = max(len(entry.name) for entry in TOP_LEVEL)
    limit = width - 6 - names
    lines = [
        "Usage: podium [OPTIONS] COMMAND [ARGS]...", "",
        textwrap.fill(HELP, width, initial_indent="  ", subsequent_indent="  "), "",
        "Options:", "  --help  Show this message and exit.", "",
        "Commands:",
    ]
    for entry in TOP_LEVEL:
        text = entry.help if len(entry.help) <= limit else entry.help[: limit - 3] + "..."
        lines.append(f"  {entry.name:<{names}}  {text}")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Console script entry point: builds only the command it runs (``podium.cli.lazy``)."""
    if sys.argv[1:] == ["--help"]:  # the most common first command: no need for Typer at all
        sys.stdout.write(root_help(shutil.get_terminal_size().columns))
        return
    if "httpx" not in sys.modules:
        # httpx loads its own command line (click, pygments, rich.syntax) when it can, and
        # falls back to a stub when that import fails: podium never runs it, so make it fail.
        sys.modules["httpx._main"] = None  # type: ignore[assignment]
    from podium.cli.lazy import LazyRoot
    from podium.cli.output import run_cli

    run_cli(LazyRoot(HELP, TOP_LEVEL))


def __getattr__(name: str) -> Any:
    """``podium.cli.main.app``: the whole Typer app, built when first asked for."""
    if name == "app":
        from podium.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
