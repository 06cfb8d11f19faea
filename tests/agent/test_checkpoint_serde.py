"""The checkpoint serializer revives every type the case file holds, and nothing else."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import BaseModel

from vadetective.agent.checkpoints import checkpoint_serializer
from vadetective.agent.core.types import Box, TimeSpan
from vadetective.agent.core.vocabulary import (
    Category,
    MeasuredFacts,
    ScoreFamily,
    TimelineFacts,
    ToolName,
)


@pytest.mark.parametrize(
    "value",
    [
        Category.FALL,
        ScoreFamily.SPEED,
        ToolName.SUBMIT_VERDICT,
        TimeSpan(start_s=1.0, end_s=2.5),
        Box(t_s=1.0, xyxy=(1, 2, 30, 40), label="person", score=0.7),
        MeasuredFacts(),
        TimelineFacts(peak_score=0.9, median_score=0.1, dominant_family=ScoreFamily.SPEED),
    ],
    ids=lambda v: type(v).__name__,
)
def test_round_trip_revives_the_type(value: Any, caplog: pytest.LogCaptureFixture) -> None:
    serde = checkpoint_serializer()
    with caplog.at_level(logging.WARNING):
        back = serde.loads_typed(serde.dumps_typed(value))
    assert type(back) is type(value) and back == value
    assert not [r for r in caplog.records if "Blocked" in r.getMessage()]


class Foreign(BaseModel):
    x: int = 1


def test_a_foreign_class_is_not_revived() -> None:
    serde = checkpoint_serializer()
    back = serde.loads_typed(serde.dumps_typed(Foreign()))
    assert not isinstance(back, Foreign)
