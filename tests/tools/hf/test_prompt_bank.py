"""The prompt bank (data and validation) and the rule that turns similarities into scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from vadetective.tools.prompt_bank import (
    QUERY_FAMILY,
    PromptBank,
    PromptFamily,
    TextHead,
    default_bank,
    phrases_family,
    score_frames,
)


def test_builtin_bank_is_small_grouped_and_paired() -> None:
    bank = default_bank()
    assert bank.family_names == ("violence", "property_crime", "public_safety", "unusual_motion")
    for fam in bank.families:
        assert 3 <= len(fam.abnormal) <= 7, fam.name  # a handful: long banks dilute
        assert len(fam.normal) >= 2, fam.name
        assert fam.description
    assert len(bank.prompts) <= 40
    assert not set(bank.abnormal_prompts) & set(bank.normal_prompts)
    # every prompt reads as a noun phrase inside the template
    for p in bank.prompts:
        assert bank.render(p) == f"a photo of {p}."
        assert p == p.strip() and not p.endswith(".")


def test_bank_round_trips_through_json() -> None:
    bank = default_bank()
    assert PromptBank.model_validate_json(bank.model_dump_json()) == bank


def test_bank_is_frozen() -> None:
    with pytest.raises(ValidationError):
        default_bank().template = "{}"


def test_phrases_become_a_family_against_the_bank_normals() -> None:
    bank = default_bank()
    fam = phrases_family(["  a person lying   on the ground ", "a person lying on the ground"])
    assert fam.name == QUERY_FAMILY
    assert fam.abnormal == ("a person lying on the ground",)  # cleaned and de-duplicated
    assert fam.normal == bank.normal_prompts
    adhoc = bank.for_phrases(["smoke"])
    assert adhoc.family_names == (QUERY_FAMILY,)
    assert adhoc.template == bank.template
    assert phrases_family("a fire").abnormal == ("a fire",)


@pytest.mark.parametrize("phrases", [[], [""], ["   "], ["a fire", ""]])
def test_empty_or_blank_phrases_are_rejected(phrases: list[str]) -> None:
    with pytest.raises(ValueError, match="phrases"):
        phrases_family(phrases)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"template": "a photo"}, "placeholder"),
        ({"template": "{} and {}"}, "placeholder"),
        ({"families": ()}, "at least one family"),
        (
            {"families": (PromptFamily(name="a", abnormal=("x",), normal=("y",)),) * 2},
            "unique",
        ),
    ],
)
def test_bank_validation_names_the_problem(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "families": (PromptFamily(name="a", abnormal=("x",), normal=("y",)),)
    }
    values.update(kwargs)
    with pytest.raises(ValidationError, match=message):
        PromptBank(**values)  # type: ignore[arg-type]


def test_family_lookup() -> None:
    bank = default_bank()
    assert bank.family("violence").name == "violence"
    with pytest.raises(KeyError, match="no prompt family 'arson'"):
        bank.family("arson")


# -- score_frames -----------------------------------------------------------------------------

ONE = PromptBank(families=(PromptFamily(name="f", abnormal=("a",), normal=("n",)),))


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_softmax_head_matches_hand_computation() -> None:
    overall, fam = score_frames(
        np.array([[0.3, 0.1], [0.1, 0.3]]), ["a", "n"], ONE, TextHead("softmax", 10.0)
    )
    assert overall == pytest.approx([_sig(2.0), _sig(-2.0)])
    assert fam["f"] == pytest.approx(overall)


def test_sigmoid_head_is_the_ratio_of_match_probabilities() -> None:
    head = TextHead("sigmoid", logit_scale=10.0, logit_bias=-5.0)
    overall, _ = score_frames(np.array([[0.3, 0.1]]), ["a", "n"], ONE, head)
    pa, pn = _sig(10 * 0.3 - 5), _sig(10 * 0.1 - 5)
    assert overall[0] == pytest.approx(pa / (pa + pn))
    # the bias matters for the sigmoid head (it would cancel out in a softmax)
    other, _ = score_frames(np.array([[0.3, 0.1]]), ["a", "n"], ONE, TextHead("sigmoid", 10.0, 5.0))
    assert other[0] != pytest.approx(overall[0])


def test_sides_are_balanced_whatever_their_prompt_counts() -> None:
    bank = PromptBank(
        families=(PromptFamily(name="f", abnormal=("a1", "a2", "a3"), normal=("n",)),)
    )
    overall, _ = score_frames(
        np.full((2, 4), 0.2), ["a1", "a2", "a3", "n"], bank, TextHead("softmax", 100.0)
    )
    assert overall == pytest.approx([0.5, 0.5])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pooled_score_is_the_softmax_mass_of_abnormal_prompts(seed: int) -> None:
    bank = default_bank()
    prompts = list(bank.prompts)
    assert len(bank.abnormal_prompts) != len(bank.normal_prompts)
    sims = np.random.default_rng(seed).uniform(-0.1, 0.4, (6, len(prompts)))
    overall, families = score_frames(sims, prompts, bank, TextHead("softmax", 50.0))
    z = 50.0 * sims
    n_a, n_n = len(bank.abnormal_prompts), len(bank.normal_prompts)
    w = np.where(np.arange(len(prompts)) < n_a, 1.0 / n_a, 1.0 / n_n)  # equal prior per side
    p = w * np.exp(z - z.max(axis=1, keepdims=True))
    expected = p[:, :n_a].sum(axis=1) / p.sum(axis=1)
    np.testing.assert_allclose(overall, expected, rtol=1e-10)
    assert set(families) == set(bank.family_names)
    maxed, _ = score_frames(sims, prompts, bank, TextHead("softmax", 50.0), combine="max")
    np.testing.assert_allclose(maxed, np.max(np.stack(list(families.values())), axis=0))


def test_family_scores_follow_their_own_prompts() -> None:
    bank = PromptBank(
        families=(
            PromptFamily(name="fire", abnormal=("flames",), normal=("street",)),
            PromptFamily(name="fight", abnormal=("punch",), normal=("talk",)),
        )
    )
    prompts = ["flames", "punch", "street", "talk"]
    sims = np.array([[0.35, 0.1, 0.1, 0.1]])  # looks like fire, not like a fight
    overall, fam = score_frames(sims, prompts, bank, TextHead("softmax", 100.0))
    assert fam["fire"][0] > 0.99
    assert fam["fight"][0] == pytest.approx(0.5)
    assert 0.5 < overall[0] < fam["fire"][0]


def test_score_frames_checks_shapes_and_combine() -> None:
    with pytest.raises(ValueError, match="2 prompts"):
        score_frames(np.zeros((3, 5)), ["a", "n"], ONE, TextHead("softmax", 1.0))
    with pytest.raises(ValueError, match="combine"):
        score_frames(np.zeros((1, 2)), ["a", "n"], ONE, TextHead("softmax", 1.0), combine="mean")  # type: ignore[arg-type]
