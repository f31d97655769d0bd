"""Where the CLI finds its server and token: env vars, then the saved login, then defaults."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from podium.cli import settings
from podium.errors import Invalid


def test_nothing_set_means_the_local_default_server_and_no_token(tmp_path: Path) -> None:
    login = settings.load({"XDG_CONFIG_HOME": str(tmp_path)})
    assert (login.url, login.token, login.source) == ("http://127.0.0.1:8000", None, "default")


def test_the_config_file_lives_under_xdg_config_home_else_home_config(tmp_path: Path) -> None:
    assert settings.config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "podium" / "config.json"
    assert settings.config_path({}) == Path.home() / ".config" / "podium" / "config.json"


def test_environ_is_read_at_call_time(config_home: Path) -> None:
    # config_home (autouse) set XDG_CONFIG_HOME through the real environment.
    assert settings.config_path() == config_home / "podium" / "config.json"


def test_a_saved_login_is_owner_only_and_read_back(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    path = settings.save("http://podium.internal:8000/", "pdm_saved", env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    login = settings.load(env)
    assert (login.url, login.token, login.source) == ("http://podium.internal:8000", "pdm_saved", str(path))


def test_env_vars_win_over_the_saved_login_each_on_its_own(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    settings.save("http://saved:8000", "pdm_saved", env)
    only_token = settings.load({**env, "PODIUM_TOKEN": "pdm_env"})
    assert (only_token.url, only_token.token, only_token.source) == ("http://saved:8000", "pdm_env", "env")
    both = settings.load({**env, "PODIUM_TOKEN": "pdm_env", "PODIUM_URL": "https://podium.example"})
    assert (both.url, both.token) == ("https://podium.example", "pdm_env")


def test_saving_again_replaces_the_login_and_keeps_it_private(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    path = settings.save("http://one:8000", "pdm_one", env)
    path.chmod(0o644)
    settings.save("http://two:8000", "pdm_two", env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings.load(env).token == "pdm_two"


def test_a_broken_config_file_says_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "podium" / "config.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(Invalid, match="run `podium login` again"):
        settings.load({"XDG_CONFIG_HOME": str(tmp_path)})
    path.write_text("[1, 2]")
    with pytest.raises(Invalid, match="not a JSON object"):
        settings.load({"XDG_CONFIG_HOME": str(tmp_path)})


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://podium", ""])
def test_a_url_without_http_is_refused(url: str) -> None:
    with pytest.raises(Invalid, match="start it with http:// or https://"):
        settings.check_url(url)
