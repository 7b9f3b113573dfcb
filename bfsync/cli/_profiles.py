"""
Keys and settings: the environment, or a named profile in the user's config file.

The config file is INI (``configparser``), the same on every Python bfsync supports (3.9 has
no ``tomllib``, and no new dependency is allowed); it holds secrets, so it is refused unless
only its owner can read it (POSIX). Its place: ``$XDG_CONFIG_HOME/bfsync/config.ini``, else
``~/.config/bfsync/config.ini`` (``%APPDATA%\\bfsync\\config.ini`` on Windows)::

    [default]
    api_key = ...
    private_key = /home/me/.binance/ed25519.pem   ; a key file's path, or the HMAC secret

    [testnet]
    testnet = true
    api_key = ...
    private_key = ...

Which keys are used: ``--profile NAME`` when given; else ``BINANCE_API_KEY`` and
``BINANCE_PRIVATE_KEY`` when set; else the ``[default]`` profile when the file has one.
URLs and ``testnet`` on the command line win over the profile's.

Pure apart from :func:`read_config` (which reads the file and checks its mode).
"""

from __future__ import annotations

import configparser
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

__all__ = [
    "PROFILE_KEYS",
    "ConfigError",
    "Credentials",
    "Profile",
    "config_path",
    "parse_profiles",
    "permission_problem",
    "read_config",
    "resolve",
    "service_config",
]

PROFILE_KEYS = frozenset(
    {
        "api_key",
        "private_key",
        "private_key_password",
        "testnet",
        "ws_url",
        "rest_url",
        "stream_url",
    }
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(Exception):
    """A missing, unsafe or malformed profile (exit status 2). Never holds a secret."""


@dataclass(frozen=True)
class Profile:
    """One profile's settings (secrets kept out of ``repr``)."""

    name: str
    api_key: Optional[str] = field(default=None, repr=False)
    private_key: Optional[str] = field(default=None, repr=False)
    private_key_password: Optional[str] = field(default=None, repr=False)
    testnet: bool = False
    urls: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Credentials:
    """The keys to use, and where they came from (``source`` is shown in errors)."""

    api_key: str = field(repr=False)
    private_key: str = field(repr=False)
    source: str
    private_key_password: Optional[str] = field(default=None, repr=False)


def config_path(env: Mapping[str, str], home: str, windows: bool = False) -> Path:
    """The config file's path for this environment (``XDG_CONFIG_HOME``, ``APPDATA``)."""
    if windows and env.get("APPDATA"):
        return Path(env["APPDATA"]) / "bfsync" / "config.ini"
    base = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return Path(base) / "bfsync" / "config.ini"


def permission_problem(mode: int, path: Path) -> Optional[str]:
    """Why a file of this ``st_mode`` is unsafe to hold keys, or ``None`` when it is safe."""
    loose = stat.S_IMODE(mode) & 0o077
    if loose:
        return (
            f"{path} can be read or written by others (mode {stat.S_IMODE(mode):03o}); it holds "
            f"keys: run 'chmod 600 {path}'"
        )
    return None


def parse_profiles(text: str, path: Path) -> dict[str, Profile]:
    """
    The profiles of a config file's text, by name.

    Raises:
        ConfigError: malformed INI, an unknown key (named), or a bad ``testnet`` value.
    """
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        # The message quotes at most a section header or a line number, never a value.
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not a valid INI file: {first}") from None
    profiles: dict[str, Profile] = {}
    for name in parser.sections():
        section = parser[name]
        unknown = sorted(set(section) - PROFILE_KEYS)
        if unknown:
            raise ConfigError(
                f"{path}: [{name}]: unknown key {unknown[0]!r}; "
                f"known: {', '.join(sorted(PROFILE_KEYS))}"
            )
        testnet_text = section.get("testnet", "false").strip().lower()
        if testnet_text not in _TRUE | _FALSE:
            raise ConfigError(f"{path}: [{name}]: testnet must be true or false")
        profiles[name] = Profile(
            name=name,
            api_key=section.get("api_key") or None,
            private_key=section.get("private_key") or None,
            private_key_password=section.get("private_key_password") or None,
            testnet=testnet_text in _TRUE,
            urls={k: section[k] for k in ("ws_url", "rest_url", "stream_url") if section.get(k)},
        )
    return profiles


def read_config(path: Path) -> Optional[dict[str, Profile]]:
    """
    The profiles in ``path``, or ``None`` when there is no such file.

    Raises:
        ConfigError: the file cannot be read, is readable by others (POSIX), or is malformed.
    """
    try:
        with open(path, encoding="utf-8") as f:
            mode = os.fstat(f.fileno()).st_mode
            if os.name == "posix":
                problem = permission_problem(mode, path)
                if problem is not None:
                    raise ConfigError(f"refusing to use {problem}")
            text = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_profiles(text, path)


def resolve(
    env: Mapping[str, str],
    profiles: Optional[Mapping[str, Profile]],
    profile_name: Optional[str],
    path: Path,
) -> tuple[Optional[Profile], Optional[Credentials]]:
    """
    The profile in effect (or ``None``) and the keys to use (or ``None`` when there are none).

    Raises:
        ConfigError: ``profile_name`` is not in the file (or there is no file), or only one of
            the two environment variables is set.
    """
    profile: Optional[Profile] = None
    if profile_name is not None:
        if profiles is None:
            raise ConfigError(f"--profile {profile_name}: no config file at {path}")
        if profile_name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"--profile {profile_name}: no such profile in {path} (has: {known})")
        profile = profiles[profile_name]
    api_key = env.get("BINANCE_API_KEY") or None
    private_key = env.get("BINANCE_PRIVATE_KEY") or None
    if profile is None and (api_key or private_key):
        if not (api_key and private_key):
            missing = "BINANCE_PRIVATE_KEY" if api_key else "BINANCE_API_KEY"
            raise ConfigError(
                f"BINANCE_API_KEY and BINANCE_PRIVATE_KEY go together: {missing} is not set"
            )
        return None, Credentials(api_key, private_key, "the environment")
    if profile is None and profiles is not None:
        profile = profiles.get("default")
    if profile is None:
        return None, None
    if profile.api_key and profile.private_key:
        return profile, Credentials(
            profile.api_key,
            profile.private_key,
            f"profile [{profile.name}] of {path}",
            profile.private_key_password,
        )
    if profile.api_key or profile.private_key:
        missing = "private_key" if profile.api_key else "api_key"
        raise ConfigError(f"{path}: [{profile.name}]: {missing} is missing")
    return profile, None


def service_config(
    profile: Optional[Profile],
    testnet: bool,
    urls: Mapping[str, str],
    timeout: Optional[float],
) -> tuple[bool, dict[str, Any]]:
    """
    Whether to use the testnet, and the ``config`` overrides for the services: the command
    line's URLs over the profile's, and ``--timeout`` as both timeouts.
    """
    config: dict[str, Any] = dict(profile.urls) if profile is not None else {}
    config.update(urls)
    if timeout is not None:
        config["request_timeout"] = timeout
        config["connection_timeout"] = timeout
    return testnet or (profile is not None and profile.testnet), config
