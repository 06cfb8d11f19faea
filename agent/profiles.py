"""Profiles as users name them, ``auto`` included.

``auto`` picks ``local`` when its models are cached or can be fetched and ``classical``
otherwise, which depends on the machine, so it is resolved here, above the foundation.
"""

from __future__ import annotations

from typing import Any

from vadetective.agent.core.config import Config, config_for
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
