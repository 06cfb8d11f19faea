"""Run provenance: what ``run.json`` records so a number can be reproduced or explained.

- ``models``: per role, the backend, the model id and its exact revision: ``repo@<commit>`` of
  the cached hub snapshot, ``local:<hash>`` of a local folder or weights file (config and
  weight files, sampled-content hash), or why there is none (no weights; a server's model).
- ``packages``: the versions of the packages that shape results, and vadetective's git commit
  when it runs from a checkout.
- ``dataset``: kind, official split, number of videos, and a hash of the annotation file.
- ``config_sha``: one fingerprint of everything that changes a verdict (the configuration minus
  secrets and cache paths, the question, the graph and the prompts). Every result file carries
  it too, so ``eval`` can tell when one run folder mixes configurations.

Nothing here touches the network.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from vadetective.agent.core.catalog import backend_spec
from vadetective.agent.core.config import Config
from vadetective.agent.core.io import content_hash
from vadetective.agent.datasets import Dataset

log = logging.getLogger(__name__)

#: Distributions whose version can change a result or a score.
PACKAGES: tuple[str, ...] = (
    "vadetective",
    "numpy",
    "opencv-python",
    "opencv-python-headless",
    "av",
    "decord",
    "torch",
    "transformers",
    "huggingface-hub",
    "ultralytics",
    "groundingdino-py",
    "langgraph",
    "langchain-core",
    "openai",
    "pydantic",
    "scikit-learn",
    "scipy",
    "nltk",
    "rouge-score",
)

#: Configuration fields that never change a verdict and must not be recorded or compared.
SECRET_OR_LOCAL = ("api_key", "cache_dir")


@functools.lru_cache(maxsize=1)
def _package_versions() -> tuple[tuple[str, str], ...]:
    return tuple(_read_versions().items())


def package_versions() -> dict[str, str]:
    """Python's version and those of ``PACKAGES`` that are installed (read once per process)."""
    return dict(_package_versions())


def _read_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in PACKAGES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    commit = _git_commit()
    if commit:
        out["vadetective-git"] = commit
    return out


def _git_commit() -> str | None:
    """The commit of the checkout vadetective runs from (``+dirty`` with local changes)."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def model_revision(model_id: str) -> str | None:
    """``repo@commit`` of a cached hub snapshot, ``local:<hash>`` of a local folder or file,
    or None when the weights are not on this machine."""
    from vadetective.tools.models import model_fingerprint

    found = model_fingerprint(model_id)
    if found is not None:
        return found
    if model_id.endswith(".pt"):  # ultralytics weights, looked up where ultralytics keeps them
        from vadetective.tools.models import model_status

        status = model_status("yolo", model_id)
        if status.local_path:
            return f"local:{content_hash(status.local_path)}"
    return None


def model_revisions(config: Config) -> dict[str, dict[str, Any]]:
    """Per role: backend, model id and revision (see the module docstring)."""
    out: dict[str, dict[str, Any]] = {}
    for role, name in (
        ("scorer", config.scorer),
        ("grounder", config.grounder),
        ("inspector", config.inspector),
        ("planner", config.planner),
    ):
        spec = backend_spec(role, name)  # type: ignore[arg-type]
        entry: dict[str, Any] = {"backend": name}
        if name == "server":
            entry["model"] = config.server.model
            entry["endpoint"] = config.server.base_url
            entry["revision"] = None
            entry["note"] = "served model: its revision is the server's to report"
        elif spec.model_key is None:
            entry["model"] = None
            entry["revision"] = "no weights"
        else:
            model_id = config.model_id(spec.model_key)
            entry["model"] = model_id
            entry["revision"] = model_revision(model_id)
            if entry["revision"] is None:
                entry["note"] = "not on this machine when the run started"
        out[role] = entry
    return out


def public_config(config: Config) -> dict[str, Any]:
    """The configuration as JSON, without secrets and machine-local paths."""
    data: dict[str, Any] = json.loads(config.model_dump_json())
    for key in SECRET_OR_LOCAL:
        data.pop(key, None)
        if isinstance(data.get("server"), dict):
            data["server"].pop(key, None)
    return data


def recorded_config(config: Config) -> dict[str, Any]:
    """The configuration as ``run.json`` records it: every field, a server's API key as
    ``"***"`` (run folders get shared; the key is never written)."""
    data: dict[str, Any] = json.loads(config.model_dump_json())
    server = data.get("server")
    if isinstance(server, dict) and server.get("api_key"):
        server["api_key"] = "***"
    return data


def prompts_of(config: Config) -> dict[str, Any]:
    """The prompts a run uses: the planner's and, for CLIP/SigLIP scoring, the prompt bank."""
    from vadetective.graphs import prompts

    out: dict[str, Any] = {
        "system": prompts.SYSTEM_PROMPT,
        "final": prompts.FINAL_PROMPT,
        "nudge": prompts.NUDGE_PROMPT,
    }
    if config.scorer in ("clip", "siglip"):
        from vadetective.tools.prompt_bank import default_bank

        out["bank"] = default_bank().model_dump(mode="json")
    return out


def config_fingerprint(config: Config, question: str | None, graph: str) -> str:
    """One hash of everything that changes a verdict: configuration (minus secrets and cache
    paths), question, graph and prompts."""
    from vadetective.agent.session import DEFAULT_QUESTION

    payload = {
        "config": public_config(config),
        "question": question or DEFAULT_QUESTION,
        "graph": graph,
        "prompts": prompts_of(config),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def dataset_record(dataset: Dataset) -> dict[str, Any]:
    """Kind, split, size and the annotation file's hash."""
    split = dataset.split or dataset.options.get("split")
    ann = Path(dataset.annotations) if dataset.annotations else None
    ann_hash = None
    if ann is not None and ann.is_file():
        ann_hash = content_hash(ann)
    return {
        "kind": dataset.kind,
        "split": split,
        "videos": len(dataset),
        "missing": len(dataset.missing),
        "annotations_hash": ann_hash,
    }


def packages_fingerprint() -> str:
    """A short hash of ``package_versions()``."""
    blob = json.dumps(package_versions(), sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:12]


@functools.lru_cache(maxsize=8)
def _result_provenance(config_json: str, question: str | None, graph: str) -> tuple[str, str]:
    config = Config.model_validate_json(config_json)
    return config_fingerprint(config, question, graph), packages_fingerprint()


def result_provenance(config: Config, question: str | None, graph: str) -> dict[str, str]:
    """What each result file records: the configuration's and the packages' fingerprints."""
    config_sha, packages_sha = _result_provenance(config.model_dump_json(), question, graph)
    return {"config_sha": config_sha, "packages_sha": packages_sha}


def provenance(
    dataset: Dataset, config: Config, question: str | None, graph: str
) -> dict[str, Any]:
    """The provenance block of ``run.json``."""
    return {
        "config_sha": config_fingerprint(config, question, graph),
        "packages_sha": packages_fingerprint(),
        "model_revisions": model_revisions(config),
        "packages": package_versions(),
        "dataset_split": dataset_record(dataset),
    }
