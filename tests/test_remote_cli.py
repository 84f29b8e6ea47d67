"""The comfyui engine's flags and `servers check` without a server (real servers: test_remote_server.py)."""

from __future__ import annotations

import pytest

from asset_studio.cli import main
from asset_studio.errors import UserError
from asset_studio.remote.backend import ComfyBackend
from asset_studio.service import make_backend
from comfy_servers import free_port


def test_make_backend_builds_the_comfyui_pool_and_refuses_mixed_flags():
    backend = make_backend("comfyui", ["127.0.0.1:8188", "http://127.0.0.1:8189/"])
    assert isinstance(backend, ComfyBackend)
    assert [c.url for c in backend.clients] == ["http://127.0.0.1:8188", "http://127.0.0.1:8189"]
    with pytest.raises(UserError, match="--server goes with --engine comfyui"):
        make_backend("local", ["http://127.0.0.1:8188"])
    with pytest.raises(UserError, match="at least one server"):
        make_backend("comfyui", [])
    with pytest.raises(UserError, match="--device"):
        make_backend("comfyui", ["http://127.0.0.1:8188"], device="cuda")
    with pytest.raises(UserError, match="not http"):
        make_backend("comfyui", ["ftp://127.0.0.1:8188"])


def test_generate_on_an_unreachable_server_is_one_sentence(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code = main(["generate", "a red apple", "--model", "m.safetensors", "--engine", "comfyui", "--server", url,
                 "--size", "64x64", "--seed", "1", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"The server {url} cannot be reached" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.png"))


def test_servers_check_says_a_server_is_unreachable(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["servers", "check", url, "--timeout", "2"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(url) and "unreachable" in out
