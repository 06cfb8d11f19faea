"""The built-in prompt bank of the CLIP/SigLIP scorers.

Zero-shot scoring works best with concrete, action-centric descriptions grouped into a few
families, each paired with normal-activity descriptions of the same kind of scene; long banks
dilute the signal (see FIELD.md: ~40 prompts scored worse than a handful per family). So the
bank below keeps five or six abnormal and three normal prompts per family, written as noun
phrases that fit the template ("a photo of {}.").

A planner's own hypothesis ("a person lying on the ground") becomes an ad-hoc family whose
abnormal side is the phrases and whose normal side is every normal prompt of the bank
(``phrases_family`` / ``PromptBank.for_phrases``).

How a bank scores a frame (``score_frames``, independent of the model that embeds it). With
``z_j`` the model's logit for prompt ``j`` (cosine similarity times the model's logit scale,
plus SigLIP's bias), each prompt gives log-evidence ``e_j``:

- softmax head (CLIP): ``e_j = z_j``;
- sigmoid head (SigLIP): ``e_j = log sigmoid(z_j)``, the log-probability that the frame matches
  prompt ``j`` on its own, which is what SigLIP is trained to output.

A side (the abnormal or the normal prompts of a family) gets ``L = log mean_j exp(e_j)`` and
the family's score is ``sigmoid(L_abnormal - L_normal)`` in [0, 1]. For CLIP this is the softmax
probability of the abnormal prompts with both sides weighted equally however many prompts they
hold; for SigLIP it is ``mean p_abnormal / (mean p_abnormal + mean p_normal)``. The overall
score (``combine="pooled"``, the default) asks the same question with every abnormal prompt of
the bank against every normal one ("normal or abnormal?"), while the family curves answer
"which kind?"; ``combine="max"`` takes the most alarmed family instead (more sensitive, but
with four families it also rises on noise alone).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import ValidationInfo, field_validator, model_validator

from vadetective.agent.core.types import Frozen
from vadetective.agent.core.vocabulary import ScoreFamily

#: The family name given to user phrases.
QUERY_FAMILY = ScoreFamily.QUERY

Head = Literal["softmax", "sigmoid"]
Combine = Literal["pooled", "max"]


def _clean(prompts: Iterable[str], what: str) -> tuple[str, ...]:
    out: list[str] = []
    for p in prompts:
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"{what} must be non-empty strings, got {p!r}")
        text = " ".join(p.split())
        if text not in out:
            out.append(text)
    if not out:
        raise ValueError(f"{what} must hold at least one prompt")
    return tuple(out)


class PromptFamily(Frozen):
    """One kind of anomaly: what it looks like, and what the normal counterpart looks like."""

    name: str
    description: str = ""
    abnormal: tuple[str, ...]
    normal: tuple[str, ...]

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a prompt family needs a non-empty name")
        return v.strip()

    @field_validator("abnormal", "normal", mode="before")
    @classmethod
    def _prompts(cls, v: Sequence[str], info: ValidationInfo) -> tuple[str, ...]:
        field = info.field_name or "prompts"
        if isinstance(v, str):
            raise ValueError(f"{field} prompts must be a list of strings, not one string")
        return _clean(v, f"{field} prompts")


class PromptBank(Frozen):
    """Prompt families plus the template that turns a prompt into the text the model reads."""

    name: str = "builtin"
    template: str = "a photo of {}."
    families: tuple[PromptFamily, ...]

    @field_validator("template")
    @classmethod
    def _template(cls, v: str) -> str:
        if v.count("{}") != 1:
            raise ValueError(f"template must contain exactly one '{{}}' placeholder, got {v!r}")
        return v

    @model_validator(mode="after")
    def _unique_names(self) -> PromptBank:
        if not self.families:
            raise ValueError("a prompt bank needs at least one family")
        names = [f.name for f in self.families]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"family names must be unique, got {', '.join(dupes)} more than once")
        return self

    @property
    def family_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.families)

    def family(self, name: str) -> PromptFamily:
        """The family called ``name``.

        Raises:
            KeyError: When there is none, naming the families there are.
        """
        for f in self.families:
            if f.name == name:
                return f
        raise KeyError(f"no prompt family {name!r}: the bank has {', '.join(self.family_names)}")

    @property
    def abnormal_prompts(self) -> tuple[str, ...]:
        """Every abnormal prompt, in family order, without duplicates."""
        return _dedup(p for f in self.families for p in f.abnormal)

    @property
    def normal_prompts(self) -> tuple[str, ...]:
        """Every normal prompt, in family order, without duplicates."""
        return _dedup(p for f in self.families for p in f.normal)

    @property
    def prompts(self) -> tuple[str, ...]:
        """Every prompt of the bank (abnormal first), without duplicates."""
        return _dedup((*self.abnormal_prompts, *self.normal_prompts))

    def render(self, prompt: str) -> str:
        """The text the model reads for ``prompt``."""
        return self.template.format(prompt)

    def for_phrases(self, phrases: Sequence[str], name: str = QUERY_FAMILY) -> PromptBank:
        """A one-family bank that scores ``phrases`` against this bank's normal prompts."""
        return PromptBank(
            name=f"{self.name}+{name}",
            template=self.template,
            families=(phrases_family(phrases, self, name=name),),
        )


