"""civitai: references, the API's documented JSON, downloads with resume and SHA256, against a loopback server.

civitai itself is not reachable from the test machines; the server below answers in the shape of
https://developer.civitai.com/site/reference/model-versions (GET /api/v1/model-versions/{id},
/api/v1/models/{id}) and serves files with HTTP Range, behind a redirect like civitai's download URL.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from asset_studio.core.civitai import CivitaiClient, CivitaiRef, parse_ref
from asset_studio.core.lora_sidecar import read_sidecar
from asset_studio.errors import UserError

TOKEN = "secret-token"


@pytest.mark.parametrize("text, model, version", [
    ("https://civitai.com/models/4384/dreamshaper?modelVersionId=128713", 4384, 128713),
    ("https://civitai.com/models/4384", 4384, None),
    ("https://www.civitai.com/models/4384/x", 4384, None),
    ("https://civitai.com/api/download/models/128713?type=Model&format=SafeTensor", None, 128713),
    ("128713", None, 128713),
    ("urn:air:sd1:lora:civitai:4384@128713", 4384, 128713),
    ("urn:air:sdxl:checkpoint:civitai:827184@2514310.safetensors", 827184, 2514310),
])
def test_references_people_paste(text, model, version):
    ref = parse_ref(text)
    assert (ref.model_id, ref.version_id) == (model, version)


def test_air_names_type_and_family_and_other_sources_are_refused():
    ref = parse_ref("urn:air:sd1:lora:civitai:4384@128713")
    assert (ref.air_type, ref.air_family) == ("lora", "sd15")
    with pytest.raises(UserError, match="points to huggingface, not civitai"):
        parse_ref("urn:air:sdxl:lora:huggingface:1@2")
    with pytest.raises(UserError, match="is not a civitai model"):
        parse_ref("https://example.com/models/4384")


def safetensors_bytes() -> bytes:
    from safetensors.numpy import save

    rng = np.random.default_rng(0)
    return save({"lora_unet_x.lora_down.weight": rng.standard_normal((4, 300)).astype(np.float32),
                 "lora_unet_x.lora_up.weight": rng.standard_normal((300, 4)).astype(np.float32)})


class Civitai:
    """The loopback stand-in: versions, a model, files; counts requests and can cut a transfer short."""

    def __init__(self):
        self.blob = safetensors_bytes()
        self.sha = hashlib.sha256(self.blob).hexdigest()
        self.cut_after: int | None = None  # bytes sent before the connection drops (once)
        self.private = False
        self.log: list[tuple[str, str, str]] = []  # (path, Range, Authorization)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send_json(self, data, code=200):
                body = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                outer.log.append((self.path, self.headers.get("Range", ""), self.headers.get("Authorization", "")))
                if self.path == "/api/v1/model-versions/128713":
                    return self.send_json(outer.version_json())
                if self.path == "/api/v1/model-versions/999":
                    return self.send_json({"error": "No model version with id 999"}, 404)
                if self.path == "/api/v1/models/4384":
                    version = outer.version_json()
                    version.pop("model")
                    return self.send_json({"id": 4384, "name": "Pixel Chest", "type": "LORA",
                                           "modelVersions": [version]})
                if self.path.startswith("/api/download/models/128713"):
                    if outer.private and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                        return self.send_json({"error": "Unauthorized"}, 401)
                    self.send_response(307)  # civitai redirects to its storage
                    self.send_header("Location", "/storage/pixel_chest_v1.safetensors?signed=1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if self.path.startswith("/storage/pixel_chest_v1.safetensors"):
                    return self.send_file()
                return self.send_json({"error": "not found"}, 404)

            def send_file(self):
                blob, start = outer.blob, 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(blob):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(blob)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(blob) - 1}/{len(blob)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(blob) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                body = blob[start:]
                if outer.cut_after is not None:
                    body, outer.cut_after = body[:outer.cut_after], None
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def version_json(self, sha=None):
        return {
            "id": 128713, "modelId": 4384, "name": "v1.0", "baseModel": "SD 1.5", "baseModelType": "Standard",
            "air": "urn:air:sd1:lora:civitai:4384@128713", "status": "Published", "trainedWords": ["pxchest", "pixel art"],
            "model": {"name": "Pixel Chest", "type": "LORA", "nsfw": False, "poi": False},
            "files": [
                {"id": 1, "name": "pixel_chest_v1.pt", "type": "Model", "sizeKB": len(self.blob) / 1024,
                 "metadata": {"format": "PickleTensor", "fp": "fp16"}, "hashes": {"SHA256": "AB" * 32},
                 "downloadUrl": f"{self.base}/api/download/models/128713?format=PickleTensor", "primary": False},
                {"id": 2, "name": "pixel_chest_v1.safetensors", "type": "Model", "sizeKB": len(self.blob) / 1024,
                 "metadata": {"format": "SafeTensor", "size": "pruned", "fp": "fp16"},
                 "pickleScanResult": "Success", "virusScanResult": "Success",
                 "hashes": {"AutoV2": self.sha[:10].upper(), "SHA256": (sha or self.sha).upper()},
                 "downloadUrl": f"{self.base}/api/download/models/128713", "primary": True},
            ],
            "downloadUrl": f"{self.base}/api/download/models/128713",
        }


@pytest.fixture
def civitai():
    server = Civitai()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_version_metadata_in_the_documented_shape(civitai):
    client = CivitaiClient(civitai.base, token="")
    version = client.version(parse_ref("urn:air:sd1:lora:civitai:4384@128713"))
    assert (version.id, version.model_id, version.model_name, version.model_type) == (128713, 4384, "Pixel Chest", "LORA")
    assert (version.base_model, version.family, version.folder) == ("SD 1.5", "sd15", "loras")
    assert version.trained_words == ["pxchest", "pixel art"]
    chosen = version.model_file()
    assert chosen.name == "pixel_chest_v1.safetensors" and chosen.sha256 == civitai.sha  # never the pickle
    by_model = client.version(CivitaiRef(model_id=4384))  # a page URL without a version: the newest
    assert (by_model.id, by_model.model_name, by_model.model_type) == (128713, "Pixel Chest", "LORA")
    with pytest.raises(UserError, match=r"^civitai has no model version 999 \(404\)\.$"):
        client.version(CivitaiRef(version_id=999))


def test_download_resumes_with_range_checks_sha256_and_keeps_trigger_words(civitai, tmp_path):
    client = CivitaiClient(civitai.base, token="")
    version = client.version(CivitaiRef(version_id=128713))
    civitai.cut_after = 1000  # the first transfer breaks off
    with pytest.raises(UserError, match="broke off .*run it again to resume"):
        client.download(version, tmp_path / "models")
    part = tmp_path / "models" / "loras" / "pixel_chest_v1.safetensors.part"
    assert part.stat().st_size == 1000
    seen = []
    path = client.download(version, tmp_path / "models", progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "models" / "loras" / "pixel_chest_v1.safetensors"
    assert path.read_bytes() == civitai.blob and not part.exists()
    ranges = [r for p, r, _ in civitai.log if p.startswith("/storage/")]
    assert ranges == ["", "bytes=1000-"]  # the second request asked only for the rest
    assert seen[-1] == (len(civitai.blob), len(civitai.blob))
    sidecar = read_sidecar(path)
    assert sidecar.trained_words == ["pxchest", "pixel art"] and sidecar.base_model == "SD 1.5"
    assert (sidecar.model_id, sidecar.version_id, sidecar.sha256) == (4384, 128713, civitai.sha)
    a1111 = json.loads(path.with_suffix(".json").read_text())
    assert a1111["activation text"] == "pxchest, pixel art" and a1111["sd version"] == "SD1"
    from asset_studio.core.lora_file import parse_lora_file

    assert parse_lora_file(path).trigger_words() == ["pxchest", "pixel art"]
    assert client.download(version, tmp_path / "models") == path  # already there, same SHA256: nothing fetched
    assert len([p for p, _, _ in civitai.log if p.startswith("/storage/")]) == 2


def test_a_damaged_download_is_deleted(civitai, tmp_path):
    client = CivitaiClient(civitai.base, token="")
    version = client.version(CivitaiRef(version_id=128713))
    version.files[1].sha256 = "0" * 64
    with pytest.raises(UserError, match="is damaged .*SHA256 does not match"):
        client.download(version, tmp_path)
    assert list((tmp_path / "loras").iterdir()) == []


def test_a_private_file_needs_the_token_and_the_token_stays_with_civitai(civitai, tmp_path):
    civitai.private = True
    anonymous = CivitaiClient(civitai.base, token="")
    version = anonymous.version(CivitaiRef(version_id=128713))
    with pytest.raises(UserError, match="civitai wants a signed-in user .*set an API token"):
        anonymous.download(version, tmp_path)
    path = CivitaiClient(civitai.base, token=TOKEN).download(version, tmp_path)
    assert path.read_bytes() == civitai.blob
    auth = {p.split("?")[0]: a for p, _, a in civitai.log}
    assert auth["/api/download/models/128713"] == f"Bearer {TOKEN}"
    assert auth["/storage/pixel_chest_v1.safetensors"] == ""  # not forwarded through the redirect


def test_unsupported_base_models_pickles_and_odd_names_are_refused(civitai, tmp_path):
    client = CivitaiClient(civitai.base, token="")
    version = client.version(CivitaiRef(version_id=128713))
    version.base_model = "Flux.1 D"
    with pytest.raises(UserError, match="made for Flux.1 D, which the studio does not run"):
        client.download(version, tmp_path)
    version = client.version(CivitaiRef(version_id=128713))
    version.files = version.files[:1]
    with pytest.raises(UserError, match=r"offers no .safetensors file \(PickleTensor\)"):
        client.download(version, tmp_path)
    version = client.version(CivitaiRef(version_id=128713))
    version.files[1].name = "../../evil.safetensors"
    with pytest.raises(UserError, match="not a plain .safetensors file name"):
        client.download(version, tmp_path)
    assert not any(tmp_path.rglob("*.safetensors"))


def test_the_lora_civitai_command_shows_and_downloads(civitai, tmp_path, capsys, monkeypatch):
    from asset_studio.cli import main

    monkeypatch.delenv("CIVITAI_API_TOKEN", raising=False)
    ref = "https://civitai.com/models/4384/pixel-chest?modelVersionId=128713"
    assert main(["lora", "civitai", ref, "--api", civitai.base]) == 0
    out = capsys.readouterr().out
    assert "Pixel Chest — v1.0 (LORA, SD 1.5)" in out and "Trigger words: pxchest, pixel art" in out
    assert not (tmp_path / "loras").exists()
    assert main(["lora", "civitai", ref, "--api", civitai.base, "--download", "--models", str(tmp_path)]) == 0
    assert (tmp_path / "loras" / "pixel_chest_v1.safetensors").read_bytes() == civitai.blob
    assert main(["lora", "civitai", "nonsense", "--api", civitai.base]) == 2
    assert "is not a civitai model" in capsys.readouterr().err
