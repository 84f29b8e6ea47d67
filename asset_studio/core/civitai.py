"""Models from civitai: a page URL, a version id or an AIR -> the version's metadata -> a checked download.

civitai's public REST API (https://developer.civitai.com/site/reference/model-versions):
GET /api/v1/model-versions/{id} and /api/v1/models/{id} answer JSON with the version's files
(name, type, sizeKB, metadata.format, hashes.SHA256, downloadUrl, primary), baseModel,
trainedWords and the model's type. A download resumes a partial file with an HTTP Range request
and is kept only when its SHA256 matches. The trigger words and base model go into the sidecar
beside the file (core/lora_sidecar). Stdlib HTTP only; a token travels as a Bearer header that
is not forwarded when civitai redirects to its file storage.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from asset_studio.core.lora_sidecar import Sidecar, write_sidecar
from asset_studio.errors import UserError

API_BASE = "https://civitai.com"
TOKEN_ENV = "CIVITAI_API_TOKEN"
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 16 * 1024**3
CHUNK = 1024 * 1024
TIMEOUT_S = 30

# civitai model type -> folder under the models folder
TYPE_FOLDERS = {"checkpoint": "checkpoints", "lora": "loras", "locon": "loras", "dora": "loras",
                "lycoris": "loras", "vae": "vae", "controlnet": "controlnet"}
# civitai baseModel prefix -> the studio's family; other bases (Flux, SD 3, video …) are refused
BASE_FAMILIES = (("SD 1", "sd15"), ("SD 2", "sd2"), ("SDXL", "sdxl"), ("Pony", "sdxl"), ("Illustrious", "sdxl"),
                 ("NoobAI", "sdxl"))
# AIR ecosystems -> family
AIR_ECOSYSTEMS = {"sd1": "sd15", "sd2": "sd2", "sdxl": "sdxl"}

_AIR = re.compile(r"^urn:air:([a-z0-9.-]+):([a-z0-9_-]+):([a-z0-9_-]+):(\d+)(?:@(\d+))?(?:[:.].*)?$", re.IGNORECASE)
_SAFE_NAME = re.compile(r"^[^/\\:*?\"<>|\x00-\x1f]{1,200}\.safetensors$", re.IGNORECASE)


@dataclass
class CivitaiRef:
    model_id: int | None = None
    version_id: int | None = None
    air_type: str = ""  # from an AIR: "lora", "checkpoint" …
    air_family: str = ""


@dataclass
class CivitaiFile:
    name: str
    type: str  # "Model", "VAE", "Training Data" …
    size_bytes: int
    format: str  # "SafeTensor", "PickleTensor" …
    sha256: str
    download_url: str
    primary: bool = False


@dataclass
class CivitaiVersion:
    id: int
    model_id: int
    name: str
    model_name: str
    model_type: str  # "LORA", "Checkpoint", "LoCon", "VAE", "Controlnet" …
    base_model: str
    trained_words: list[str] = field(default_factory=list)
    files: list[CivitaiFile] = field(default_factory=list)
    download_url: str = ""

    @property
    def family(self) -> str | None:
        return next((f for prefix, f in BASE_FAMILIES if self.base_model.startswith(prefix)), None)

    @property
    def folder(self) -> str:
        folder = TYPE_FOLDERS.get(self.model_type.lower())
        if folder is None:
            raise UserError(f"{self.model_name} is a civitai {self.model_type}; the studio uses checkpoints, LoRAs, "
                            f"VAEs and ControlNets.")
        return folder

    def model_file(self) -> CivitaiFile:
        """The file to download: the primary .safetensors model file (pickles are never fetched)."""
        wanted = "vae" if self.model_type.lower() == "vae" else "model"
        candidates = [f for f in self.files if f.type.lower() in (wanted, "model")]
        safe = [f for f in candidates if f.format == "SafeTensor" or f.name.lower().endswith(".safetensors")]
        if not safe:
            kinds = ", ".join(sorted({f.format or "unknown" for f in candidates})) or "no model file"
            raise UserError(f"{self.model_name} ({self.name}) offers no .safetensors file ({kinds}); "
                            f"only .safetensors weights are accepted.")
        return next((f for f in safe if f.primary), safe[0])


def parse_ref(text: str) -> CivitaiRef:
    """A civitai model page URL, download URL, version id or AIR -> the ids it names."""
    text = text.strip()
    if text.isdigit():
        return CivitaiRef(version_id=int(text))
    air = _AIR.match(text)
    if air:
        ecosystem, kind, source, model, version = air.groups()
        if source.lower() != "civitai":
            raise UserError(f"The AIR {text} points to {source}, not civitai.")
        return CivitaiRef(int(model), int(version) if version else None, kind.lower(),
                          AIR_ECOSYSTEMS.get(ecosystem.lower(), ecosystem.lower()))
    url = urllib.parse.urlparse(text)
    host = (url.hostname or "").lower()
    if url.scheme in ("http", "https") and (host == "civitai.com" or host.endswith(".civitai.com")):
        query = urllib.parse.parse_qs(url.query)
        version = query.get("modelVersionId", [""])[0]
        download = re.match(r"^/api/download/models/(\d+)", url.path)
        if download:
            return CivitaiRef(version_id=int(download.group(1)))
        page = re.match(r"^/models/(\d+)", url.path)
        if page:
            return CivitaiRef(int(page.group(1)), int(version) if version.isdigit() else None)
    raise UserError(
        f"'{text[:100]}' is not a civitai model: give a page URL (https://civitai.com/models/ID…), "
        f"a version id, or an AIR (urn:air:sd1:lora:civitai:ID@VERSION)."
    )


def _version_from_json(data: dict, model: dict | None = None) -> CivitaiVersion:
    model = model or data.get("model") or {}
    files = []
    for f in data.get("files") or []:
        if not isinstance(f, dict):
            continue
        hashes = f.get("hashes") if isinstance(f.get("hashes"), dict) else {}
        meta = f.get("metadata") if isinstance(f.get("metadata"), dict) else {}
        files.append(CivitaiFile(
            name=str(f.get("name", "")), type=str(f.get("type", "Model")),
            size_bytes=int(float(f.get("sizeKB") or 0) * 1024), format=str(meta.get("format", "")),
            sha256=str(hashes.get("SHA256", "")).lower(), download_url=str(f.get("downloadUrl", "")),
            primary=bool(f.get("primary")),
        ))
    words = data.get("trainedWords") if isinstance(data.get("trainedWords"), list) else []
    return CivitaiVersion(
        id=int(data["id"]), model_id=int(data.get("modelId") or model.get("id") or 0), name=str(data.get("name", "")),
        model_name=str(model.get("name", "")), model_type=str(model.get("type", "")),
        base_model=str(data.get("baseModel", "")), trained_words=[str(w).strip() for w in words if str(w).strip()],
        files=files, download_url=str(data.get("downloadUrl", "")),
    )


class CivitaiClient:
    """civitai's REST API at ``base`` (a local server in tests); ``token`` from settings or CIVITAI_API_TOKEN."""

    def __init__(self, base: str = API_BASE, token: str | None = None):
        self.base = base.rstrip("/")
        self.token = token if token is not None else os.environ.get(TOKEN_ENV) or None

    def _request(self, url: str, headers: dict | None = None) -> urllib.request.Request:
        request = urllib.request.Request(url, headers={"User-Agent": "asset-studio", **(headers or {})})
        if self.token:
            # unredirected: civitai's storage host (after the redirect) never sees the token
            request.add_unredirected_header("Authorization", f"Bearer {self.token}")
        return request

    def _open(self, request: urllib.request.Request, what: str, complete_ok: bool = False):
        try:
            return urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            if complete_ok and exc.code == 416:  # asked to resume past the end: the part file is whole
                return None
            if exc.code in (401, 403):
                hint = "the token was refused" if self.token else f"set an API token in settings or {TOKEN_ENV}"
                raise UserError(f"civitai wants a signed-in user for {what} ({hint}).") from None
            if exc.code == 404:
                raise UserError(f"civitai has no {what} (404).") from None
            raise UserError(f"civitai answered {exc.code} for {what}.") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(f"civitai cannot be reached ({reason}).") from None

    def _json(self, path: str, what: str) -> dict:
        with self._open(self._request(self.base + path, {"Accept": "application/json"}), what) as response:
            raw = response.read(MAX_JSON_BYTES + 1)
        try:
            if len(raw) > MAX_JSON_BYTES:
                raise ValueError
            data = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise UserError(f"civitai's answer for {what} is not the JSON it documents.") from None
        if not isinstance(data, dict):
            raise UserError(f"civitai's answer for {what} is not the JSON it documents.")
        return data

    def version(self, ref: CivitaiRef) -> CivitaiVersion:
        """The version's metadata; for a model id alone, its newest version."""
        try:
            if ref.version_id is not None:
                version = _version_from_json(self._json(f"/api/v1/model-versions/{ref.version_id}",
                                                        f"model version {ref.version_id}"))
                if ref.model_id is not None and version.model_id and version.model_id != ref.model_id:
                    raise UserError(f"civitai's version {ref.version_id} belongs to model {version.model_id}, "
                                    f"not {ref.model_id}.")
                return version
            data = self._json(f"/api/v1/models/{ref.model_id}", f"model {ref.model_id}")
            versions = [v for v in data.get("modelVersions") or [] if isinstance(v, dict)]
            if not versions:
                raise UserError(f"civitai's model {ref.model_id} has no published version.")
            return _version_from_json(versions[0], data)
        except (KeyError, TypeError, ValueError):
            raise UserError("civitai's answer is not the JSON it documents.") from None

    def download(self, version: CivitaiVersion, models_dir: Path,
                 progress: Callable[[int, int], None] | None = None) -> Path:
        """Fetch the version's model file into models_dir/<kind folder>/, resuming a partial one; SHA256 checked."""
        file = version.model_file()
        if not _SAFE_NAME.match(file.name) or file.name.startswith("."):
            raise UserError(f"civitai's file name '{file.name[:80]}' is not a plain .safetensors file name.")
        if file.size_bytes > MAX_DOWNLOAD_BYTES:
            raise UserError(f"{file.name} is {file.size_bytes / 2**30:.1f} GiB, over the download limit.")
        if version.family is None:
            raise UserError(f"{version.model_name} is made for {version.base_model or 'an unknown base model'}, "
                            f"which the studio does not run (SD 1.5, SD 2.x and SDXL).")
        folder = Path(models_dir) / version.folder
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / file.name
        if not target.resolve().is_relative_to(folder.resolve()):
            raise UserError(f"civitai's file name '{file.name[:80]}' points outside the models folder.")
        if target.exists():
            if file.sha256 and _sha256(target) == file.sha256:
                self._sidecar(version, file, target)
                return target
            raise UserError(f"{target} already exists and is another file; move it away to download this one.")
        part = target.with_name(target.name + ".part")
        self._fetch(file, part, progress)
        digest = _sha256(part)
        if file.sha256 and digest != file.sha256:
            part.unlink()
            raise UserError(f"The download of {file.name} is damaged (its SHA256 does not match civitai's); "
                            f"it was deleted, try again.")
        part.replace(target)
        self._sidecar(version, file, target)
        return target

    def _fetch(self, file: CivitaiFile, part: Path, progress) -> None:
        url = file.download_url or ""
        if not url:
            raise UserError(f"civitai gives no download address for {file.name}.")
        if url.startswith("/"):
            url = self.base + url
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        response = self._open(self._request(url, headers), file.name, complete_ok=bool(have))
        if response is None:
            return
        with response:
            status = response.status
            if have and status == 200:  # the server ignored the Range: start over
                have = 0
            elif have and status == 206:
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(f"bytes {have}-"):
                    have = 0  # not the part we asked for: start over rather than splice
                    response.close()
                    part.unlink()
                    return self._fetch(file, part, progress)
            total = file.size_bytes or int(response.headers.get("Content-Length") or 0) + have
            done = have
            with open(part, "ab" if have else "wb") as out:
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise UserError(f"The download of {file.name} broke off ({exc}); run it again to resume.") from None
                    if not chunk:
                        break
                    done += len(chunk)
                    if done > MAX_DOWNLOAD_BYTES or (file.size_bytes and done > file.size_bytes + CHUNK):
                        raise UserError(f"civitai sent more data for {file.name} than it announced; stopped.")
                    out.write(chunk)
                    if progress:
                        progress(done, total)
        expected = int(response.headers.get("Content-Length") or -1)
        if expected >= 0 and done - have != expected:
            raise UserError(f"The download of {file.name} broke off at {done:,} bytes; run it again to resume.")

    def _sidecar(self, version: CivitaiVersion, file: CivitaiFile, target: Path) -> None:
        write_sidecar(target, Sidecar(
            trained_words=version.trained_words, base_model=version.base_model, model_id=version.model_id,
            version_id=version.id, sha256=file.sha256,
            source_url=f"https://civitai.com/models/{version.model_id}?modelVersionId={version.id}",
        ))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
