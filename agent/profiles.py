"""Profiles as users name them, ``auto`` included, and settings layered from outside Python.

``auto`` picks ``local`` when its models are cached or can be fetched and ``classical``
otherwise, which depends on the machine, so it is resolved here, above the foundation.
``layered_config`` builds the configuration the CLI uses: profile defaults < a TOML file <
``VADETECTIVE_*`` environment variables < flags.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vadetective.agent.core.config import (
    SERVER_ENV,
    Config,
    ServerSettings,
    config_for,
    first_error,
)
from vadetective.agent.core.errors import ConfigError
from vadetective.agent.core.sources import (
    CONFIG_FILE_ENV,
    config_file_values,
    env_values,
    field_env,
    layer,
)
from vadetective.tools.models import resolve_auto_profile


def profile_config(profile: str = "auto", **overrides: Any) -> Config:
    """The configuration of a named profile, with keyword overrides applied on top.

    Args:
        profile: ``auto``, ``classical``, ``local`` or ``server``; ``auto`` resolves to
            ``local`` or ``classical`` and logs one line saying which and why.
        **overrides: ``Config`` fields, e.g. ``max_steps=8``.
    """
    chosen = resolve_auto_profile(overrides.get("models")) if profile == "auto" else profile
    return config_for(chosen, **overrides)


def layered_values(
    profile: str | None = None,
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **flags: Any,
) -> dict[str, Any]:
    """The settings of every layer merged (file < environment < flags), not yet validated.

    ``config_file`` defaults to ``$VADETECTIVE_CONFIG``; ``profile`` (a flag) wins over
    ``VADETECTIVE_PROFILE`` and the file's ``profile``. Flags that are None are not given.
    """
    env = os.environ if env is None else env
    path = config_file or env.get(CONFIG_FILE_ENV) or None
    from_file = config_file_values(path) if path else {}
    merged = layer(from_file, env_values(env), flags)
    if profile:
        merged["profile"] = profile
    merged.setdefault("profile", "auto")
    return merged


def layered_config(
    profile: str | None = None,
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **flags: Any,
) -> Config:
    """The configuration from a profile, a TOML file, the environment and flags (later wins).

    Raises:
        ConfigError: a value is invalid (the sentence names the setting), or the file is.
    """
    env = os.environ if env is None else env
    values = layered_values(profile, config_file, env, **flags)
    server = values.get("server")
    try:
        if isinstance(server, Mapping):
            # The layers already hold the environment: the profile must not read it again.
            try:
                values["server"] = ServerSettings(**server)
            except ValueError as exc:
                raise _Invalid("server." + first_error(exc)) from None
        try:
            return profile_config(values.pop("profile"), **values)
        except ConfigError as exc:
            if not callable(getattr(exc.__cause__, "errors", None)):
                raise
            raise _Invalid(first_error(exc.__cause__)) from None  # type: ignore[arg-type]
    except _Invalid as bad:
        problem = str(bad)
        key = problem.split(":", 1)[0].split(".")
        where = _origin(key, config_file or env.get(CONFIG_FILE_ENV), env, flags)
        raise ConfigError(f"invalid setting {problem}{where}") from None


class _Invalid(Exception):
    """A setting's problem, before it is told where the value came from."""


def _origin(
    key: list[str], path: str | Path | None, env: Mapping[str, str], flags: Mapping[str, Any]
) -> str:
    """Where a setting's value came from, for an error message (" (from ...)")."""
    if key[0] == "server" and len(key) > 1:
        var = SERVER_ENV.get(key[1], "")
        if flags.get("server", {}).get(key[1]) is not None:
            return " (from a --server-* flag)"
    else:
        var = field_env(key[0])
        if flags.get(key[0]) is not None:
            return " (from the command line)"
    if var and var in env:
        return f" (from {var})"
    return f" (from {path})" if path else ""
