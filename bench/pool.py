"""ComfyUI pool throughput and the studio's overhead, on local CPU servers (../shared/engines/comfyui).

    .venv/bin/python bench/pool.py [--images 4] [--steps 2] [--size 64] [--rounds 2] [--pinned]

1. Throughput: the same small job (a random-weight SD 1.5 checkpoint, SIZE², STEPS steps, a fresh
   seed per image so no server answers from its cache) on one server, then on a pool of two; images
   per minute of each and their ratio. Each server gets half the machine's cores (OMP/MKL threads),
   as a farm gives each server its own GPU; on a machine shared with other work the ratio is lower.
   Each server runs in a session of its own (tests/comfy_servers.py): Linux's autogroup scheduler
   splits one session's CPU share over its cores, and two servers of one session got no more CPU than
   one while other people's work ran.
   --pinned: each server is bound to a core of its own (sched_setaffinity before ComfyUI starts) with
   one torch thread (OMP/MKL_NUM_THREADS=1), so "one server on one core" against "two servers on two
   cores" is the farm's one GPU against two, even on a 2-core machine. --rounds N alternates the two
   arms N times in the same run (one, two, one, two…) so a change in the machine's other load falls
   on both; the rates are over all rounds. Each arm also prints the cores its servers really got (their CPU
   time over the wall time) and their CPU seconds per image: on a quiet machine one server gets one
   core and two get two; where other work takes a share, the ratio falls with what was left.
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


def server_cpu_seconds(servers) -> float:
    """User + system CPU time of the running servers so far (psutil: a ComfyUI requirement)."""
    import psutil

    total = 0.0
    for process in servers.processes:
        if process is not None:
            times = psutil.Process(process.pid).cpu_times()
            total += times.user + times.system
    return total


def studio_cpu_seconds() -> float:
    """User + system CPU time of this process (the studio's client side: pool threads, saving PNGs)."""
    times = os.times()
    return times.user + times.system


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: how much else the machine was doing."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6, help="images per measurement (default 6)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="alternations of the one- and two-server arms")
    parser.add_argument("--pinned", action="store_true", help="each server on a core of its own, one thread each")
    parser.add_argument("--no-overhead", action="store_true", help="measure the throughput only")
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 2))
    cores = len(allowed)
    pins = None
    if args.pinned:
        if cores < 2 or not hasattr(os, "sched_setaffinity"):
            print("skipped: --pinned needs two cores and sched_setaffinity (Linux)")
            return 0
        threads, pins = "1", [{allowed[0]}, {allowed[1]}]
    else:
        threads = str(max(1, cores // 2))
    print(f"machine: {cores} cores, load average {load_average()} at start; {threads} thread(s) per server"
          + (f", server 0 on core {allowed[0]}, server 1 on core {allowed[1]}" if pins else ""))
    with tempfile.TemporaryDirectory() as tmp, ComfyServers(
            Path(tmp), count=2, env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}, cores=pins) as servers:
        save_comfy_sd15(servers.models / "checkpoints" / CHECKPOINT, build_comfy_sd15())
        servers.wait_ready()
        if pins:  # what the kernel says, once ComfyUI and torch have started their threads
            print("servers' cores: " + ", ".join(f"server {i} {sorted(os.sched_getaffinity(p.pid))}"
                                                 for i, p in enumerate(servers.processes)))
        out = Path(tmp) / "out"
        seed = 1000
        for url in servers.urls:  # load the checkpoint on both before any clock runs
            run_job(job_for(seed, 1, args), ComfyBackend([url]), out)
            seed += 1

        arms = {"1 server": servers.urls[:1], "2 servers": servers.urls}
        spent = {label: 0.0 for label in arms}
        used = {label: 0.0 for label in arms}  # the servers' CPU seconds: what the machine's other work left them
        for round_ in range(args.rounds):
            for label, urls in arms.items():
                before, studio_before = server_cpu_seconds(servers), studio_cpu_seconds()
                started = time.perf_counter()
                result = run_job(job_for(seed, args.images, args), ComfyBackend(urls), out)
                elapsed = time.perf_counter() - started
                cpu = server_cpu_seconds(servers) - before
                studio = studio_cpu_seconds() - studio_before
                seed += args.images
                assert len(result.saved) == args.images
                spent[label] += elapsed
                used[label] += cpu
                print(f"round {round_ + 1}, {label}: {args.images} images in {elapsed:.1f} s = "
                      f"{args.images / elapsed * 60:.2f} images/min; the servers used {cpu / elapsed:.2f} cores, "
                      f"the studio {studio / elapsed:.2f} (load average {load_average()})")
        rates = {label: args.images * args.rounds / spent[label] * 60 for label in arms}
        for label, rate in rates.items():
            print(f"{label}{' (pinned, 1 thread each)' if pins else ''}: {rate:.2f} images/min over "
                  f"{args.images * args.rounds} images; the servers used {used[label] / spent[label]:.2f} cores, "
                  f"{used[label] / (args.images * args.rounds):.2f} CPU s per image")
        print(f"throughput ratio, 2 servers / 1: {rates['2 servers'] / rates['1 server']:.2f} "
              f"(load average at the end {load_average()})")
        if args.no_overhead:
            return 0

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
