"""Keys and profiles of the command line (bfsync.cli._profiles)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bfsync.cli._profiles import (
    ConfigError,
    Profile,
    config_path,
    parse_profiles,
    permission_problem,
    read_config,
    resolve,
    service_config,
)

PATH = Path("/home/u/.config/bfsync/config.ini")
TEXT = """
[default]
api_key = k-default
private_key = s-default

[test]
testnet = yes
api_key = k-test
private_key = /keys/test.pem  ; a path
ws_url = ws://127.0.0.1:1/ws
"""


def test_config_path_follows_xdg() -> None:
    """XDG_CONFIG_HOME wins; else ~/.config; APPDATA on Windows."""
    assert Path("/x/bfsync/config.ini") == config_path({"XDG_CONFIG_HOME": "/x"}, "/h")
    assert Path("/h/.config/bfsync/config.ini") == config_path({}, "/h")
    assert Path("/a/bfsync/config.ini") == config_path({"APPDATA": "/a"}, "/h", windows=True)


def test_permission_problem() -> None:
    """A file others can read or write is unsafe; 0600 and 0400 are fine."""
    assert permission_problem(stat.S_IFREG | 0o600, PATH) is None
    assert permission_problem(stat.S_IFREG | 0o400, PATH) is None
    problem = permission_problem(stat.S_IFREG | 0o644, PATH)
    assert problem is not None and "644" in problem and "chmod 600" in problem


def test_parse_profiles() -> None:
    """Sections are profiles; testnet is a boolean; URLs kept; comments dropped."""
    profiles = parse_profiles(TEXT, PATH)
    test = profiles["test"]
    assert (True, "k-test", "/keys/test.pem", {"ws_url": "ws://127.0.0.1:1/ws"}) == (
        test.testnet,
        test.api_key,
        test.private_key,
        dict(test.urls),
    )
    assert not profiles["default"].testnet


def test_secrets_stay_out_of_repr() -> None:
    """A profile's repr never shows its keys."""
    text = repr(parse_profiles(TEXT, PATH)["default"])
    assert "k-default" not in text and "s-default" not in text


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[p]\napi_kye = x\n", "unknown key 'api_kye'"),
        ("[p]\ntestnet = maybe\n", "testnet must be true or false"),
        ("api_key = secret-value\n", "not a valid INI file"),
    ],
)
def test_bad_config(text: str, needle: str) -> None:
    """A malformed file raises ConfigError naming the problem and never the values."""
    with pytest.raises(ConfigError) as info:
        parse_profiles(text, PATH)
    assert needle in str(info.value)
    assert "secret-value" not in str(info.value)


def test_environment_keys_without_profile() -> None:
    """Without --profile the environment's keys win over the [default] profile."""
    env = {"BINANCE_API_KEY": "k-env", "BINANCE_PRIVATE_KEY": "s-env"}
    profile, creds = resolve(env, parse_profiles(TEXT, PATH), None, PATH)
    assert profile is None and creds is not None
    assert ("k-env", "s-env", "the environment") == (creds.api_key, creds.private_key, creds.source)


def test_named_profile_wins_over_environment() -> None:
    """--profile NAME takes that profile's keys even when the environment has keys."""
    env = {"BINANCE_API_KEY": "k-env", "BINANCE_PRIVATE_KEY": "s-env"}
    profile, creds = resolve(env, parse_profiles(TEXT, PATH), "test", PATH)
    assert profile is not None and creds is not None
    assert ("test", "k-test") == (profile.name, creds.api_key)


def test_default_profile_when_nothing_else() -> None:
    """No --profile and no environment keys: the [default] profile; no file: no keys."""
    _, creds = resolve({}, parse_profiles(TEXT, PATH), None, PATH)
    assert creds is not None and "k-default" == creds.api_key
    assert (None, None) == resolve({}, None, None, PATH)


@pytest.mark.parametrize(
    ("env", "profiles", "name", "needle"),
    [
        ({"BINANCE_API_KEY": "k"}, None, None, "BINANCE_PRIVATE_KEY is not set"),
        ({}, None, "live", "no config file"),
        ({}, {"a": Profile("a")}, "live", "no such profile"),
        ({}, {"default": Profile("default", api_key="k")}, None, "private_key is missing"),
    ],
)
def test_resolve_errors(
    env: dict[str, str], profiles: dict[str, Profile], name: str, needle: str
) -> None:
    """Half a key pair, or a profile that is not there, is a ConfigError that says so."""
    with pytest.raises(ConfigError, match=needle):
        resolve(env, profiles, name, PATH)


def test_service_config_command_line_wins() -> None:
    """The command line's URLs override the profile's; the profile can turn testnet on."""
    profile = parse_profiles(TEXT, PATH)["test"]
    testnet, config = service_config(profile, False, {"ws_url": "ws://cli"}, 3.0)
    assert (True, {"ws_url": "ws://cli", "request_timeout": 3.0, "connection_timeout": 3.0}) == (
        testnet,
        config,
    )


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_read_config_refuses_a_readable_file(tmp_path: Path) -> None:
    """read_config refuses a file others can read, reads a 0600 one, and None when absent."""
    path = tmp_path / "config.ini"
    assert read_config(path) is None
    path.write_text(TEXT)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="refusing"):
        read_config(path)
    path.chmod(0o600)
    profiles = read_config(path)
    assert profiles is not None and ["default", "test"] == sorted(profiles)
