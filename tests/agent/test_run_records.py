"""Run provenance, mixed-configuration checks, comparisons, explanation scores per level and
METEOR's WordNet: the pieces behind ``run.json``, ``vadetective eval`` and ``compare``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from vadetective.agent.batch import provenance as P
from vadetective.agent.core.config import ServerSettings, config_for
from vadetective.agent.core.types import ScoreCurve, Verdict
from vadetective.agent.datasets import LabeledVideo, TimedText
from vadetective.agent.eval import explain as X
from vadetective.agent.eval.compare import config_diff, flatten, prompt_diff
from vadetective.agent.eval.runs import RunResult, mixed_configurations, redact, video_rows, worst


def _result(
    vid: str, sha: str | None, packages: str = "p1", score: float = 0.5, **kw: Any
) -> RunResult:
    verdict = Verdict(
        question="q",
        answer="a",
        is_anomalous=kw.get("predicted", True),
        frame_scores=ScoreCurve(t_s=[0.0, 1.0], score=[0.1, score]),
    )
    return RunResult.model_validate(
        {
            "video_id": vid,
            "path": f"/v/{vid}.mp4",
            "verdict": verdict.model_dump(),
            "video": {
                "path": f"/v/{vid}.mp4",
                "fps": 10.0,
                "frame_count": 20,
                "duration_s": 2.0,
                "resolution_wh": [64, 48],
                "content_hash": vid,
            },
            "models": kw.get("models", {"planner": "rules:rules"}),
            "provenance": {"config_sha": sha, "packages_sha": packages} if sha else {},
        }
    )


# ------------------------------------------------------------------------ provenance


def test_fingerprint_follows_what_changes_a_verdict_not_secrets_or_paths() -> None:
    base = config_for("classical")
    sha = P.config_fingerprint(base, None, "detective")
    assert sha == P.config_fingerprint(config_for("classical"), None, "detective")
    assert sha != P.config_fingerprint(config_for("classical", max_steps=3), None, "detective")
    assert sha != P.config_fingerprint(base, "Is anyone running?", "detective")
    assert sha != P.config_fingerprint(base, None, "chain")
    assert sha == P.config_fingerprint(config_for("classical", cache_dir="/x"), None, "detective")
    a = config_for("server", server=ServerSettings(base_url="http://h/v1", api_key="sk-1"))
    b = config_for("server", server=ServerSettings(base_url="http://h/v1", api_key="sk-2"))
    assert P.config_fingerprint(a, None, "detective") == P.config_fingerprint(b, None, "detective")
    assert "sk-1" not in json.dumps(P.public_config(a))


def test_model_revisions_name_local_weights_and_what_is_missing(tmp_path: Path) -> None:
    folder = tmp_path / "my-clip"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights-1")
    config = config_for("classical", scorer="clip", models={"clip": str(folder)})
    rev = P.model_revisions(config)
    assert rev["scorer"]["model"] == str(folder) and rev["scorer"]["revision"].startswith("local:")
    (folder / "model.safetensors").write_bytes(b"weights-2")  # other weights, other revision
    assert P.model_revisions(config)["scorer"]["revision"] != rev["scorer"]["revision"]
    assert rev["grounder"] == {"backend": "motion", "model": None, "revision": "no weights"}
    absent = P.model_revisions(config_for("classical", scorer="clip", models={"clip": "org/none"}))
    assert (
        absent["scorer"]["revision"] is None and "not on this machine" in absent["scorer"]["note"]
    )
    served = P.model_revisions(
        config_for("server", server=ServerSettings(base_url="http://h/v1", model="m"))
    )
    assert served["planner"]["model"] == "m" and served["planner"]["endpoint"] == "http://h/v1"


def test_model_revisions_name_the_hub_commit_of_a_cached_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = tmp_path / "hub" / "models--org--tiny-clip"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    config = config_for("classical", scorer="clip", models={"clip": "org/tiny-clip"})
    assert P.model_revisions(config)["scorer"]["revision"] is None  # config only: no weights
    (snap / "model.safetensors").write_bytes(b"w")
    assert P.model_revisions(config)["scorer"] == {
        "backend": "clip",
        "model": "org/tiny-clip",
        "revision": f"org/tiny-clip@{commit}",
    }


def test_packages_name_the_versions_that_matter() -> None:
    versions = P.package_versions()
    assert {"python", "vadetective", "numpy", "scikit-learn"} <= set(versions)
    assert len(P.packages_fingerprint()) == 12


# --------------------------------------------------------------- mixed configurations


@pytest.mark.parametrize(
    ("results", "record", "says"),
    [
        ([("a", "s1"), ("b", "s1")], {"provenance": {"config_sha": "s1"}}, []),
        ([("a", "s1"), ("b", "s2")], {}, ["mix 2 configurations (s1: 1 videos, s2: 1 videos)"]),
        ([("a", "s1"), ("b", "s1")], {"provenance": {"config_sha": "s9"}}, ["than run.json"]),
        ([("a", "s1"), ("b", None)], {}, ["1 results carry no configuration fingerprint"]),
    ],
)
def test_mixed_configurations(
    results: list[tuple[str, str | None]], record: dict, says: list[str]
) -> None:
    got = mixed_configurations(record, [_result(v, s) for v, s in results])
    assert len(got) == len(says)
    for sentence, fragment in zip(got, says, strict=True):
        assert fragment in sentence


def test_mixed_packages_and_models() -> None:
    got = mixed_configurations({}, [_result("a", "s", "p1"), _result("b", "s", "p2")])
    assert got == [got[0]] and "2 different sets of package versions" in got[0]
    legacy = [_result("a", None, models={"m": "1"}), _result("b", None, models={"m": "2"})]
    assert any("2 different sets of models" in s for s in mixed_configurations({}, legacy))


def test_rows_rank_the_worst_misses_and_false_alarms_first() -> None:
    from vadetective.agent.datasets import Dataset

    videos = [
        LabeledVideo(video_id=v, path=f"/v/{v}.mp4", dataset="t", is_anomalous=truth)
        for v, truth in (("m1", True), ("m2", True), ("f1", False), ("ok", False))
    ]
    ds = Dataset(kind="t", root="/v", videos=videos)
    results = [
        _result("m1", "s", score=0.2, predicted=False),
        _result("m2", "s", score=0.4, predicted=False),
        _result("f1", "s", score=0.9, predicted=True),
        _result("ok", "s", score=0.3, predicted=False),
    ]
    rows = video_rows(results, ds)
    assert [r.video_id for r in worst(rows, "miss")] == ["m1", "m2"]
    assert [r.outcome for r in rows] == ["miss", "miss", "false alarm", "correct rejection"]
    assert [r.video_id for r in worst(rows, "false alarm")] == ["f1"]


# -------------------------------------------------------------------------- comparison


def test_config_and_prompt_differences_without_secrets() -> None:
    a = {"profile": "classical", "config": {"max_steps": 12, "server": {"api_key": "k1"}},
         "prompts": {"system": "Look.\nThink.", "final": "Decide."}, "started_at": "1"}  # fmt: skip
    b = {"profile": "server", "config": {"max_steps": 8, "server": {"api_key": "k2"}},
         "prompts": {"system": "Look.\nThink twice.", "final": "Decide."}, "started_at": "2"}  # fmt: skip
    diffs = {d.key: (d.a, d.b) for d in config_diff(a, b)}
    assert diffs == {"profile": ('"classical"', '"server"'), "config.max_steps": ("12", "8")}
    prompts = prompt_diff(a, b, ("A", "B"))
    assert list(prompts) == ["system"] and "-Think." in prompts["system"]
    assert "+Think twice." in prompts["system"]
    assert flatten({"a": {"b": 1}, "c": [1]}) == {"a.b": 1, "c": [1]}
    assert redact({"x": {"api_key": "s", "token": ""}, "y": [{"password": "p"}]}) == {
        "x": {"api_key": "***", "token": ""},
        "y": [{"password": "***"}],
    }


# ------------------------------------------------------------------ explanation levels


def test_references_by_level_and_scores_per_level() -> None:
    pytest.importorskip("rouge_score")
    video = LabeledVideo(
        video_id="v",
        path="/v.mp4",
        dataset="t",
        is_anomalous=True,
        spans=[],
        descriptions=["a man runs across the square"],
        timed_descriptions=[
            TimedText(start_s=5, end_s=6, text="he falls down", level="event"),
            TimedText(start_s=1, end_s=2, text="a man runs", level="event"),
            TimedText(start_s=0, end_s=9, text="people walk", level="clip"),
        ],
    )
    other = video.model_copy(update={"video_id": "w", "descriptions": ["a car stops"]})
    refs = X.references(video)
    assert refs == {"video": ["a man runs across the square"], "event": ["a man runs he falls down"],
                    "clip": ["people walk"]}  # fmt: skip
    verdicts = [
        Verdict(question="q", answer="a man is running", is_anomalous=True,
                justification="a man runs across the square"),
        Verdict(question="q", answer="nothing", is_anomalous=False, justification=""),
    ]  # fmt: skip
    notes: list[str] = []
    scores = X.explanation_scores(list(zip([video, other], verdicts, strict=True)), None, notes)
    assert scores is not None
    assert scores.videos == {"clip": 2, "event": 2, "video": 2}
    assert scores.justification["video"].rouge_l > scores.answer["video"].rouge_l
    assert X.explanation_scores([(video, verdicts[0])], False, notes) is None


def test_meteor_says_when_no_wordnet_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rouge_score")
    from vadetective.agent.eval import captions, wordnet

    monkeypatch.setattr(wordnet, "find_wordnet", lambda: (None, None))
    got = captions.caption_metrics([["a man hits a car"]], ["a person strikes an automobile"])
    assert got.meteor_synonyms is False and got.wordnet is None
    video = LabeledVideo(video_id="v", path="/v", dataset="t", is_anomalous=True,
                         descriptions=["a man hits a car"])  # fmt: skip
    verdict = Verdict(question="q", answer="a person strikes an automobile", is_anomalous=True)
    notes: list[str] = []
    X.explanation_scores([(video, verdict)], None, notes)
    assert any("not on PyPI" in n and "wordnet-base" in n for n in notes)


def test_meteor_finds_synonyms_in_the_system_wordnet() -> None:
    """Debian's wordnet-base (``apt-get install wordnet-base``) holds WordNet 3.0; ``.ci/run``
    installs it. Locally, without it, there is nothing to read (skipped with the command);
    under CI (``CI`` set) a missing WordNet fails, so a broken install never passes as green."""
    from vadetective.agent.eval import captions, wordnet

    wordnet.find_wordnet.cache_clear()
    reader, _ = wordnet.find_wordnet()
    if reader is None:
        msg = "no WordNet data installed (apt-get install --no-install-recommends wordnet-base)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    assert "car" in {lemma.name() for s in reader.synsets("automobile") for lemma in s.lemmas()}
    # nltk looks synonyms up on the Porter stems of unmatched words, so "automobile" (stem
    # "automobil") finds none; "auto" is its own stem and a synonym of "car".
    refs, hyp = [["a man hits a car"]], ["a man hits an auto"]
    with_syn = captions.caption_metrics(refs, hyp, wordnet=reader)
    without = captions.caption_metrics(refs, hyp, wordnet=captions._NoWordNet())
    assert with_syn.meteor > without.meteor and with_syn.meteor_synonyms
