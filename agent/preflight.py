"""Preflight: check that a profile's backends can run here, before any work.

A profile that cannot run (its extra is not installed, a package is outside the tested range, its
weights are not cached and cannot be downloaded, a server it needs is unusable) is an error at
once, naming what is missing and how to get it, never an "undecided" verdict after the video
was decoded. ``Detective`` runs it when a session opens, ``run_dataset`` before the first video.

Checks, for each role the configuration names (scorer, grounder, inspector, planner):

1. the backend's extra is installed, inside the tested version ranges (``core.deps``);
2. its weights are a local path or cached, or can be downloaded (``tools.models``);
3. the backend's own hook, ``BackendSpec.preflight`` (``"module:function"``), if it has one.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection
from typing import Any

from vadetective.agent.core.catalog import ROLES, BackendSpec, Role, backend_spec
from vadetective.agent.core.config import Config
from vadetective.agent.core.deps import dependency_problem
from vadetective.agent.core.errors import ProfileUnavailableError
from vadetective.tools.models import (
    hub_offline,
    hub_reachable,
    model_status,
    ultralytics_online,
)

log = logging.getLogger(__name__)

__all__ = ["backend_specs", "preflight", "preflight_problems"]


def backend_specs(config: Config, skip_roles: Collection[Role] = ()) -> list[BackendSpec]:
    """The catalog entries of the backends ``config`` uses, one per role not skipped."""
    names = {
        "scorer": config.scorer,
        "grounder": config.grounder,
        "inspector": config.inspector,
        "planner": config.planner,
    }
    return [backend_spec(role, names[role]) for role in ROLES if role not in skip_roles]


def _model_problems(config: Config, specs: list[BackendSpec]) -> list[str]:
    """One clause for the weights that are neither here nor downloadable."""
    roles_of: dict[tuple[str, str], list[str]] = {}  # (model key, model id) -> roles
    for spec in specs:
        if spec.model_key is not None:
            key = (spec.model_key, config.model_id(spec.model_key))
            roles_of.setdefault(key, []).append(spec.role)
    hub: list[tuple[str, str]] = []
    yolo: list[tuple[str, str]] = []
    for (model_key, model_id), roles in roles_of.items():
        status = model_status(model_key, model_id)
        if not status.present:
            named = (model_id, f"{model_id} ({', '.join(roles)})")
            (yolo if status.source == "ultralytics" else hub).append(named)
    out: list[str] = []
    if hub:
        why = None
        if hub_offline():
            why = "the Hugging Face hub client is offline (HF_HUB_OFFLINE is set)"
        elif not hub_reachable():
            why = "the Hugging Face hub is not reachable"
        if why is not None:
            ids = [model_id for model_id, _ in hub]
            pull = (
                f"vadetective models pull --profile {config.profile}"
                if not config.models
                else "vadetective models pull " + " ".join(f"--model {m}" for m in ids)
            )
            verb = "is" if len(hub) == 1 else "are"
            out.append(
                f"{'model' if len(hub) == 1 else 'models'} {', '.join(n for _, n in hub)} {verb} "
                f"not in the local cache and {why}: run `{pull}` where the hub is reachable, "
                "pass local model folders, or use --profile classical"
            )
    if yolo and not ultralytics_online():
        out.append(
            f"ultralytics weights {', '.join(n for _, n in yolo)} are not on disk and "
            "ultralytics is offline: put the .pt files in ultralytics' weights folder or pass "
            "their paths"
        )
    return out


def _hook_problems(config: Config, spec: BackendSpec) -> list[str]:
    if spec.preflight is None:
        return []
    module, attr = spec.preflight.split(":")
    fn: Any = getattr(importlib.import_module(module), attr)
    return [str(p) for p in fn(config, spec)]


def preflight_problems(config: Config, skip_roles: Collection[Role] = ()) -> list[str]:
    """Every reason ``config``'s backends cannot run here (empty when they can)."""
    specs = backend_specs(config, skip_roles)
    problems: list[str] = []
    core = dependency_problem(None, "vadetective")
    if core is not None:
        problems.append(core)
    extras_checked: set[str] = set()
    extra_failed: set[str] = set()
    for spec in specs:
        if spec.extra is None or spec.extra in extras_checked:
            continue
        extras_checked.add(spec.extra)
        users = [s.name for s in specs if s.extra == spec.extra]
        named = users[0] if len(users) == 1 else f"{', '.join(users[:-1])} and {users[-1]}"
        bad = dependency_problem(spec.extra, f"the {named} backend{'s' * (len(users) > 1)}")
        if bad is not None:
            problems.append(bad)
            extra_failed.add(spec.extra)
    usable = [s for s in specs if s.extra not in extra_failed]
    problems.extend(_model_problems(config, usable))
    for spec in usable:
        problems.extend(_hook_problems(config, spec))
    return problems


def preflight(config: Config, skip_roles: Collection[Role] = ()) -> None:
    """Raise ``ProfileUnavailableError`` when ``config``'s backends cannot run here.

    Args:
        config: the resolved configuration.
        skip_roles: roles whose objects the caller built itself (prebuilt backends, a planner
            object), so they need no check.

    Raises:
        ProfileUnavailableError: naming every missing piece and how to get it.
    """
    problems = preflight_problems(config, skip_roles)
    if problems:
        raise ProfileUnavailableError(config.profile, problems)
    log.debug("preflight: profile %s can run", config.profile)
