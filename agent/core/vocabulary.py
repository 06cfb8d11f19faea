"""The shared vocabulary: the names every layer speaks, defined once.

Tool names, score families, verdict categories, trace step kinds and the facts an inspector
measures are typed names here; scorers, inspectors, planners, the chain, reports and the CLI
import them instead of writing string literals. ``StrEnum`` members compare equal to their
string values, so traces and JSON stay plain strings.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class ToolName(StrEnum):
    """The tools the planner can call."""

    SAMPLE_FRAMES = "sample_frames"
    SCORE_TIMELINE = "score_timeline"
    GROUND = "ground"
    INSPECT_CROP = "inspect_crop"
    SUBMIT_VERDICT = "submit_verdict"


#: The tools that gather evidence (everything but the verdict), in the planner's order.
EVIDENCE_TOOLS: tuple[ToolName, ...] = (
    ToolName.SAMPLE_FRAMES,
    ToolName.SCORE_TIMELINE,
    ToolName.GROUND,
    ToolName.INSPECT_CROP,
)

#: The tools whose images are shown to the planner.
IMAGE_TOOLS: frozenset[ToolName] = frozenset({ToolName.SAMPLE_FRAMES, ToolName.INSPECT_CROP})

StepKind = Literal["perceive", "plan", "tool", "check", "verdict", "note"]


class ScoreFamily(StrEnum):
    """Families of anomaly evidence a temporal scorer reports, one curve each.

    The weight-free motion scorer reports the first five; the CLIP/SigLIP prompt bank the next
    four; ``QUERY`` is the family of a scorer run on the planner's own phrases.
    """

    SPEED = "speed"
    STILLNESS = "stillness"
    APPEARANCE = "appearance"
    ERRATIC = "erratic"
    COUNTERFLOW = "counterflow"
    VIOLENCE = "violence"
    PROPERTY_CRIME = "property_crime"
    PUBLIC_SAFETY = "public_safety"
    UNUSUAL_MOTION = "unusual_motion"
    QUERY = "query"


#: The families of the weight-free motion scorer, in its order.
MOTION_FAMILIES: tuple[ScoreFamily, ...] = (
    ScoreFamily.SPEED,
    ScoreFamily.STILLNESS,
    ScoreFamily.APPEARANCE,
    ScoreFamily.ERRATIC,
    ScoreFamily.COUNTERFLOW,
)


class Category(StrEnum):
    """Built-in verdict categories: what the analysis says happened.

    A verdict's ``category`` is a plain string: a model planner may name anything ("fighting"),
    and a user's rule names its own. These are the names the built-in perception measures.
    """

    RUNNING = "running"
    FALL = "fall"
    OBJECT_LEFT = "object left behind"
    SUDDEN_APPEARANCE = "sudden appearance"
    ERRATIC = "erratic motion"
    COUNTERFLOW = "moving against the flow"
    LOITERING = "loitering"
    VIOLENCE = "violence"
    PROPERTY_CRIME = "property crime"
    PUBLIC_SAFETY = "public safety incident"
    UNUSUAL_MOTION = "unusual motion"


#: The category a score family points at when nothing more specific was measured.
FAMILY_CATEGORY: dict[ScoreFamily, Category] = {
    ScoreFamily.SPEED: Category.RUNNING,
    ScoreFamily.STILLNESS: Category.FALL,
    ScoreFamily.APPEARANCE: Category.SUDDEN_APPEARANCE,
    ScoreFamily.ERRATIC: Category.ERRATIC,
    ScoreFamily.COUNTERFLOW: Category.COUNTERFLOW,
    ScoreFamily.VIOLENCE: Category.VIOLENCE,
    ScoreFamily.PROPERTY_CRIME: Category.PROPERTY_CRIME,
    ScoreFamily.PUBLIC_SAFETY: Category.PUBLIC_SAFETY,
    ScoreFamily.UNUSUAL_MOTION: Category.UNUSUAL_MOTION,
}

#: Short grounding phrases (anomaly "tags") for what a family's peak may show.
FAMILY_TAGS: dict[ScoreFamily, tuple[str, ...]] = {
    ScoreFamily.SPEED: ("running person",),
    ScoreFamily.STILLNESS: ("person lying on the ground", "abandoned object"),
    ScoreFamily.APPEARANCE: ("object that suddenly appeared",),
    ScoreFamily.ERRATIC: ("person moving erratically",),
    ScoreFamily.COUNTERFLOW: ("person walking against the crowd",),
    ScoreFamily.VIOLENCE: ("people fighting",),
    ScoreFamily.PROPERTY_CRIME: ("person damaging property",),
    ScoreFamily.PUBLIC_SAFETY: ("person lying on the ground",),
    ScoreFamily.UNUSUAL_MOTION: ("person moving unusually",),
}

#: Words of a question that ask about a category (matched as lower-case substrings).
#: ``asked_categories`` reads them to know what a question asks about.
QUESTION_WORDS: dict[Category, tuple[str, ...]] = {
    Category.RUNNING: ("run", "sprint", "rush", "chas", "flee", "fast", "race", "dash"),
    Category.FALL: ("fall", "fell", "lying", "collaps", "faint", "on the ground"),
    Category.OBJECT_LEFT: ("left behind", "abandon", "unattended", "bag", "package", "luggage",
                           "suitcase", "left an object"),
    Category.SUDDEN_APPEARANCE: ("appear", "sudden", "emerge", "out of nowhere"),
    Category.COUNTERFLOW: ("wrong way", "wrong direction", "against", "opposite direction"),
    Category.ERRATIC: ("erratic", "zigzag", "fight", "struggl", "stumbl", "panic", "jitter"),
    Category.LOITERING: ("loiter", "linger", "hang around", "hanging around"),
}  # fmt: skip

#: Further words that point a scorer at a family without naming a category precisely
#: (a scorer weighs families by ``QUESTION_WORDS`` of their categories plus these).
FAMILY_HINT_WORDS: dict[ScoreFamily, tuple[str, ...]] = {
    ScoreFamily.SPEED: ("speed", "hurr", "escap", "jog", "bolt"),
    ScoreFamily.STILLNESS: ("lie ", "lies", "ground", "still", "static", "motionless", "stopp",
                            "left", "drop", "object", "parcel", "box", "parked", "stay", "idle",
                            "wait"),
    ScoreFamily.APPEARANCE: ("nowhere", "pop", "materiali", "new "),
    ScoreFamily.ERRATIC: ("chaotic", "flail", "swerv", "drunk", "confus", "wander", "irregular"),
    ScoreFamily.COUNTERFLOW: ("opposite", "counter", "revers", "backward", "contraflow",
                              "upstream", "turn around", "turns around"),
}  # fmt: skip

#: The score families each category's evidence shows up in.
CATEGORY_FAMILIES: dict[Category, tuple[ScoreFamily, ...]] = {
    Category.RUNNING: (ScoreFamily.SPEED,),
    Category.FALL: (ScoreFamily.STILLNESS,),
    Category.OBJECT_LEFT: (ScoreFamily.STILLNESS,),
    Category.SUDDEN_APPEARANCE: (ScoreFamily.APPEARANCE,),
    Category.COUNTERFLOW: (ScoreFamily.COUNTERFLOW,),
    Category.ERRATIC: (ScoreFamily.ERRATIC,),
    Category.LOITERING: (ScoreFamily.STILLNESS, ScoreFamily.ERRATIC),
}


def asked_categories(question: str) -> set[Category]:
    """The categories a question asks about (empty for a general question)."""
    q = question.lower()
    return {cat for cat, words in QUESTION_WORDS.items() if any(w in q for w in words)}


def family_words(family: ScoreFamily) -> tuple[str, ...]:
    """Every word that points at ``family``: its categories' question words plus its hints."""
    words = [w for cat, fams in CATEGORY_FAMILIES.items() if family in fams
             for w in QUESTION_WORDS[cat]]  # fmt: skip
    return tuple(dict.fromkeys([*words, *FAMILY_HINT_WORDS.get(family, ())]))


