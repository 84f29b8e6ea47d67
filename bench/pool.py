"""ComfyUI pool throughput and the studio's overhead, on local CPU servers (../shared/engines/comfyui).

    .venv/bin/python bench/pool.py [--images 4] [--steps 2] [--size 64]

1. Throughput: the same small job (a random-weight SD 1.5 checkpoint, SIZE², STEPS steps, a fresh
   seed per image so no server answers from its cache) on one server, then on a pool of two; images
   per minute of each and their ratio. Each server gets half the machine's cores (OMP/MKL threads),
   as a farm gives each server its own GPU; on a machine shared with other work the ratio is lower.
2. Overhead: the studio against posting the same graph by hand (a plain script: POST /prompt, wait
   on the WebSocket for the end, GET /view, write the PNG), alternated image by image on one warm
   server; ratio of the medians, goal at most 1.05. Two studio figures: the backend alone
   (ComfyBackend.run: check, queue, follow the WebSocket with previews, fetch) and the whole service
   (service.run_job, which also writes the PNG with its job atomically and fsyncs it before telling).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from asset_studio.remote.backend import ComfyBackend  # noqa: E402
from asset_studio.remote.graph import job_graph  # noqa: E402
from asset_studio.service import run_job  # noqa: E402
from comfy_models import build_comfy_sd15, save_comfy_sd15  # noqa: E402
from comfy_servers import ComfyServers, unavailable  # noqa: E402
from jobs import make_job  # noqa: E402

CHECKPOINT = "bench-sd15.safetensors"


def job_for(seed: int, count: int, args):
    return make_job(CHECKPOINT, "a red apple, game icon", width=args.size, height=args.size, steps=args.steps,
                    seed=seed, batch_count=count, sampler="Euler")


def by_hand(url: str, graph: dict, target: Path) -> None:
    """What a plain script does with a ComfyUI graph: queue it, wait for the end, fetch the image."""
    import websocket

    client_id = uuid.uuid4().hex
    ws = websocket.create_connection(f"ws://{url.split('://')[1]}/ws?clientId={client_id}", timeout=600)
    body = json.dumps({"prompt": graph, "client_id": client_id}).encode()
    request = urllib.request.Request(url + "/prompt", data=body, headers={"Content-Type": "application/json"})
    prompt_id = json.loads(urllib.request.urlopen(request).read())["prompt_id"]
    image = None
    while True:
        message = ws.recv()
        if isinstance(message, bytes):
            continue
        message = json.loads(message)
        data = message.get("data", {})
        if message["type"] == "executed" and data.get("prompt_id") == prompt_id:
            image = data["output"]["images"][0]
        if message["type"] == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
            break
    ws.close()
    query = urllib.parse.urlencode({"filename": image["filename"], "subfolder": image["subfolder"],
                                    "type": image["type"]})
    target.write_bytes(urllib.request.urlopen(f"{url}/view?{query}").read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6, help="images per measurement (default 6)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    threads = str(max(1, cores // 2))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {cores} cores, load average {load:.1f} at start; {threads} thread(s) per server")
    with tempfile.TemporaryDirectory() as tmp, ComfyServers(
            Path(tmp), count=2, env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}) as servers:
        save_comfy_sd15(servers.models / "checkpoints" / CHECKPOINT, build_comfy_sd15())
        servers.wait_ready()
        out = Path(tmp) / "out"
        seed = 1000
        for url in servers.urls:  # load the checkpoint on both before any clock runs
            run_job(job_for(seed, 1, args), ComfyBackend([url]), out)
            seed += 1

        rates = {}
        for label, urls in (("1 server", servers.urls[:1]), ("2 servers", servers.urls)):
            started = time.perf_counter()
            result = run_job(job_for(seed, args.images, args), ComfyBackend(urls), out)
            elapsed = time.perf_counter() - started
            seed += args.images
            assert len(result.saved) == args.images
            rates[label] = args.images / elapsed * 60
            print(f"{label}: {args.images} images in {elapsed:.1f} s = {rates[label]:.2f} images/min")
        print(f"throughput ratio, 2 servers / 1: {rates['2 servers'] / rates['1 server']:.2f}")

        url = servers.urls[0]
        backend = ComfyBackend([url])
        arms = {"backend": [], "service": [], "plain": []}
        def backend_arm(i):
            images = [e for e in backend.run(job_for(1_000_000 + i, 1, args)) if type(e).__name__ == "ImageReady"]
            assert len(images) == 1

        def service_arm(i):
            run_job(job_for(2_000_000 + i, 1, args), backend, out)

        def plain_arm(i):
            by_hand(url, job_graph(job_for(3_000_000 + i, 1, args)), Path(tmp) / f"plain-{i}.png")

        order = [("backend", backend_arm), ("service", service_arm), ("plain", plain_arm)]
        for i in range(args.images):
            # Rotated, so ComfyUI's periodic garbage collection between prompts and the machine's
            # other work fall on every arm alike.
            for name, arm in order[i % 3:] + order[:i % 3]:
                started = time.perf_counter()
                arm(i)
                arms[name].append(time.perf_counter() - started)
        medians = {k: statistics.median(v) for k, v in arms.items()}
        for k, v in arms.items():
            print(f"one image, {k}: median {medians[k]:.2f} s ({', '.join(f'{t:.2f}' for t in v)})")
        print(f"overhead ratio, backend / plain script: {medians['backend'] / medians['plain']:.3f} (goal <= 1.05)")
        print(f"overhead ratio, service (saving the PNG) / plain script: {medians['service'] / medians['plain']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
