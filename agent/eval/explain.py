"""Explanation benchmarks: the verdicts' words scored against reference texts, per granularity.

References come from the dataset: ``LabeledVideo.descriptions`` (a manifest's description,
HIVAU-70k's ``video_summary``) are the ``video`` level; ``timed_descriptions`` are grouped by
their level (UCA ``sentence``, HIVAU ``event`` and ``clip``), and each video's texts of one
level, in time order, make one reference paragraph (the dense-captioning "paragraph"
protocol). Two hypotheses are scored against every level: the verdict's ``justification`` (its
``answer`` when empty) and its ``answer``. Each level is scored over the videos that have
references at that level, with the caption metrics of ``captions.caption_metrics``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import Field

from vadetective.agent.core.errors import MissingExtraError
from vadetective.agent.core.types import Frozen, Verdict
from vadetective.agent.datasets import LabeledVideo
from vadetective.agent.eval.captions import CaptionScores, caption_metrics

logger = logging.getLogger(__name__)

VIDEO_LEVEL = "video"
PROTOCOL = (
    "video level: the dataset's descriptions; timed levels: each video's texts of that level "
    "joined in time order into one paragraph; hypothesis: the justification (or answer), and "
    "the answer"
)


class ExplanationScores(Frozen):
    """Caption metrics of justifications and answers, per reference level."""

    justification: dict[str, CaptionScores] = Field(default_factory=dict)
    answer: dict[str, CaptionScores] = Field(default_factory=dict)
    videos: dict[str, int] = Field(default_factory=dict, description="videos scored per level")
    protocol: str = PROTOCOL


def references(video: LabeledVideo) -> dict[str, list[str]]:
    """A video's reference texts by level (see the module docstring)."""
    out: dict[str, list[str]] = {}
    if video.descriptions:
        out[VIDEO_LEVEL] = list(video.descriptions)
    levels: dict[str, list[tuple[float, float, str]]] = {}
    for t in video.timed_descriptions:
        levels.setdefault(t.level, []).append((t.start_s, t.end_s, t.text))
    for level, items in levels.items():
        out[level] = [" ".join(text for _, _, text in sorted(items))]
    return out


def explanation_scores(
    items: Sequence[tuple[LabeledVideo, Verdict]],
    wanted: bool | None,
    notes: list[str],
) -> ExplanationScores | None:
    """Score every level that has references (None when none has, or when not wanted).

    Args:
        items: (ground truth, verdict) per video.
        wanted: False: skip; None: score when the ``captions`` extra is installed (a note says
            why not otherwise); True: raise ``MissingExtraError`` without it.
        notes: notes of the evaluation, appended to.
    """
    if wanted is False:
        return None
    by_level: dict[str, tuple[list[list[str]], list[str], list[str]]] = {}
    for gt, verdict in items:
        for level, refs in references(gt).items():
            r, just, ans = by_level.setdefault(level, ([], [], []))
            r.append(refs)
            just.append(verdict.justification or verdict.answer)
            ans.append(verdict.answer)
    if not by_level:
        if wanted:
            notes.append("caption metrics asked for, but no video has reference descriptions")
        return None
    try:
        scores = ExplanationScores(
            justification={
                lvl: caption_metrics(r, j) for lvl, (r, j, _) in sorted(by_level.items())
            },
            answer={lvl: caption_metrics(r, a) for lvl, (r, _, a) in sorted(by_level.items())},
            videos={lvl: len(r) for lvl, (r, _, _) in sorted(by_level.items())},
        )
    except MissingExtraError as exc:
        if wanted:
            raise
        notes.append(f"caption metrics skipped: {exc}")
        logger.warning("caption metrics skipped: %s", exc)
        return None
    first = next(iter(scores.justification.values()))
    if not first.meteor_synonyms:
        notes.append(
            "METEOR matched exact words and stems only: no WordNet is installed (it is not on "
            "PyPI; apt-get install wordnet-base, or nltk.download('wordnet'))"
        )
    return scores
