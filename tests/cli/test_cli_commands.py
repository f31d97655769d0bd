"""The catalog commands, run in-process against a real server."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from podium.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized

Invoke = Callable[..., Result]
FIXTURES = Path(__file__).parent / "fixtures"
TOKEN_RE = re.compile(r"pdm_[0-9a-f]{12}_[A-Za-z0-9_-]{20,100}\n")


def failed_with(result: Result, error: type[Exception]) -> str:
    """The detail of the Podium error a command let out (``run_cli`` turns it into one line)."""
    assert isinstance(result.exception, error), (result.exception, result.stdout, result.stderr)
    return str(result.exception)


def new_team(podium_cli: Invoke, name: str) -> str:
    """Create a team and return a token of it."""
    podium_cli("teams", "create", name)
    return str(podium_cli("tokens", "create", "--team", name).stdout.strip())


def test_a_whole_session_team_token_service_grant_audit(podium_cli: Invoke) -> None:
    assert podium_cli("teams", "create", "checkout", "--description", "Checkout").stdout == "created team checkout\n"
    search = new_team(podium_cli, "search")
    checkout = podium_cli("tokens", "create", "--team", "checkout", "--description", "ci").stdout.strip()
    assert "team checkout," in podium_cli("whoami", token=checkout).stdout

    created = podium_cli("services", "create", "cart", "--owner", "checkout", "--description", "The cart",
                         token=checkout)
    assert created.stdout == "created service cart (owner checkout, experimental)\n"
    granted = podium_cli("grants", "add", "--service", "cart", "--team", "search", "--rights", "deploy, config",
                         "--for", "7d", "--reason", "pairing on checkout", token=checkout).stdout
    assert re.fullmatch(r"grant \d+: team search may config,deploy service cart until .* UTC \(in 7d\)\n", granted)

    shown = podium_cli("services", "show", "cart", token=search).stdout
    assert re.search(r"owner\s+checkout\n", shown)
    assert re.search(r"environments\s+staging, production\n", shown)
    assert re.search(r"grants\s+search: config,deploy until .* \(in 7d\)\n", shown)
    listed = podium_cli("services", "list", "--owner", "checkout").stdout
    assert re.search(r"cart\s+checkout\s+experimental\s+The cart\s+just now", listed)

    podium_cli("services", "update", "cart", "--lifecycle", "production", token=checkout)
    audit = podium_cli("audit", "--service", "cart", token=checkout).stdout
    assert re.search(r"checkout\s+service.update\s+cart\s+lifecycle: experimental -> production", audit)
    assert re.search(r"checkout\s+grant.add\s+cart\s+search\s+team=search rights=config,deploy expires_at=", audit)
    assert re.search(r"checkout\s+service.create\s+cart\s+owner=checkout description=The cart", audit)
    # The first start records the shipped price sheet too (billing.prices.set): not this session's.
    events = json.loads(podium_cli("audit", "--json").stdout)
    actions = [e["action"] for e in events if not e["action"].startswith("billing.")]
    assert actions == ["service.update", "grant.add", "service.create", "token.create", "token.create",
                       "team.create", "team.create"]

    grant_id = json.loads(podium_cli("grants", "list", "--service", "cart", "--json").stdout)[0]["id"]
    podium_cli("grants", "revoke", str(grant_id), "--service", "cart", token=checkout)
    assert podium_cli("grants", "list", "--service", "cart").stderr == "no grants\n"
    assert re.search(rf"{grant_id}\s+search\s+config,deploy\s+in 7d\s+no\s+checkout\s+pairing on checkout",
                     podium_cli("grants", "list", "--service", "cart", "--all").stdout)

    moved = podium_cli("services", "transfer", "cart", "--to", "search", token=checkout).stdout
    assert moved == "service cart is now owned by search\n"
    refused = podium_cli("services", "update", "cart", "--description", "back", token=checkout, expect=1)
    assert "owned by 'search'" in failed_with(refused, Forbidden)


def test_tokens_create_prints_only_the_token_and_revoke_ends_it(podium_cli: Invoke) -> None:
    podium_cli("teams", "create", "checkout")
    created = podium_cli("tokens", "create", "--team", "checkout", "--description", "deploy bot")
    assert TOKEN_RE.fullmatch(created.stdout)
    assert "shown this once" in created.stderr
    token = created.stdout.strip()
    token_id = token.split("_")[1]
    listed = podium_cli("tokens", "list", "-t", "checkout").stdout
    assert re.search(rf"{token_id}\s+deploy bot\s+platform\s+just now\s+live", listed)  # id, name, by

    assert podium_cli("tokens", "revoke", token_id, "--team", "checkout", token=token).stdout == (
        f"revoked token {token_id} of team checkout\n"
    )
    assert "revoked just now" in podium_cli("tokens", "list", "--team", "checkout").stdout
    assert failed_with(podium_cli("whoami", token=token, expect=1), Unauthorized).startswith("invalid token")


def test_json_output_is_what_the_api_answered(podium_cli: Invoke, live_server: Any) -> None:
    podium_cli("teams", "create", "checkout", "--description", "[team] of checkout")
    podium_cli("teams", "create", "search")
    podium_cli("services", "create", "cart", "--owner", "checkout")
    podium_cli("grants", "add", "-s", "cart", "-t", "search", "--rights", "deploy", "--for", "2w")
    with live_server.client() as api:
        for args, path, params in [
            (["whoami"], "/api/v1/whoami", {}),
            (["teams", "list"], "/api/v1/teams", {}),
            (["teams", "show", "checkout"], "/api/v1/teams/checkout", {}),
            (["tokens", "list", "--team", "platform"], "/api/v1/teams/platform/tokens", {}),
            (["services", "list", "--lifecycle", "experimental"], "/api/v1/services", {"lifecycle": "experimental"}),
            (["services", "show", "cart"], "/api/v1/services/cart", {}),
            (["grants", "list", "--service", "cart", "--all"], "/api/v1/services/cart/grants", {"all": True}),
            (["audit", "--team", "platform", "--limit", "3"], "/api/v1/audit", {"team": "platform", "limit": 3}),
        ]:
            assert json.loads(podium_cli(*args, "--json").stdout) == api.get(path, params=params).json(), args


def test_delete_asks_first_and_refuses_without_an_answer(podium_cli: Invoke) -> None:
    podium_cli("teams", "create", "checkout")
    for name in ("cart", "wishlist", "basket"):
        podium_cli("services", "create", name, "--owner", "checkout")

    kept = podium_cli("services", "delete", "cart", input="n\n", expect=1)
    assert "kept service cart" in kept.stderr
    unanswered = podium_cli("services", "delete", "cart", expect=1)  # stdin is empty
    assert "pass --yes" in failed_with(unanswered, Invalid)
    podium_cli("services", "show", "cart")

    assert podium_cli("services", "delete", "cart", input="y\n").stdout == "deleted service cart\n"
    assert podium_cli("services", "delete", "wishlist", "--yes").stdout == "deleted service wishlist\n"
    assert "not found" in failed_with(podium_cli("services", "show", "cart", expect=1), NotFound)
    assert json.loads(podium_cli("services", "list", "--json").stdout)[0]["name"] == "basket"


def test_a_grant_ends_either_after_a_duration_or_at_an_instant(podium_cli: Invoke) -> None:
    podium_cli("teams", "create", "checkout")
    podium_cli("teams", "create", "search")
    podium_cli("services", "create", "cart", "--owner", "checkout")
    base = ("grants", "add", "--service", "cart", "--team", "search", "--rights", "deploy")

    both = podium_cli(*base, "--for", "7d", "--until", "2030-01-01T00:00:00Z", expect=1)
    assert "exactly one of --for" in failed_with(both, Invalid)
    assert "exactly one of --for" in failed_with(podium_cli(*base, expect=1), Invalid)
    naive = podium_cli(*base, "--until", "2030-01-01T00:00:00", expect=1)
    assert "with a timezone" in failed_with(naive, Invalid)
    assert "invalid duration '7x'" in failed_with(podium_cli(*base, "--for", "7x", expect=1), Invalid)
    no_such_right = podium_cli("grants", "add", "-s", "cart", "-t", "search", "--rights", "root", "--for", "1d",
                               expect=1)
    assert re.match(r"rights.*deploy.*config", failed_with(no_such_right, Invalid))

    until = podium_cli(*base, "--until", "2030-01-01T01:00:00+01:00").stdout
    assert "until 2030-01-01 00:00 UTC" in until


def test_update_without_a_change_is_refused_before_asking_the_server(podium_cli: Invoke) -> None:
    refused = podium_cli("services", "update", "cart", expect=1)
    assert "give --description or --lifecycle" in failed_with(refused, Invalid)


def test_api_errors_come_out_as_podium_errors(podium_cli: Invoke) -> None:
    podium_cli("teams", "create", "checkout")
    assert "already exists" in failed_with(podium_cli("teams", "create", "checkout", expect=1), Conflict)
    bad = podium_cli("services", "create", "cart", "--owner", "checkout", "--lifecycle", "beta", expect=1)
    assert re.match(r"lifecycle: .*experimental.*production.*deprecated", failed_with(bad, Invalid))
    assert "team 'nope' not found" in failed_with(podium_cli("teams", "show", "nope", expect=1), NotFound)
    # A name stays one path segment: "cart?x" must not turn into a query for "cart".
    podium_cli("services", "create", "cart", "--owner", "checkout")
    assert "'cart?x' not found" in failed_with(podium_cli("services", "show", "cart?x", expect=1), NotFound)


def test_backstage_import_creates_then_leaves_services_as_they_are(podium_cli: Invoke) -> None:
    catalog = str(FIXTURES / "catalog-info.yaml")
    first = podium_cli("catalog", "import", catalog).stdout
    assert re.search(r"cart\s+checkout\s+created", first)
    assert re.search(r"search-api\s+search\s+created", first)
    assert first.endswith("2 created, 0 updated, 0 unchanged\n")

    services = {s["name"]: s for s in json.loads(podium_cli("services", "list", "--json").stdout)}
    assert sorted(services) == ["cart", "search-api"]  # the API and Group entities are not services
    assert (services["cart"]["owner"], services["cart"]["lifecycle"]) == ("checkout", "production")
    assert services["cart"]["description"] == "Holds what a shopper is about to buy."

    again = json.loads(podium_cli("catalog", "import", catalog, "--json").stdout)
    assert again == [{"service": "cart", "owner": "checkout", "action": "unchanged"},
                     {"service": "search-api", "owner": "search", "action": "unchanged"}]
    team_token = podium_cli("tokens", "create", "--team", "checkout").stdout.strip()
    refused = podium_cli("catalog", "import", catalog, token=team_token, expect=1)
    assert "platform" in failed_with(refused, Forbidden)


def test_import_of_a_missing_file_is_a_usage_error(podium_cli: Invoke, tmp_path: Path) -> None:
    missing = podium_cli("catalog", "import", str(tmp_path / "nope.yaml"), expect=2)
    assert "does not exist" in missing.stderr


def test_login_saves_an_owner_only_file_that_later_commands_use(
    podium_cli: Invoke, live_server: Any, config_home: Path
) -> None:
    token = new_team(podium_cli, "checkout")
    done = podium_cli("login", "--url", live_server.url + "/", "--token", token, url=None, token=None)
    path = config_home / "podium" / "config.json"
    assert done.stdout == f"logged in to {live_server.url} as team checkout; saved to {path}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": live_server.url, "token": token}

    assert podium_cli("whoami", url=None, token=None).stdout.startswith("team checkout,")
    # The env wins over the saved login.
    assert podium_cli("whoami", url=None).stdout.startswith("team platform (the platform team)")


def test_login_with_a_bad_token_saves_nothing(podium_cli: Invoke, config_home: Path) -> None:
    refused = podium_cli("login", "--token", "pdm_000000000000_nottherealsecretatall", token=None, expect=1)
    assert "invalid token" in failed_with(refused, Unauthorized)
    assert not (config_home / "podium" / "config.json").exists()


def test_login_replaces_a_broken_saved_login(podium_cli: Invoke, live_server: Any, config_home: Path) -> None:
    saved = config_home / "podium" / "config.json"
    saved.parent.mkdir(parents=True)
    saved.write_text("{half a file")
    assert "run `podium login` again" in failed_with(podium_cli("whoami", url=None, token=None, expect=1), Invalid)
    podium_cli("login", "--token", live_server.admin_token, token=None)  # URL from PODIUM_URL
    assert json.loads(saved.read_text())["url"] == live_server.url


def test_login_asks_for_the_token_without_echoing_it(podium_cli: Invoke, live_server: Any) -> None:
    prompted = podium_cli("login", token=None, input=live_server.admin_token + "\n")
    assert "as team platform" in prompted.stdout
    assert live_server.admin_token not in prompted.stdout + prompted.stderr


@pytest.mark.parametrize("group", ["teams", "tokens", "services", "grants", "catalog"])
def test_every_command_has_help(podium_cli: Invoke, group: str) -> None:
    listing = podium_cli(group, "--help").stdout
    commands = re.findall(r"│ (\w+)\s{2,}(\S.*?)\s*│", listing)
    assert commands, listing
    assert all(text for _, text in commands)
