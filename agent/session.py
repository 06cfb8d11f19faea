"""The Python session API: ``Detective`` and ``analyze``.

from vadetective import Detective, analyze
d = Detective("clip.mp4", profile="auto")   # opens the video once
v = d.ask("Is anyone fighting?")            # -> Verdict
v2 = d.ask("What happened around 0:31?")    # reuses frames, scores and loaded models
d.last_trace                                # -> Trace of the last question
v = analyze("clip.mp4", "Is anything unusual?")
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import ValidationError

from vadetective.agent.checkpoints import checkpointer, read_state
from vadetective.agent.core.catalog import Role
from vadetective.agent.core.config import Config, config_error
from vadetective.agent.core.errors import ConfigError, SessionClosedError, VadetectiveError
from vadetective.agent.core.io import atomic_write_text, writable_folder
from vadetective.agent.core.types import Cost, Trace, TraceStep, Verdict, utcnow
from vadetective.agent.preflight import preflight
from vadetective.agent.profiles import profile_config
from vadetective.graphs.builders import build_graph
from vadetective.graphs.nodes import Runtime
from vadetective.graphs.planners.base import ChatPlanner, build_planner
from vadetective.graphs.state import initial_state
from vadetective.tools.base import FrameSource
from vadetective.tools.toolbox import Backends, Toolbox
from vadetective.tools.video.sources import open_video

log = logging.getLogger(__name__)

DEFAULT_QUESTION = "Is anything unusual or abnormal happening in this video?"

StepCallback = Callable[[TraceStep], None]


class Detective:
    """A session on one video: open it once, ask as many questions as you like.

    Args:
        video: Path to the video file, or to a folder of frames (read as one video), or an
            open ``FrameSource`` (e.g. a window of a live stream); the session closes it with
            ``close()`` either way.
        profile: ``auto``, ``classical``, ``local`` or ``server`` (ignored when ``config`` is given).
        out: Folder for verdicts, traces and the frames they cite; a temporary folder if None.
        config: A full configuration; overrides ``profile`` and keyword overrides.
        planner: A planner object or LangChain chat model to use instead of the profile's.
        backends: Prebuilt backends to share between sessions (models loaded once).
        fps: Frame rate of a frame folder (its images carry no timestamps); ignored for files.
        fps_source: Where ``fps`` came from (e.g. a dataset's convention), recorded in the
            trace's ``VideoInfo.fps_source``.
        **overrides: Config fields, e.g. ``max_steps=8`` or ``graph="chain"``.
    """

    def __init__(
        self,
        video: str | Path | FrameSource,
        profile: str = "auto",
        out: str | Path | None = None,
        config: Config | None = None,
        planner: Any | None = None,
        backends: Backends | None = None,
        fps: float | None = None,
        fps_source: str | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(planner, str):  # a planner backend by name, checked like any setting
            if config is None:
                overrides["planner"], planner = planner, None
            else:
                config, planner = _with(config, planner=planner), None
        elif planner is not None and not (
            hasattr(planner, "decide") or isinstance(planner, BaseChatModel)
        ):
            raise ConfigError(
                "planner must be a planner name, an object with decide(), or a LangChain chat "
                f"model, got {type(planner).__name__}"
            )
        self.config = config if config is not None else profile_config(profile, **overrides)
        # A profile that cannot run is an error now, before the video is decoded.
        prebuilt: tuple[Role, ...] = ("scorer", "grounder", "inspector") if backends else ()
        preflight(
            self.config, skip_roles=(*prebuilt, *(("planner",) if planner is not None else ()))
        )
        # ... and so is an output folder that cannot be written (not after the analysis).
        self.out = (
            writable_folder(out, "the output folder")
            if out is not None
            else Path(tempfile.mkdtemp(prefix="vadetective-run-"))
        )
        self.source: FrameSource = (
            open_video(video, fps=fps, fps_source=fps_source)
            if isinstance(video, str | Path)
            else video
        )
        self.backends = backends or Backends(self.config)
        self.toolbox = Toolbox(self.source, self.config, self.out, self.backends)
        self._planner_override = planner
        self._planner: Any | None = None
        self.traces: list[Trace] = []
        self._closed = False

    # ------------------------------------------------------------------ public
    @property
    def info(self) -> Any:
        return self.source.info

    @property
    def last_trace(self) -> Trace | None:
        return self.traces[-1] if self.traces else None

    def ask(
        self,
        question: str | None = None,
        graph: str | None = None,
        checkpoint: str | Path | None = None,
        on_step: StepCallback | None = None,
        save: bool = True,
    ) -> Verdict:
        """Answer a question about the video.

        Args:
            question: What to ask; a general anomaly question if None.
            graph: ``detective`` (the agentic loop, default) or ``chain`` (fixed chain).
            checkpoint: A SQLite file; an interrupted run with the same video and question
                resumes from it.
            on_step: Called with each trace step as it happens (for live progress).
            save: Write ``verdict.json`` and ``trace.json`` (numbered after the first question)
                into the output folder.

        Returns:
            The verdict; the full trace is in ``last_trace``.
        """
        if self._closed:
            raise SessionClosedError(
                "this Detective is closed: its video is no longer open; open a new Detective"
            )
        question = (question or DEFAULT_QUESTION).strip() or DEFAULT_QUESTION
        graph_name = graph or self.config.graph
        started = utcnow()
        t0 = time.perf_counter()
        decoded0 = self.source.frames_decoded
        frame_cache = getattr(self.source, "cache", None)  # a VideoSource's FrameCache, if any
        hits0 = int(getattr(frame_cache, "hits", 0))
        state = self._run_graph(question, graph_name, checkpoint, on_step)
        verdict: Verdict = state["verdict"]
        steps: list[TraceStep] = state.get("steps", [])
        seconds = time.perf_counter() - t0
        stages = dict(state.get("stage_seconds") or {})
        decoded = self.source.frames_decoded - decoded0
        n_frames = self.source.info.frame_count
        cost = Cost(
            planner_calls=int(state.get("planner_calls", 0)),
            # every executed tool call (perception included) produced evidence; refused ones did not
            tool_calls=sum(1 for s in steps if s.evidence_id is not None),
            frames_decoded=decoded,
            decoded_per_frame=round(decoded / n_frames, 4) if n_frames else None,
            frames_from_cache=int(getattr(frame_cache, "hits", 0)) - hits0,
            frames_shown=int(state.get("frames_shown", 0)),
            seconds_total=round(seconds, 4),
            seconds_by_stage={k: round(v, 4) for k, v in stages.items()},
            **_token_totals(steps),
        )
        models = {
            "planner": f"{self.planner.name}:{self.planner.model_id}",
            **self.backends.model_ids(),
        }
        trace = Trace(
            question=question,
            video=self.source.info,
            profile=self.config.profile,
            graph=graph_name,
            models=models,
            planner=self._planner_description(),
            steps=steps,
            evidence=state.get("evidence", []),
            verdict=verdict,
            cost=cost,
            started_at=started,
        )
        self.traces.append(trace)
        if save:
            self.save_last()
        return verdict

    def replay(self, console: Any | None = None) -> None:
        """Print the last question's trace step by step (rich), in a terminal or a notebook."""
        from vadetective.agent.report.replay import replay_trace

        if self.last_trace is None:
            raise RuntimeError("nothing to replay yet: call ask() first")
        replay_trace(self.last_trace, console=console)

    def save_last(self) -> tuple[Path, Path]:
        """Write the last verdict and trace into the output folder; return their paths."""
        trace = self.last_trace
        if trace is None or trace.verdict is None:
            raise RuntimeError("nothing to save yet: call ask() first")
        n = len(self.traces)
        suffix = "" if n == 1 else f"-{n}"
        verdict_path = self.out / f"verdict{suffix}.json"
        trace_path = self.out / f"trace{suffix}.json"
        atomic_write_text(verdict_path, trace.verdict.model_dump_json(indent=2))
        trace.save(trace_path)
        return verdict_path, trace_path

    def close(self) -> None:
        """Close the video; ``ask`` refuses afterwards."""
        self._closed = True
        self.source.close()

    def __enter__(self) -> Detective:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    @property
    def planner(self) -> Any:
        if self._planner is None:
            override = self._planner_override
            if override is None:
                self._planner = build_planner(self.config)
            elif hasattr(override, "decide"):
                self._planner = override
            else:  # a LangChain chat model
                self._planner = ChatPlanner(override)
        return self._planner

    def _planner_description(self) -> dict[str, str]:
        describe = getattr(self.planner, "describe", None)
        if describe is None:
            return {"name": self.planner.name, "model": self.planner.model_id}
        try:
            return {"name": self.planner.name, **describe()}
        except VadetectiveError as exc:  # e.g. the server went away during the run
            return {"name": self.planner.name, "model": self.planner.model_id, "error": str(exc)}

    def _run_graph(
        self,
        question: str,
        graph_name: str,
        checkpoint: str | Path | None,
        on_step: StepCallback | None,
    ) -> dict[str, Any]:
        runtime = Runtime(self.toolbox, self.toolbox.planner_tools(), self.planner, self.config)
        thread = hashlib.sha1(
            f"{self.source.info.content_hash}|{graph_name}|{question}".encode()
        ).hexdigest()[:16]
        run_config = {
            "configurable": {"thread_id": thread},
            "recursion_limit": 4 * (self.config.max_steps + self.config.max_planner_calls) + 40,
        }
        with checkpointer(checkpoint) as saver:
            app = build_graph(graph_name, runtime, checkpointer=saver)
            resume = False
            if checkpoint is not None:
                snapshot = read_state(app, run_config, checkpoint)
                resume = bool(snapshot.values) and bool(snapshot.next)
                if resume:
                    log.warning("resuming an interrupted analysis from %s", checkpoint)
            inputs = None if resume else initial_state(question, self.source.info)
            for update in app.stream(inputs, run_config, stream_mode="updates"):
                if on_step is not None:
                    for step in _steps_of(update):
                        on_step(step)
            return dict(app.get_state(run_config).values)


def _token_totals(steps: list[TraceStep]) -> dict[str, int]:
    """Prompt, completion and cached prompt tokens over the plan steps that report them."""
    keys = ("prompt_tokens", "completion_tokens", "cached_prompt_tokens")
    return {k: sum(int(s.meta.get(k, 0)) for s in steps if s.kind == "plan") for k in keys}


def _with(config: Config, **changes: Any) -> Config:
    """``config`` with ``changes``, validated like a new one (``dict``, not ``model_dump``: the
    server's API key is excluded from dumps but must survive)."""
    try:
        return Config.model_validate({**dict(config), **changes})
    except ValidationError as exc:
        raise config_error(exc) from None


def _steps_of(update: dict[str, Any]) -> list[TraceStep]:
    out: list[TraceStep] = []
    for node_update in update.values():
        if isinstance(node_update, dict):
            out.extend(node_update.get("steps", []))
    return out


def analyze(
    video: str | Path,
    question: str | None = None,
    profile: str = "auto",
    out: str | Path | None = None,
    fps: float | None = None,
    **overrides: Any,
) -> Verdict:
    """One-shot convenience: open ``video``, ask ``question``, close it.

    Args:
        video: Path to the video file, or to a folder of frames.
        question: What to ask; a general anomaly question if None.
        profile: ``auto``, ``classical``, ``local`` or ``server``.
        out: Folder for the verdict, trace and frames; a temporary folder if None.
        fps: Frame rate of a frame folder (ignored for video files).
        **overrides: Config fields, e.g. ``max_steps=8``.
    """
    with Detective(video, profile=profile, out=out, fps=fps, **overrides) as d:
        return d.ask(question)
