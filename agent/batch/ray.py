"""The batch runner on Ray: the same per-video function, in actors that hold the models.

For datasets that outgrow one machine: start a Ray cluster (``ray start --head`` / workers), then
``vadetective batch ... --engine ray --workers N``. Each actor builds the profile's backends once;
with a model profile on a machine with GPUs, each actor asks Ray for a GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vadetective.agent.batch.worker import VideoOutcome, analyze_video
from vadetective.agent.core.config import Config
from vadetective.agent.datasets import LabeledVideo
from vadetective.tools.models import import_or_extra

log = logging.getLogger(__name__)


class _VideoWorker:
    """A Ray actor: holds the models, analyzes one video per call."""

    def __init__(self, config_json: str, question: str | None, graph: str, out: str) -> None:
        self.config = Config.model_validate_json(config_json)
        self.question, self.graph, self.out = question, graph, Path(out)

    def run(self, item_json: str) -> tuple[str, str, float, str | None, bool | None, bool]:
        item = LabeledVideo.model_validate_json(item_json)
        o = analyze_video(item, self.config, self.question, self.graph, self.out)
        return o.video_id, o.status, o.seconds, o.error, o.is_anomalous, o.fatal


def _gpus_per_actor(config: Config) -> float:
    if config.profile == "classical" or config.device == "cpu":
        return 0.0
    try:
        import torch

        return 1.0 if torch.cuda.is_available() else 0.0
    except ImportError:
        return 0.0


def run_on_ray(
    todo: Sequence[LabeledVideo],
    config: Config,
    question: str | None,
    graph: str,
    out: Path,
    workers: int,
    finish: Callable[[LabeledVideo, Any], None],
) -> None:
    """Analyze ``todo`` on ``workers`` Ray actors, calling ``finish`` as each video ends.

    Connects to a running cluster when ``RAY_ADDRESS`` is set, else starts a local one.
    """

    ray = import_or_extra("ray", "ray", "the Ray engine")
    from ray.util import ActorPool

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        actor_cls = ray.remote(num_cpus=1, num_gpus=_gpus_per_actor(config))(_VideoWorker)
        actors = [
            actor_cls.remote(config.model_dump_json(), question, graph, str(out))
            for _ in range(max(1, workers))
        ]
        pool = ActorPool(actors)
        by_id = {item.video_id: item for item in todo}
        results = pool.map_unordered(
            lambda a, item: a.run.remote(item.model_dump_json()), list(todo)
        )
        for video_id, status, seconds, error, is_anomalous, fatal in results:
            finish(
                by_id[video_id],
                VideoOutcome(
                    video_id, status, seconds, error=error, is_anomalous=is_anomalous, fatal=fatal
                ),
            )
    finally:
        if started_here:
            ray.shutdown()
