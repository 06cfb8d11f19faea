"""Before any work: check that the backends a ``Config`` names can run, and fail at once with
one sentence if not (the API of /work/coord/preflight.md; this minimal version runs only the
backends' own ``preflight`` hooks, e.g. "the planner server is unreachable").
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from vadetective.agent.core.catalog import ROLES, Role, backend_spec
from vadetective.agent.core.config import Config
from vadetective.agent.core.errors import ProfileUnavailableError


def preflight(config: Config, skip_roles: Iterable[Role] = ()) -> None:
    """Run each role's preflight hook (roles in ``skip_roles`` are the caller's own objects).

    Raises:
        ProfileUnavailableError: with every problem found.
    """
    skip = set(skip_roles)
    problems: list[str] = []
    seen: set[str] = set()
    for role in ROLES:
        if role in skip:
            continue
        spec = backend_spec(role, getattr(config, role))
        if spec.preflight is None or spec.preflight in seen:
            continue  # one hook serves every role that shares it (the server's planner+inspector)
        seen.add(spec.preflight)
        module, _, attr = spec.preflight.partition(":")
        check = getattr(importlib.import_module(module), attr)
        problems.extend(check(config, spec))
    if problems:
        raise ProfileUnavailableError(config.profile, problems)
