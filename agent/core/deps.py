"""The dependency ranges vadetective is tested on, checked where it matters.

The ranges are declared once, in ``pyproject.toml``; the installed distribution's metadata
(``importlib.metadata.requires("vadetective")``) is read back here, so a later
``pip install -U transformers`` that leaves the tested range is caught with one sentence naming
the package instead of a deep traceback from its internals. ``VADETECTIVE_ALLOW_UNTESTED=1``
turns the refusal into a logged warning, for trying a newer release on purpose.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Sequence
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from vadetective.agent.core.errors import DependencyError

log = logging.getLogger(__name__)

ALLOW_UNTESTED_ENV = "VADETECTIVE_ALLOW_UNTESTED"
_DIST = "vadetective"


@functools.cache
def _declared() -> tuple[Requirement, ...]:
    try:
        raw = metadata.requires(_DIST) or []
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return ()
    out: list[Requirement] = []
    for line in raw:
        try:
            out.append(Requirement(line))
        except InvalidRequirement:
            log.debug("ignoring an unreadable requirement of %s: %r", _DIST, line)
    return tuple(out)


def tested_requirements(extra: str | None = None) -> list[Requirement]:
    """What the installed vadetective declares for ``extra`` (None: the core dependencies).

    Requirements on vadetective itself (``vadetective[hf,...]`` in the ``dev`` extra) are left out.
    """
    return [r for r in _declared() if canonicalize_name(r.name) != _DIST and _in(r, extra)]


def _in(req: Requirement, extra: str | None) -> bool:
    if req.marker is None:
        return extra is None
    core = req.marker.evaluate({"extra": ""})
    return core if extra is None else (req.marker.evaluate({"extra": extra}) and not core)


def installed_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def problems_with(
    requirements: Iterable[Requirement], installed: dict[str, str | None] | None = None
) -> list[str]:
    """One clause per requirement that the installed set does not meet.

    Args:
        requirements: what is needed, with the tested ranges.
        installed: distribution name -> installed version (None: not installed); read from the
            environment when None.

    Returns:
        e.g. ``["transformers 5.30.0 is outside the tested range >=5.0,<5.26"]``.
    """
    out: list[str] = []
    for req in requirements:
        if installed is None:
            version = installed_version(req.name)
        else:
            version = installed.get(req.name, installed.get(canonicalize_name(req.name)))
        if version is None:
            out.append(f"{req.name} is not installed")
            continue
        try:
            ok = req.specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            out.append(f"{req.name} {version} is outside the tested range {req.specifier}")
    return out


def pip_hint(requirements: Sequence[Requirement], extra: str | None = None) -> str:
    """The pip command that installs the tested versions of ``requirements``."""
    if extra is not None:
        return f'pip install "vadetective[{extra}]"'
    return "pip install " + " ".join(f'"{r.name}{r.specifier}"' for r in requirements)


def require_tested(extra: str | None, purpose: str) -> None:
    """Raise ``DependencyError`` when ``extra``'s packages are missing or outside their ranges.

    Args:
        extra: the pip extra (None: the core dependencies).
        purpose: what needs them, for the message (e.g. "the groundingdino-py grounder").

    Raises:
        DependencyError: one sentence naming each package, its version and the tested range
            (a warning instead when ``VADETECTIVE_ALLOW_UNTESTED=1``).
    """
    problem = dependency_problem(extra, purpose)
    if problem is None:
        return
    if os.environ.get(ALLOW_UNTESTED_ENV, "").lower() in {"1", "true", "yes", "on"}:
        log.warning("%s (continuing: %s is set)", problem, ALLOW_UNTESTED_ENV)
        return
    raise DependencyError(problem)


@functools.cache
def dependency_problem(extra: str | None, purpose: str) -> str | None:
    """The sentence ``require_tested`` would raise, or None (cached per process)."""
    reqs = tested_requirements(extra)
    bad = problems_with(reqs)
    if not bad:
        return None
    named = {p.split(" ", 1)[0] for p in bad}
    wanted = [r for r in reqs if r.name in named]
    return (
        f"{purpose}: {'; '.join(bad)}; run `{pip_hint(wanted)}`"
        + (f' (or pip install "vadetective[{extra}]")' if extra else "")
        + f", or set {ALLOW_UNTESTED_ENV}=1 to try it anyway"
    )
