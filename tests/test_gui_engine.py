"""Engine ▸ Where images are made: this computer or ComfyUI servers, kept in the settings, built
through service.make_backend like the CLI's --engine, with a connection check off the GUI thread."""

from __future__ import annotations

import http.server
import json
import threading

import pytest


@pytest.fixture()
def settings(qapp, tmp_path):
    from asset_studio.gui.settings import Settings

    return Settings(tmp_path / "s.ini")  # a path: the settings file lives in the test's folder


@pytest.fixture()
def fake_comfy():
    """A loopback server answering /system_stats and /object_info as ComfyUI does."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = {"/system_stats": {"system": {"comfyui_version": "0.3.64"},
                                      "devices": [{"name": "cpu", "type": "cpu"}]},
                    "/object_info": {"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["a.safetensors"]]}}}},
                    }.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(json.dumps(body or {}).encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_choice_is_kept_and_builds_the_same_backend_as_the_cli(settings, fake_comfy):
    from asset_studio.errors import UserError
    from asset_studio.gui.model.engine_choice import EngineChoice
    from asset_studio.remote.backend import ComfyBackend

    choice = EngineChoice(settings)
    assert choice.engine == "local" and choice.label() == "This computer"
    changes = []
    choice.changed.connect(lambda: changes.append(1))
    with pytest.raises(UserError, match="at least one ComfyUI server"):
        choice.set("comfyui", ["  "])
    choice.set("comfyui", [fake_comfy + "/", fake_comfy])
    assert changes == [1] and choice.label() == "2 ComfyUI servers"
    assert EngineChoice(settings).servers == [fake_comfy, fake_comfy]  # kept across restarts
    assert isinstance(choice.backend_factory(None), ComfyBackend)


def test_the_connection_check_reports_each_server_off_the_gui_thread(settings, fake_comfy, qtbot):
    from asset_studio.gui.model.engine_choice import EngineChoice

    choice = EngineChoice(settings)
    reports = []
    choice.checked.connect(reports.append)
    choice.check([fake_comfy, "http://127.0.0.1:9"]).join(30)
    qtbot.waitUntil(lambda: len(reports) == 2, timeout=30000)
    good, bad = reports
    assert good.ok and "ComfyUI 0.3.64" in good.text and "cpu" in good.text
    assert not bad.ok and "127.0.0.1:9" in bad.text
