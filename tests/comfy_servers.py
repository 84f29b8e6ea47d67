"""Real ComfyUI servers for tests and bench/pool.py: ../shared/engines/comfyui copied to a temporary
folder, started on free loopback ports with --cpu, models from one shared folder.

    with ComfyServers(tmp, count=2) as servers:   # started in parallel
        servers.urls                               # ["http://127.0.0.1:PORT", …]
        servers.models / "checkpoints"             # where models go (listed by the servers at once)
        servers.kill(0)                            # a server that disappears mid-job
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

COMFYUI = Path(__file__).resolve().parents[2] / "shared" / "engines" / "comfyui"
# What ComfyUI imports when it starts with --cpu (module names; pyproject's `test` extra installs them).
REQUIRED_MODULES = ["aiohttp", "yarl", "yaml", "av", "alembic", "sqlalchemy", "einops", "psutil", "tqdm",
                    "torchsde", "safetensors", "transformers", "scipy", "comfyui_frontend_package",
                    "websocket"]


def unavailable() -> str | None:
    """Why real-server tests cannot run here, or None."""
    if not (COMFYUI / "main.py").is_file():
        return f"{COMFYUI} is absent (the ComfyUI copy in ../shared)"
    missing = [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return f"ComfyUI's requirements are not installed ({', '.join(missing)}): pip install -e '.[test]'"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServers:
    def __init__(self, folder: Path, count: int = 2, ready_timeout: float = 300.0, env: dict | None = None,
                 cores: list[set[int]] | None = None):
        self.folder = Path(folder)
        self.count = count
        self.ready_timeout = ready_timeout
        self.env = env  # extra environment of the servers (bench/pool.py gives each its share of the cores)
        self.cores = cores  # server i runs on the CPU cores cores[i] only (Linux; bench/pool.py --pinned)
        self.code = self.folder / "comfyui"
        self.models = self.folder / "models"
        self.processes: list[subprocess.Popen | None] = []
        self.urls: list[str] = []
        self.logs: list[Path] = []

    def __enter__(self) -> "ComfyServers":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        shutil.copytree(COMFYUI, self.code)  # it writes beside itself; ../shared stays read-only
        for kind in ("checkpoints", "loras", "vae", "controlnet", "upscale_models"):
            (self.models / kind).mkdir(parents=True, exist_ok=True)
        paths = self.folder / "models.yaml"
        # ComfyUI reads YAML; JSON is YAML, so no YAML writer is needed here.
        paths.write_text(json.dumps({"asset_studio_tests": {
            "base_path": str(self.models), "checkpoints": "checkpoints", "loras": "loras", "vae": "vae",
            "controlnet": "controlnet", "upscale_models": "upscale_models"}}))
        for i in range(self.count):
            base = self.folder / f"server{i}"
            (base / "custom_nodes").mkdir(parents=True)
            port = free_port()
            log = self.folder / f"server{i}.log"
            command = [sys.executable, str(self.code / "main.py"), "--cpu", "--listen", "127.0.0.1",
                       "--port", str(port), "--disable-api-nodes", "--preview-method", "latent2rgb",
                       "--base-directory", str(base), "--extra-model-paths-config", str(paths),
                       "--database-url", "sqlite:///:memory:", "--disable-auto-launch"]
            with open(log, "wb") as out:
                env = {**os.environ, **self.env} if self.env else None
                pin = None
                if self.cores is not None:  # set in the child before ComfyUI starts: its threads inherit it
                    pin = lambda cores=set(self.cores[i]): os.sched_setaffinity(0, cores)  # noqa: E731
                # Each server gets a session of its own, as each farm server has its own machine: with
                # Linux's autogroup scheduling one session's CPU share is split over its cores, so two
                # servers of one session got no more CPU than one while other sessions ran. stop()
                # (called on any exit of the with-block) ends them.
                self.processes.append(subprocess.Popen(command, cwd=self.code, stdout=out, stderr=subprocess.STDOUT,
                                                       env=env, preexec_fn=pin, start_new_session=True))
            self.urls.append(f"http://127.0.0.1:{port}")
            self.logs.append(log)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        for i, url in enumerate(self.urls):
            while True:
                process = self.processes[i]
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"ComfyUI exited at start:\n{self.logs[i].read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(url + "/system_stats", timeout=5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"ComfyUI did not start in time:\n{self.logs[i].read_text()[-3000:]}")
                    time.sleep(0.5)

    def kill(self, i: int) -> None:
        process = self.processes[i]
        if process is not None:
            process.kill()
            process.wait(timeout=30)
            self.processes[i] = None

    def stop(self) -> None:
        for i, process in enumerate(self.processes):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=20)
                self.processes[i] = None
