"""Where settings come from, besides Python: a TOML file and the environment.

Every ``Config`` field has a TOML key of the same name (``[server]`` and ``[models]`` are
tables) and an environment variable ``VADETECTIVE_<FIELD>`` (server settings:
``VADETECTIVE_SERVER_<FIELD>``, see ``config.SERVER_ENV``; models: ``VADETECTIVE_MODELS`` as
``clip=/models/clip,vlm=Qwen/...``). The CLI layers them: profile defaults < TOML file <
environment < flags. ``layer`` merges such layers; ``config_file_values`` reads a TOML file with
errors that name the file and the key.

Example file::

    profile = "server"
    scorer = "motion"
    max_planner_calls = 8

    [server]
    base_url = "http://127.0.0.1:8080/v1"
    text_only = true
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vadetective.agent.core.config import AUTO_WORDS, Config, server_env_values
from vadetective.agent.core.errors import ConfigError

#: The environment variable naming a TOML settings file.
CONFIG_FILE_ENV = "VADETECTIVE_CONFIG"
#: ``VADETECTIVE_MODELS``: backend=id pairs, comma-separated.
MODELS_ENV = "VADETECTIVE_MODELS"
#: Config fields the environment does not set here (``cache_dir``: ``VADETECTIVE_CACHE_DIR``
#: is read where the cache folder is resolved; ``server``/``models``: their own variables).
_NOT_FROM_ENV = frozenset({"server", "models", "cache_dir"})


def field_env(name: str) -> str:
    """The environment variable of a ``Config`` field."""
    return f"VADETECTIVE_{name.upper()}"


def env_values(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment sets (strings; pydantic converts them), ``server`` and
    ``models`` as tables. ``VADETECTIVE_PROFILE`` is included as ``profile``."""
    values: dict[str, Any] = {}
    for name in Config.model_fields:
        if name in _NOT_FROM_ENV:
            continue
        raw = env.get(field_env(name))
        if raw is not None and raw.strip():
            values[name] = raw.strip()
    if env.get(MODELS_ENV):
        values["models"] = parse_model_pairs(env[MODELS_ENV].split(","), MODELS_ENV)
    server = server_env_values(env)
    if server:
        values["server"] = server
    return values


def parse_model_pairs(pairs: list[str], where: str) -> dict[str, str]:
    """``["clip=/models/clip", ...]`` as a dict; a malformed pair is a one-sentence error."""
    out: dict[str, str] = {}
    for pair in pairs:
        if not pair.strip():
            continue
        backend, sep, model = pair.partition("=")
        if not sep or not backend.strip() or not model.strip():
            raise ConfigError(
                f"{where} takes BACKEND=ID_OR_FOLDER (e.g. clip=/models/my-clip), got {pair!r}"
            )
        out[backend.strip()] = model.strip()
    return out


def config_file_values(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML file: top-level ``Config`` keys, ``[server]`` and ``[models]``.

    Raises:
        ConfigError: the file is missing or not TOML, or names a key ``Config`` does not have.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"the settings file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"the settings file {path} is a folder, not a TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the settings file {path} is not valid TOML ({exc})") from None
    known = set(Config.model_fields)
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        raise ConfigError(
            f"the settings file {path} has unknown key(s) {', '.join(unknown)}: use the names "
            f"of vadetective's settings ({', '.join(sorted(known))})"
        )
    for table in ("server", "models"):
        if table in data and not isinstance(data[table], dict):
            raise ConfigError(f"in the settings file {path}, {table} must be a [{table}] table")
    return data


def layer(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge setting layers, later ones winning; ``server`` and ``models`` merge key by key.

    A ``None`` value in a layer means "not given" and leaves the earlier value, except inside
    ``server`` where an explicit automatic value (see ``AUTO_WORDS``) was already turned into
    None by its reader.
    """
    out: dict[str, Any] = {}
    for values in layers:
        for key, value in values.items():
            if key in ("server", "models") and isinstance(value, Mapping):
                merged = dict(out.get(key) or {})
                merged.update(value)
                out[key] = merged
            elif value is not None:
                out[key] = value
    return out


def is_auto(value: Any) -> bool:
    """Whether a raw setting asks for detection ("auto", "detect", "none", "")."""
    return isinstance(value, str) and value.strip().lower() in AUTO_WORDS