def asked_families(text: str, families: tuple[ScoreFamily, ...]) -> set[ScoreFamily]:
    """Which of ``families`` the words of ``text`` point at (empty when none)."""
    t = text.lower()
    return {f for f in families if any(w in t for w in family_words(f))}


Posture = Literal["upright", "lying", "unknown"]
BlobLabel = Literal["person", "object", "group", "vehicle"]


class MeasuredFacts(BaseModel):
    """What the weight-free inspector measured about one box, with units in the names.

    Every field is optional: a blob that was not matched has only ``matched`` and the box size.
    The rule planner, the chain, prompts and reports read these fields by name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    matched: bool = False
    match_iou: float | None = None
    note: str | None = None
    label: str | None = None
    width_px: float | None = None
    height_px: float | None = None
    aspect_hw: float | None = None
    posture: str | None = None
    size_vs_person: float | None = None
    speed_px_s: float | None = None
    speed_body_lengths_s: float | None = None
    typical_speed_px_s: float | None = None
    speed_vs_typical: float | None = None
    moving: bool | None = None
    tracked_s: float | None = None
    direction_deg: float | None = None
    dominant_direction_deg: float | None = None
    angle_to_flow_deg: float | None = None
    against_flow: bool | None = None
    direction_rarity: float | None = None
    static_for_s: float | None = None
    appeared_suddenly: bool | None = None
    appeared_at_s: float | None = None
    entered_from_edge: bool | None = None
    separated_from_person: bool | None = None
    erratic: bool | None = None

    def present(self) -> dict[str, float | int | str | bool]:
        """The measured fields only (for prompts, reports and the trace)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class TimelineFacts(BaseModel):
    """What a timeline scoring found: its peak, median and strongest family."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    peak_score: float = 0.0
    median_score: float = 0.0
    dominant_family: str | None = None

    def category(self) -> Category | None:
        """The built-in category of the dominant family, when it names one."""
        try:
            return FAMILY_CATEGORY.get(ScoreFamily(self.dominant_family or ""))
        except ValueError:
            return None


class RunFolder(StrEnum):
    """The names inside a batch run folder (see ``agent.batch``)."""

    RUN = "run.json"  # configuration, profile, model ids, prompts, versions, dataset spec
    RESULTS = "results"  # results/<video_id>.json, one per finished video, written atomically
    TRACES = "traces"  # traces/<video_id>/trace.json, verdict.json and the frames it cites
    FAILURES = "failures.jsonl"  # one line per failed attempt
    METRICS = "metrics.json"  # what `vadetective eval` computed
    PAGE = "report.html"  # the run page `vadetective eval` writes over the whole run
    LOCKS = "locks"  # locks/<video_id>.lock: claims of the batches working on this folder
