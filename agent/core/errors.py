"""Typed errors with one clear sentence each: what was wrong and what to do.

The CLI turns every ``VadetectiveError`` into ``error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations


class VadetectiveError(Exception):
    """Base class: the message is one sentence a user can act on."""


class VideoError(VadetectiveError):
    """A video could not be opened or decoded."""


class VideoNotFoundError(VideoError):
    pass


class NotAFileError(VideoError):
    pass


class EmptyVideoError(VideoError):
    pass


class NotAVideoError(VideoError):
    pass


class NoDecodableFramesError(VideoError):
    pass


class UnsupportedCodecError(VideoError):
    pass


class ConfigError(VadetectiveError):
    """A configuration value is invalid."""


class ModelUnavailableError(VadetectiveError):
    """A model is not cached locally and cannot be fetched (offline, or a wrong id/path)."""


class MissingExtraError(VadetectiveError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package: install it with "
            f'pip install "vadetective[{extra}]"'
        )
        self.package = package
        self.extra = extra


class OutputError(VadetectiveError):
    """An output folder or file cannot be written (a file where a folder is needed, read-only,
    full, a name too long)."""


class SessionClosedError(VadetectiveError):
    """A ``Detective`` was asked a question after ``close()``."""


class CheckpointError(VadetectiveError):
    """A ``--checkpoint`` file cannot serve as a checkpoint (not SQLite, another schema,
    unreadable rows)."""


class DependencyError(VadetectiveError):
    """An installed package is outside the version range vadetective is tested on."""


class ProfileUnavailableError(VadetectiveError):
    """A profile's backends cannot run here (found before any work by ``preflight``).

    ``problems`` holds one clause per missing thing, each naming how to get it.
    """

    def __init__(self, profile: str, problems: list[str] | tuple[str, ...]) -> None:
        self.profile = profile
        self.problems = tuple(problems)
        super().__init__(f"profile {profile!r} cannot run: " + "; ".join(self.problems))


class DatasetError(VadetectiveError):
    """A dataset folder or annotation file is malformed or missing."""


class StreamError(VadetectiveError):
    """A live source could not be opened, or was lost for good."""
