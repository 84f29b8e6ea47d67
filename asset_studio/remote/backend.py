"""ComfyUI servers as a backend (core/backend.Backend): one server, or a pool that shares a batch.

    backend = ComfyBackend(["http://gpu-1:8188", "http://gpu-2:8188"], token=None)
    backend.check(job)                      # what stock ComfyUI cannot do, and what no server has
    for event in backend.run(job, should_cancel):
        ...                                 # Loading, Progress, ImageReady (job.made_by names the server) …

Each ImageReady's job says which server made it ("comfyui http://gpu-2:8188").
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from asset_studio.core.backend import Finished, Loading
from asset_studio.core.job import GenerationJob, check_limits
from asset_studio.errors import UserError
from asset_studio.remote.client import ComfyClient, ServerError, ServerInfo, refiner_mismatch
from asset_studio.remote.graph import images_of, unsupported
from asset_studio.remote.pool import run_pool
from asset_studio.remote.video_graph import animatediff_refusal, is_animatediff

CAPABILITIES = {"txt2img", "img2img", "controlnet", "lora", "vae", "clip_skip", "image_to_video", "hires", "refiner"}


class ComfyBackend:
    name = "comfyui"

    def __init__(self, servers: list[str], token: str | None = None, timeout: float = 30.0,
                 idle_timeout: float = 180.0, verify_tls: bool = True):
        if not servers:
            raise UserError("The comfyui engine needs at least one server (--server URL).")
        urls = list(dict.fromkeys(servers))
        self.clients = [ComfyClient(url, token=token, timeout=timeout, idle_timeout=idle_timeout,
                                    verify_tls=verify_tls) for url in urls]

    def capabilities(self) -> set[str]:
        return set(CAPABILITIES)

    def check(self, job: GenerationJob) -> None:
        self.ready_clients(job)

    def ready_clients(self, job: GenerationJob) -> list[ComfyClient]:
        """The servers that can run JOB (they answer, have its nodes and its models); a UserError
        naming the first missing thing when none can. Server lists are asked once and kept."""
        check_limits(job)
        problem = unsupported(job) or refiner_mismatch(job)
        if problem:
            if is_animatediff(job):  # whether a server has the custom nodes changes the sentence
                problem = animatediff_refusal({i.url: i.nodes for i in self.infos() if isinstance(i, ServerInfo)})
            raise UserError(problem)
        for path in images_of(job):
            if not Path(path).is_file():
                raise UserError(f"The picture {path} is not a file.")
        ready, problems = [], []
        for client in self.clients:
            try:
                missing = client.info().missing(job)
                if missing:  # a model copied there since we asked: ask again once
                    missing = client.info(refresh=True).missing(job)
            except ServerError as exc:
                problems.append(str(exc))
                continue
            if missing:
                problems.append(missing[0])
            else:
                ready.append(client)
        if not ready:
            raise UserError(problems[0] if len(problems) == 1 else
                            "No server can run this job: " + " ".join(problems))
        return ready

    def infos(self) -> list[ServerInfo | ServerError]:
        out = []
        for client in self.clients:
            try:
                out.append(client.info())
            except ServerError as exc:
                out.append(exc)
        return out

    def run(self, job: GenerationJob, should_cancel: Callable[[], bool] | None = None) -> Iterator:
        clients = self.ready_clients(job)
        names = ", ".join(c.url for c in clients)
        what = "animation(s)" if job.animation is not None else "image(s)"
        yield Loading(f"Sending {len(job.image_seeds())} {what} to {names}…")
        for event in run_pool(job, clients, should_cancel):
            yield event
            if type(event).__name__ == "Cancelled":
                return
        yield Finished()
