"""First run in the window: a style wants its cut-out, rembg's model is absent. The raw image is
made anyway, the window offers the download once (progress, checksum, cancel) and then makes the
sprites the run could not."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest
from PIL import Image


@pytest.fixture()
def model_server(tmp_path):
    data = b"not a real onnx file, but the right bytes" * 1000
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/u2netp.onnx", "md5:" + hashlib.md5(data).hexdigest()
    server.shutdown()


def test_the_window_offers_the_model_once_and_then_makes_the_sprites(qtbot, tmp_path, monkeypatch, model_server):
    from asset_studio.core.job import Finishing
    from asset_studio.core.library import save_image
    from asset_studio.engine.rembg_models import ModelSource
    from asset_studio.gui.main_window import MainWindow
    from jobs import make_job
    from scripted_backend import ScriptedBackend

    monkeypatch.setenv("ASSET_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "rembg"))
    window = MainWindow(output_dir=tmp_path / "out", models_dir=tmp_path / "models",
                        backend_factory=lambda device: ScriptedBackend())
    qtbot.addWidget(window)
    # A raw image whose job wants a cut-out, saved while the model was missing (its sprite is owed).
    job = make_job("m", "a coin", width=32, height=32)
    job.finishing = Finishing(remove_background=True, method="key")
    raw = save_image(Image.new("RGB", (32, 32), "white"), job, tmp_path / "out", seed=1)
    box = window.download_offer.offer("u2netp")
    assert box is not None and "u2netp" in box.text()
    assert window.download_offer.offer("u2netp") is None  # offered once, not per image
    box.close()
    url, md5 = model_server
    source = ModelSource(name="u2netp", url=url, known_hash=md5, folder=tmp_path / "rembg", fname="u2netp.onnx")
    with qtbot.waitSignal(window.download_offer.download.finished, timeout=60000) as done:
        window.download_offer.start("u2netp", source=source)
    path, made = done.args
    assert (tmp_path / "rembg" / "u2netp.onnx").is_file() and path.endswith("u2netp.onnx")
    assert made == [str(tmp_path / "out" / "sprites" / raw.name)]
    assert "made 1 sprite(s)" in window.statusBar().currentMessage()
    window.shutdown()


def test_a_bad_checksum_keeps_nothing_and_says_so(qtbot, tmp_path, monkeypatch, model_server):
    from asset_studio.engine.rembg_models import ModelSource
    from asset_studio.gui.model.model_download import ModelDownload

    download = ModelDownload()
    url, _ = model_server
    source = ModelSource(name="u2netp", url=url, known_hash="md5:" + "0" * 32, folder=tmp_path / "rembg",
                         fname="u2netp.onnx")
    with qtbot.waitSignal(download.failed, timeout=60000) as failed:
        download.start("u2netp", tmp_path / "out", source=source)
    assert "u2netp" in failed.args[0] and not (tmp_path / "rembg" / "u2netp.onnx").exists()


def test_the_worker_reports_a_missing_model_from_the_run(qtbot, tmp_path, monkeypatch):
    """The service's notice names the model; the worker hands it to the window, and the raw image is saved."""
    from asset_studio.core.job import Finishing
    from asset_studio.gui.worker import GenerationWorker
    from jobs import make_job
    from scripted_backend import ScriptedBackend

    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "empty"))
    worker = GenerationWorker(tmp_path / "out", backend_factory=lambda device: ScriptedBackend())
    job = make_job("m", "a coin", width=16, height=16, steps=2)
    job.finishing = Finishing(remove_background=True, method="auto")
    missing = []
    worker.model_missing.connect(missing.append)
    with qtbot.waitSignal(worker.finished, timeout=30000):
        worker.submit(job)
    qtbot.waitUntil(lambda: missing == ["u2netp"], timeout=5000)
    assert list((tmp_path / "out").glob("*.png")) and not (tmp_path / "out" / "sprites").exists()
    worker.shutdown()
