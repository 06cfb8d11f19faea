"""WordNet for METEOR's synonym matching, from where it can be installed.

METEOR matches synonyms through WordNet. Its data is not on PyPI (nltk fetches it with
``nltk.download("wordnet")`` from its own server; the ``wn`` package downloads too). Two sources
are used, first found wins:

1. nltk's own corpus (``nltk_data/corpora/wordnet``), when a user downloaded it;
2. a system WordNet 3.0 database in Princeton's ``dict`` format: ``$WNSEARCHDIR``, else
   ``/usr/share/wordnet`` (Debian/Ubuntu: ``apt-get install --no-install-recommends
   wordnet-base``). Debian's package lacks the small ``lexnames`` table nltk's reader wants, so
   it is supplied here (the 45 lexicographer file names of ``lexnames(5WN)``).

nltk (3.9+) only opens corpus files under its allowed data roots, so a system folder is allowed
for the duration of each file opening and removed again (``nltk.data.path``); nothing else of
nltk's configuration is changed.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ENV = "WNSEARCHDIR"
SYSTEM_DIRS: tuple[str, ...] = ("/usr/share/wordnet", "/usr/local/WordNet-3.0/dict")
_NEEDED = ("index.noun", "data.noun", "index.verb", "data.verb", "data.adj", "data.adv")

#: WordNet 3.0's lexicographer files, in number order (lexnames(5WN)).
LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather",
    "adj.ppl",
)  # fmt: skip
_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


@contextlib.contextmanager
def _allowed(root: str) -> Iterator[None]:
    """Let nltk open files under ``root`` for the duration of the block."""
    import nltk

    added = root not in nltk.data.path
    if added:
        nltk.data.path.append(root)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                nltk.data.path.remove(root)


def _dict_reader_class() -> type:
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class DictWordNet(WordNetCorpusReader):
        """nltk's WordNet reader on a Princeton ``dict`` folder outside nltk's data roots."""

        def __init__(self, root: str) -> None:
            self._wn_root = root
            with _allowed(root), warnings.catch_warnings():
                # no Open Multilingual Wordnet here: English synonyms are all METEOR uses
                warnings.simplefilter("ignore", UserWarning)
                super().__init__(root, None)

        def open(self, file: str) -> Any:
            if file == "lexnames":
                return io.StringIO(
                    "".join(
                        f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n"
                        for i, name in enumerate(LEXNAMES)
                    )
                )
            with _allowed(self._wn_root):
                return super().open(file)

        def map_wn(self, version: str = "wordnet") -> None:
            return None  # no mapping to another WordNet version is needed for METEOR

    return DictWordNet


def system_dirs() -> list[Path]:
    """Candidate WordNet ``dict`` folders, in search order."""
    env = os.environ.get(ENV)
    return [Path(p) for p in ([env] if env else []) + list(SYSTEM_DIRS)]


@functools.lru_cache(maxsize=1)
def find_wordnet() -> tuple[Any | None, str | None]:
    """A WordNet reader and where it came from, or ``(None, None)`` when none is installed
    (looked up once per process: reading a WordNet takes seconds)."""
    from nltk.corpus import wordnet

    try:
        wordnet.ensure_loaded()
        return wordnet, "nltk_data"
    except LookupError:
        pass
    for folder in system_dirs():
        if all((folder / f).is_file() for f in _NEEDED):
            try:
                return _dict_reader_class()(str(folder.resolve())), str(folder)
            except (OSError, ValueError, PermissionError) as exc:
                logger.warning("WordNet at %s could not be read: %s", folder, exc)
    return None, None
