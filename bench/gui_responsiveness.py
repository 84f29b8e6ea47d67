"""How long the GUI thread can wait between timer ticks while the worker generates.

Runs the real GenerationWorker with the tiny random SD-1.5 model (built here, offline) and a
5 ms QTimer on the GUI thread. Prints the worst and 99th-percentile gap for: the idle app
(baseline), the worker's warm-up (imports torch, as the window does right after it opens),
the first job (loads the model) and a warm job, with ratios against the idle baseline.

    .venv/bin/python bench/gui_responsiveness.py [--steps 20] [--size 256]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def measure(app, work, timeout: float = 300.0) -> tuple[float, float, int]:
    """Run work() (which starts something and returns a 'done' callable); return gap stats in ms."""
    from PySide6.QtCore import QTimer

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    done = work()
    end = time.perf_counter() + timeout
    while not done() and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    gaps = sorted((b - a) * 1000 for a, b in zip(ticks, ticks[1:]))
    return gaps[-1], gaps[int(len(gaps) * 0.99)], len(ticks)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    tmp = Path(tempfile.mkdtemp())
    # Build the model in a child process, so this process has not imported torch before the cold run.
    import subprocess

    model = tmp / "tiny-sd15"
    subprocess.run([sys.executable, "-c", (
        "import sys; sys.path.insert(0, 'tests'); from tiny_models import build_tiny_sd15, save_diffusers; "
        f"save_diffusers(build_tiny_sd15(), {str(model)!r})")], cwd=ROOT, check=True, capture_output=True)
    assert "torch" not in sys.modules

    from asset_studio.core.job import GenerationJob, ModelRef, Prompt, Sampling
    from asset_studio.gui.worker import GenerationWorker

    worker = GenerationWorker(tmp / "out")
    state = {"done": 0}
    worker.finished.connect(lambda *_: state.update(done=state["done"] + 1))
    worker.failed.connect(lambda _jid, msg: print("failed:", msg) or state.update(done=state["done"] + 1))

    def job():
        return GenerationJob(model=ModelRef(str(model)), prompt=Prompt("a potion"),
                             sampling=Sampling(sampler="Euler", steps=args.steps, width=args.size, height=args.size))

    def run_job():
        target = state["done"] + 1
        worker.submit(job())
        return lambda: state["done"] >= target

    def idle():
        end = time.perf_counter() + 2.0
        return lambda: time.perf_counter() > end

    def warm_up():
        state["warm"] = False
        worker.warmed.connect(lambda: state.update(warm=True))
        worker.warm_up()
        return lambda: state["warm"]

    rows = [("idle (baseline)", measure(app, idle)),
            ("warm-up (torch import, as at app start)", measure(app, warm_up)),
            ("first job (model load + run)", measure(app, run_job)),
            ("warm job", measure(app, run_job))]
    base = rows[0][1][0]
    print(f"GUI timer gaps, 5 ms timer, {args.size}px x {args.steps} steps, {os.cpu_count()} CPU cores")
    for name, (worst, p99, n) in rows:
        print(f"  {name:<42} worst {worst:7.1f} ms  p99 {p99:6.1f} ms  ticks {n:5d}  worst/idle {worst / base:5.1f}x")
    worker.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
