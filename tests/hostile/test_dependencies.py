"""Issue 11 items 1-2: the README's two commands pass on any day, in the newcomer's order.

- Every dependency has a declared range, upper bounds included; the lock pins a set inside them.
- The groundingdino-py shim (and the Hugging Face backends) pass at the low end of transformers'
  range, installed beside the locked set with ``pip install --target`` (the top end is the
  locked set the rest of the suite runs on).
- A package outside its tested range is refused with one sentence naming it.
- ``vadetective demo`` in the checkout's root, then building the wheel: the wheel holds only the
  ``vadetective`` package, not the ``vadetective-demo/`` folder the demo wrote.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from hostile_kit import ROOT, assert_refused, cli
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from vadetective.agent.core import deps
from vadetective.agent.core.errors import DependencyError

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK = ROOT / "requirements" / "lock.txt"
FLOOR = ROOT / "requirements" / "transformers-floor.txt"


def _declared() -> list[Requirement]:
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra, lines in PROJECT["optional-dependencies"].items():
        reqs += [Requirement(f"{r}; extra == '{extra}'") for r in lines]
    return [r for r in reqs if canonicalize_name(r.name) != "vadetective"]


def _pins(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==")
            out[canonicalize_name(name)] = version
    return out


# ------------------------------------------------------------------------------ ranges and lock
# Where the code rests on a library's internals, the bound is tighter than the next major.
INTERNALS = {"transformers": "<5.26", "groundingdino-py": "==0.4.*"}


@pytest.mark.parametrize("req", _declared(), ids=lambda r: f"{r.name}{r.specifier}")
def test_every_dependency_has_a_range_the_lock_satisfies(req: Requirement) -> None:
    pins = _pins(LOCK)
    name = canonicalize_name(req.name)
    assert name in pins, f"{req.name} is not in {LOCK.name}: regenerate it with .ci/lock.py"
    assert req.specifier.contains(pins[name]), (
        f"the lock's {req.name}=={pins[name]} is outside {req}"
    )
    if name != "packaging":  # packaging's API has been stable across its calendar majors
        assert any(s.operator in {"<", "<=", "=="} for s in req.specifier), (
            f"{req} has no upper bound"
        )
    if req.name in INTERNALS:
        assert INTERNALS[req.name] in str(req.specifier)


def test_the_floor_set_is_the_low_end_of_transformers_range() -> None:
    floor = _pins(FLOOR)
    ranges = {str(r.specifier) for r in _declared() if r.name == "transformers"}
    assert len(ranges) == 1, f"the extras declare different transformers ranges: {ranges}"
    (spec,) = {r.specifier for r in _declared() if r.name == "transformers"}
    (low,) = [s.version for s in spec if s.operator == ">="]
    assert Version(floor["transformers"]) == Version(low)


@pytest.mark.slow
def test_shim_and_hf_backends_at_the_low_end_of_transformers(tmp_path: Path) -> None:
    target = tmp_path / "floor"
    env = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}  # not the lock's pins
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         "-r", str(FLOOR)],
        check=True, env=env, timeout=600,
    )  # fmt: skip
    env = {**env, "PYTHONPATH": f"{target}{os.pathsep}{ROOT}"}
    version = subprocess.run(
        [sys.executable, "-c", "import transformers; print(transformers.__version__)"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout.strip()  # fmt: skip
    assert version == _pins(FLOOR)["transformers"]
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         "tests/tools/grounding/test_gdino_py.py", "tests/tools/grounding/test_hf_grounding.py",
         "tests/tools/hf"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-4000:]
    assert " passed" in r.stdout and "failed" not in r.stdout.splitlines()[-1]


# ------------------------------------------------------------------------------ outside the range
def _fake_site(folder: Path, versions: dict[str, str]) -> Path:
    """A folder that, first on sys.path, makes ``importlib.metadata`` see this tree's declared
    ranges (as an installed vadetective would) and the given versions of other packages."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / "vadetective-0.1.0.dist-info"
    meta.mkdir()
    lines = ["Metadata-Version: 2.1", "Name: vadetective", "Version: 0.1.0"]
    lines += [f"Requires-Dist: {r}" for r in PROJECT["dependencies"]]
    for extra, reqs in PROJECT["optional-dependencies"].items():
        lines += [f"Provides-Extra: {extra}"]
        lines += [f'Requires-Dist: {r}; extra == "{extra}"' for r in reqs]
    (meta / "METADATA").write_text("\n".join(lines) + "\n")
    for name, version in versions.items():
        d = folder / f"{name}-{version}.dist-info"
        d.mkdir()
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return folder


def test_a_package_outside_its_range_is_one_sentence(tmp_path: Path, clip: Path) -> None:
    site = _fake_site(tmp_path / "site", {"transformers": "9.0.0"})
    r = cli(
        "analyze", str(clip), "--profile", "local", "--out", str(tmp_path / "o"),
        env={"PYTHONPATH": f"{site}{os.pathsep}{ROOT}"},
    )  # fmt: skip
    line = assert_refused(r, "profile 'local' cannot run", "transformers 9.0.0 is outside")
    assert "pip install" in line and deps.ALLOW_UNTESTED_ENV in line


def test_require_tested_names_the_package_and_can_be_overridden(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(
        deps, "_declared", lambda: (Requirement('transformers<5.26,>=5.0; extra == "hf"'),)
    )
    monkeypatch.setattr(deps, "installed_version", lambda name: "5.40.1")
    deps.dependency_problem.cache_clear()
    try:
        with pytest.raises(DependencyError, match=r"transformers 5\.40\.1 is outside the tested"):
            deps.require_tested("hf", "the clip scorer")
        monkeypatch.setenv(deps.ALLOW_UNTESTED_ENV, "1")
        deps.require_tested("hf", "the clip scorer")  # a warning, not an error
        assert "transformers 5.40.1" in caplog.text
    finally:
        deps.dependency_problem.cache_clear()


# ------------------------------------------------------------------------------ README order
def _copy_checkout(dest: Path) -> Path:
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        src = ROOT / name
        out = dest / name
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            out.symlink_to(os.readlink(src))
        elif src.is_file():
            shutil.copy2(src, out)
    return dest


@pytest.mark.slow
def test_demo_in_the_checkout_root_then_the_wheel_holds_only_the_package(tmp_path: Path) -> None:
    checkout = _copy_checkout(tmp_path / "clone")
    r = cli("demo", "--profile", "classical", cwd=checkout)  # exactly as the README says
    assert r.returncode == 0, r.stderr
    assert (checkout / "vadetective-demo" / "analysis" / "verdict.json").is_file()
    (checkout / "vadetective-demo" / "stray.py").write_text("x = 1\n")  # a folder with code
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(checkout)],
        check=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    (wheel,) = wheels.glob("vadetective-*.whl")
    top = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"vadetective"}