def _dedup(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def phrases_family(
    phrases: Sequence[str], bank: PromptBank | None = None, name: str = QUERY_FAMILY
) -> PromptFamily:
    """An ad-hoc family from a user's hypothesis: abnormal = ``phrases``, normal = the bank's
    normal prompts (the built-in bank when ``bank`` is None).

    Raises:
        ValueError: When ``phrases`` is empty or holds a blank string.
    """
    if isinstance(phrases, str):
        phrases = [phrases]
    base = bank or default_bank()
    return PromptFamily(
        name=name,
        description="the hypothesis being tested",
        abnormal=_clean(phrases, "phrases"),
        normal=base.normal_prompts,
    )


_BUILTIN = PromptBank(
    name="builtin-v1",
    template="a photo of {}.",
    families=(
        PromptFamily(
            name=ScoreFamily.VIOLENCE,
            description="violence and harm to people: fights, assaults, armed threats",
            abnormal=(
                "people punching and kicking each other in a fight",
                "a person beating someone who is lying on the ground",
                "a person pointing a gun at another person",
                "a person attacking someone with a knife",
                "a person violently grabbing and dragging someone",
            ),
            normal=(
                "people standing and talking calmly",
                "people walking past each other peacefully",
                "people shaking hands",
            ),
        ),
        PromptFamily(
            name=ScoreFamily.PROPERTY_CRIME,
            description="crimes against property: burglary, theft, robbery, vandalism",
            abnormal=(
                "a person breaking into a parked car",
                "a person smashing a shop window",
                "a person forcing open a locked door",
                "a person snatching a bag and running off",
                "a person hiding merchandise under their clothes in a store",
                "a person vandalizing property",
            ),
            normal=(
                "a person shopping in a store",
                "a person walking past parked cars",
                "a person opening a door with a key",
            ),
        ),
        PromptFamily(
            name=ScoreFamily.PUBLIC_SAFETY,
            description="public-safety incidents: falls, fire and smoke, explosions, traffic accidents",
            abnormal=(
                "a person falling down to the ground",
                "a person lying motionless on the ground",
                "a building on fire with flames and thick smoke",
                "an explosion",
                "a car crashing into another vehicle",
                "a car hitting a pedestrian",
            ),
            normal=(
                "cars driving normally along a road",
                "people walking on a sidewalk",
                "a quiet street on a clear day",
            ),
        ),
        PromptFamily(
            name=ScoreFamily.UNUSUAL_MOTION,
            description="unusual motion: sprinting, panic, erratic movement, loitering, vehicles on walkways",
            abnormal=(
                "a person sprinting",
                "a crowd of people running away in panic",
                "a person stumbling and moving erratically",
                "a person loitering and lurking in one spot",
                "a person climbing over a fence",
                "a cyclist riding through a crowded pedestrian walkway",
            ),
            normal=(
                "people walking at a normal pace",
                "a person standing and waiting",
                "people sitting on a bench",
            ),
        ),
    ),
)


def default_bank() -> PromptBank:
    """The built-in bank: four families (violence, property crime, public safety, unusual
    motion), five or six abnormal and three normal prompts each."""
    return _BUILTIN


@dataclass(frozen=True)
class TextHead:
    """How similarities become logits: ``z = logit_scale * cos + logit_bias``.

    ``logit_scale`` is the multiplier itself (``exp`` of the model's parameter).
    """

    head: Head
    logit_scale: float
    logit_bias: float = 0.0


def _log_mean_exp(e: np.ndarray, axis: int = -1) -> np.ndarray:
    m = np.max(e, axis=axis, keepdims=True)
    out = m + np.log(np.mean(np.exp(e - m), axis=axis, keepdims=True))
    return np.squeeze(out, axis=axis)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def score_frames(
    sims: np.ndarray,
    prompts: Sequence[str],
    bank: PromptBank,
    head: TextHead,
    combine: Combine = "pooled",
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Anomaly scores from image-text cosine similarities (the formula in the module docstring).

    Args:
        sims: (N, P) cosine similarities of N frames with the P prompts.
        prompts: The P (unrendered) prompts, naming the columns of ``sims``.
        bank: The families to score; every prompt of theirs must be in ``prompts``.
        head: The model's logit scale, bias and head type.
        combine: ``pooled`` (all abnormal vs all normal prompts) or ``max`` (over families).

    Returns:
        The overall score per frame and one score per frame for each family, all in [0, 1].
    """
    sims = np.asarray(sims, dtype=np.float64)
    if sims.ndim != 2 or sims.shape[1] != len(prompts):
        raise ValueError(f"sims must be (frames, {len(prompts)} prompts), got shape {sims.shape}")
    z = head.logit_scale * sims + head.logit_bias
    e = -np.logaddexp(0.0, -z) if head.head == "sigmoid" else z
    col = {p: j for j, p in enumerate(prompts)}

    def evidence(side: Sequence[str]) -> np.ndarray:
        return _log_mean_exp(e[:, [col[p] for p in side]], axis=1)

    families = {f.name: _sigmoid(evidence(f.abnormal) - evidence(f.normal)) for f in bank.families}
    if combine == "max":
        overall = np.max(np.stack(list(families.values())), axis=0)
    elif combine == "pooled":
        overall = _sigmoid(evidence(bank.abnormal_prompts) - evidence(bank.normal_prompts))
    else:
        raise ValueError(f"combine must be 'pooled' or 'max', got {combine!r}")
    return np.clip(overall, 0.0, 1.0), {k: np.clip(v, 0.0, 1.0) for k, v in families.items()}
