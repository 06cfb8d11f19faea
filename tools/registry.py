"""Build backends by name from the catalog (``agent.core.catalog``, the one list of names).

``build_scorer(config)`` imports the scorer's module only when it is called, so nothing here
imports torch, transformers or ultralytics until a backend is built.
"""

from __future__ import annotations

import importlib
from typing import Any

from vadetective.agent.core.catalog import Role, backend_spec
from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import ConfigError
from vadetective.tools.base import Grounder, Inspector, TemporalScorer


def build(role: Role, name: str, config: Config) -> Any:
    """Build the backend ``name`` of ``role`` for ``config``.

    Raises:
        ConfigError: When the catalog has no such backend.
    """
    try:
        spec = backend_spec(role, name)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    module, attr = spec.target.split(":")
    obj = getattr(importlib.import_module(module), attr)
    factory = getattr(obj, "from_config", obj)
    return factory(config, **spec.options)


def build_scorer(config: Config, name: str | None = None) -> TemporalScorer:
    return build("scorer", name or config.scorer, config)


def build_grounder(config: Config, name: str | None = None) -> Grounder:
    return build("grounder", name or config.grounder, config)


def build_inspector(config: Config, name: str | None = None) -> Inspector:
    return build("inspector", name or config.inspector, config)
