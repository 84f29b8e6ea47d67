"""One ComfyUI server over its HTTP + WebSocket API (ComfyUI has no auth; a proxy may add a token).

    server = ComfyClient("http://gpu-3:8188", token=None, timeout=30)
    info = server.info()                        # version, devices, node classes, model lists
    for event in server.run_image(job.for_seed(seed), index, count, should_cancel):
        ...                                     # Progress …, then ImageReady (or Cancelled)

Every wait has a time-out and a dropped connection is a ServerError naming the server, so a job
never hangs on a server that went away. HTTP goes through urllib (stdlib); the WebSocket through
the websocket-client library.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import ssl
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from asset_studio.core.backend import Cancelled, ImageReady, Progress
from asset_studio.core.job import GenerationJob
from asset_studio.errors import UserError
from asset_studio.remote.graph import (MODEL_LISTS, ServerFiles, file_name, images_of, job_graph, models_of,
                                       nodes_of, output_node)

MAX_IMAGE_BYTES = 256 * 1024 * 1024  # a result bigger than this is not an image we asked for
PREVIEW_IMAGE = 1  # ComfyUI's binary WebSocket frame types (protocol.BinaryEventTypes)
PREVIEW_WITH_METADATA = 4


class ServerError(Exception):
    """The server failed or went away: the image it had goes to another server."""


class JobError(UserError):
    """The server refused or failed the job itself: another server would fail it too."""


@dataclass
class ServerInfo:
    url: str
    version: str
    devices: list[str]
    nodes: set[str]
    models: dict[str, list[str]] = field(default_factory=dict)  # kind (MODEL_LISTS) → file names

    def find_model(self, kind: str, ref: str) -> str | None:
        """The server's name for model REF: matched by file name (case-insensitive) in its list.
        An upscaler named by its catalog id goes by the catalog's file name."""
        names = {file_name(ref).lower()}
        if kind == "upscale model":
            names.add(catalog_file_name(ref).lower())
        for name in self.models.get(kind, []):
            if file_name(name).lower() in names:
                return name
        return None

    def missing(self, job: GenerationJob) -> list[str]:
        """One sentence for each node and model JOB needs that this server lacks."""
        needed = nodes_of(job, self.files_for(job))
        problems = [f"The server {self.url} lacks the node {n}, which this job needs."
                    for n in sorted(needed - self.nodes)]
        for kind, ref in models_of(job):
            if self.find_model(kind, ref) is None:
                problems.append(f"The {kind} {file_name(ref)} is not on the server {self.url}.")
        return problems

    def files_for(self, job: GenerationJob) -> ServerFiles:
        return ServerFiles(models={ref: self.find_model(kind, ref) or file_name(ref) for kind, ref in models_of(job)},
                           family=local_family(job.model.checkpoint))


class ComfyClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0, idle_timeout: float = 180.0,
                 image_timeout: float = 1800.0, verify_tls: bool = True):
        url = url.strip().rstrip("/")
        if "://" not in url:
            url = "http://" + url
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserError(f"The server address {url} is not http://HOST:PORT or https://HOST:PORT.")
        self.url = url
        self.token = token
        self.timeout = timeout  # any one HTTP request, and opening the WebSocket
        self.idle_timeout = idle_timeout  # silence on the WebSocket while our image waits or runs (model loads are silent)
        self.image_timeout = image_timeout  # one image from queueing to its file
        self.client_id = uuid.uuid4().hex
        self._ssl = ssl.create_default_context() if verify_tls else ssl._create_unverified_context()
        self._info: ServerInfo | None = None
        self._uploaded: dict[str, str] = {}  # local path → uploaded name, per job's images

    # --- HTTP ---------------------------------------------------------------------------------------

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _request(self, path: str, data: bytes | None = None, content_type: str | None = None,
                 limit: int = 64 * 1024 * 1024) -> bytes:
        headers = self._headers()
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.url + path, data=data, headers=headers,
                                     method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._ssl) as response:
                body = response.read(limit + 1)
        except urllib.error.HTTPError as exc:
            detail = exc.read(1024 * 1024)
            if exc.code in (401, 403):
                raise UserError(f"The server {self.url} refused the request ({exc.code}): check its token.") from None
            if exc.code == 400 and path == "/prompt":
                raise JobError(f"The server {self.url} refused the job: {_prompt_error(detail)}") from None
            raise ServerError(f"The server {self.url} answered {exc.code} to {path}.") from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerError(f"The server {self.url} cannot be reached ({reason}).") from None
        if len(body) > limit:
            raise ServerError(f"The server {self.url} sent more than {limit // 2**20} MB for {path}.")
        return body

    def _json(self, path: str, payload: dict | None = None):
        data = None if payload is None else json.dumps(payload).encode()
        body = self._request(path, data, "application/json" if data is not None else None)
        try:
            return json.loads(body) if body else None
        except ValueError:
            raise ServerError(f"The server {self.url} sent something other than JSON for {path}: "
                              "is it a ComfyUI server?") from None

    # --- what the server has --------------------------------------------------------------------------

    def info(self, refresh: bool = False) -> ServerInfo:
        """Version, devices, nodes and model lists (cached; refresh=True asks again)."""
        if self._info is not None and not refresh:
            return self._info
        stats = self._json("/system_stats")
        objects = self._json("/object_info")
        if not isinstance(stats, dict) or not isinstance(objects, dict):
            raise ServerError(f"The server {self.url} does not answer as a ComfyUI server does.")
        system = stats.get("system", {})
        devices = [f"{d.get('name', '?')} ({d.get('type', '?')})" for d in stats.get("devices", [])]
        models = {kind: _choices(objects, node, name) for kind, (node, name) in MODEL_LISTS.items()}
        self._info = ServerInfo(url=self.url, version=str(system.get("comfyui_version", "?")), devices=devices,
                                nodes=set(objects), models=models)
        return self._info

    # --- one image ------------------------------------------------------------------------------------

    def upload(self, path: str, width: int, height: int) -> str:
        """Upload the picture at PATH at the job's size (as the local engine resizes it); its name on
        the server is its content hash, so the same picture is sent once."""
        from PIL import Image

        from asset_studio.core.images import read_image

        image = read_image(path, "RGB", what="The picture")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        png = buf.getvalue()
        name = f"asset-studio-{hashlib.sha256(png).hexdigest()[:20]}.png"
        if self._uploaded.get(path) == name:
            return name
        boundary = uuid.uuid4().hex
        body = b"".join([
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\ntrue\r\n".encode(),
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
            "Content-Type: image/png\r\n\r\n".encode(), png, f"\r\n--{boundary}--\r\n".encode(),
        ])
        try:
            answer = json.loads(self._request("/upload/image", body, f"multipart/form-data; boundary={boundary}"))
            uploaded = str(answer["name"]) if not answer.get("subfolder") else f"{answer['subfolder']}/{answer['name']}"
        except (ValueError, KeyError, TypeError):
            raise ServerError(f"The server {self.url} did not take the picture {path}.") from None
        self._uploaded[path] = uploaded
        return uploaded

    def graph_for(self, job: GenerationJob) -> dict:
        """JOB's graph with this server's names for its models and uploaded pictures."""
        info = self.info()
        problems = info.missing(job)
        if problems:
            raise JobError(problems[0])
        files = info.files_for(job)
        s = job.sampling
        files.images = {path: self.upload(path, s.width, s.height) for path in images_of(job)}
        return job_graph(job, files)

    def queue(self, graph: dict) -> str:
        answer = self._json("/prompt", {"prompt": graph, "client_id": self.client_id})
        if not isinstance(answer, dict) or "prompt_id" not in answer:
            raise ServerError(f"The server {self.url} did not queue the job.")
        return str(answer["prompt_id"])

    def cancel(self, prompt_id: str) -> None:
        """Stop PROMPT_ID, running or waiting; quietly, since the server may be gone."""
        for path, payload in (("/queue", {"delete": [prompt_id]}), ("/interrupt", {"prompt_id": prompt_id})):
            try:
                self._request(path, json.dumps(payload).encode(), "application/json")
            except (ServerError, UserError):
                pass

    def fetch(self, image: dict) -> bytes:
        query = urllib.parse.urlencode({"filename": image.get("filename", ""), "subfolder": image.get("subfolder", ""),
                                        "type": image.get("type", "output")})
        return self._request(f"/view?{query}", limit=MAX_IMAGE_BYTES)

    def run_image(self, job: GenerationJob, index: int, count: int,
                  should_cancel: Callable[[], bool] | None = None, made_by: str = "") -> Iterator:
        """Make JOB's one image (job.for_seed(seed)): Progress events with previews, then ImageReady
        (one per frame for an animation) or Cancelled. A server that fails or goes silent raises
        ServerError; a job it refuses, JobError."""
        cancelled = should_cancel or (lambda: False)
        maker = made_by or f"comfyui {self.url}"  # on every event of this image: the queue shows where it runs
        graph = self.graph_for(job)
        out_node = output_node(graph)
        ws = self._connect()  # before queueing, so no message of this prompt is missed
        try:
            prompt_id = self.queue(graph)
            deadline = time.monotonic() + self.image_timeout
            last, result = None, None
            while True:
                if cancelled():
                    self.cancel(prompt_id)
                    yield Cancelled()
                    return
                if time.monotonic() > deadline:
                    self.cancel(prompt_id)
                    raise ServerError(f"The server {self.url} took more than {self.image_timeout:g} s for one image.")
                message = self._receive(ws)
                if message is None:  # a quiet moment: look at should_cancel again
                    continue
                if isinstance(message, bytes):
                    # The preview of a step follows its progress message: report the step again with it.
                    preview = _preview(message)
                    if preview is not None and last is not None:
                        last = Progress(step=last.step, total=last.total, image_index=index, image_count=count,
                                        preview=preview, made_by=maker)
                        yield last
                    continue
                kind, data = message.get("type"), message.get("data") or {}
                if data.get("prompt_id") not in (None, prompt_id):
                    continue  # another client's prompt on a shared server
                if kind == "progress" and data.get("prompt_id") == prompt_id:
                    last = Progress(step=int(data.get("value", 0)), total=int(data.get("max", 0)),
                                    image_index=index, image_count=count, preview=None, made_by=maker)
                    yield last
                elif kind == "executed" and str(data.get("node")) == out_node:
                    result = (data.get("output") or {}).get("images") or None  # an animation's frames, in order
                elif kind == "execution_error":
                    raise _execution_error(self.url, data)
                elif kind == "execution_interrupted":
                    if cancelled():
                        yield Cancelled()
                        return
                    raise ServerError(f"The job was interrupted on the server {self.url}.")
                elif kind in ("execution_success",) or (kind == "executing" and data.get("node") is None
                                                         and data.get("prompt_id") == prompt_id):
                    break
            if result is None:
                raise ServerError(f"The server {self.url} finished without an image.")
            done = job.for_seed(job.sampling.seed)  # a copy: the pool's job is shared by its threads
            done.made_by = maker
            if job.animation is not None:
                yield from self._frames(done, result, index)
                return
            yield ImageReady(image=self._picture(result[0]), job=done, index=index, seed=int(job.sampling.seed))
        finally:
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - closing a socket that is already gone
                pass

    def _picture(self, image: dict):
        from PIL import Image

        try:
            picture = Image.open(io.BytesIO(self.fetch(image)))
            picture.load()
        except (OSError, ValueError, Image.DecompressionBombError):
            raise ServerError(f"The server {self.url} sent an image that cannot be read.") from None
        return picture.convert("RGB")

    def _frames(self, done: GenerationJob, images: list, index: int) -> Iterator:
        """One ImageReady per frame of an animation, its job naming the frame (as the local engine's).
        Every frame is fetched before the first is handed on: a server lost midway has the whole
        animation made again elsewhere, never half of it saved twice."""
        count = done.animation.frames
        if len(images) != count:
            raise JobError(f"The server {self.url} sent {len(images)} frames instead of {count}.")
        pictures = [self._picture(image) for image in images]
        for frame, picture in enumerate(pictures):
            frame_job = copy.deepcopy(done)
            frame_job.source.frame = frame
            yield ImageReady(image=picture, job=frame_job, index=index, seed=int(done.sampling.seed), frame=frame,
                             frame_count=count)

    # --- WebSocket ----------------------------------------------------------------------------------

    def _connect(self):
        import websocket  # websocket-client

        parts = urllib.parse.urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        address = f"{scheme}://{parts.netloc}{parts.path}/ws?clientId={self.client_id}"
        header = [f"{k}: {v}" for k, v in self._headers().items()]
        sslopt = {"context": self._ssl} if scheme == "wss" else None
        try:
            ws = websocket.create_connection(address, timeout=self.timeout, header=header, sslopt=sslopt,
                                             enable_multithread=True)
        except (websocket.WebSocketException, OSError) as exc:
            raise ServerError(f"The server {self.url} cannot be reached ({exc}).") from None
        ws.settimeout(0.25)  # short reads, so a cancel is seen at once; silence is counted below
        ws.last_heard = time.monotonic()
        return ws

    def _receive(self, ws):
        """The next message (dict or bytes), None after a short quiet moment; ServerError after
        self.idle_timeout of silence or when the connection drops."""
        import websocket

        try:
            frame = ws.recv()
        except websocket.WebSocketTimeoutException:
            if time.monotonic() - ws.last_heard > self.idle_timeout:
                raise ServerError(f"The server {self.url} said nothing for {self.idle_timeout:g} s.") from None
            return None
        except (websocket.WebSocketException, OSError) as exc:
            raise ServerError(f"The connection to the server {self.url} dropped ({exc or type(exc).__name__}).") from None
        ws.last_heard = time.monotonic()
        if isinstance(frame, bytes):
            return frame
        if not frame:
            raise ServerError(f"The connection to the server {self.url} dropped.")
        try:
            message = json.loads(frame)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None


def local_family(ref: str) -> str:
    """The family of a checkpoint that is also on this computer (its safetensors header says);
    "" when it is not here or not readable: the graph then takes the path that suits any family."""
    from asset_studio.core import families
    from asset_studio.core.safetensors_header import read_header_file

    path = Path(str(ref)).expanduser()
    if path.suffix.lower() != ".safetensors" or not path.is_file():
        return ""
    try:
        tensors = read_header_file(path).tensors
    except (UserError, OSError, ValueError):
        return ""
    return families.family_of_checkpoint_keys({k: v.shape for k, v in tensors.items()}) or ""


def refiner_mismatch(job: GenerationJob) -> str | None:
    """The local engine's refusal of a refiner from another family (SDXL with SD 1.x), where both
    files are on this computer to tell; None otherwise (the server then finds out, if it must)."""
    if job.passes.refiner is None:
        return None
    from asset_studio.core import families

    base, refiner = local_family(job.model.checkpoint), local_family(job.passes.refiner.model)
    if base and refiner and (base == "sdxl") != (refiner == "sdxl"):
        return (f"The refiner {file_name(job.passes.refiner.model)} is an {families.label(refiner)} model but the "
                f"model is {families.label(base)}; use a refiner of the same family.")
    return None


def catalog_file_name(ref: str) -> str:
    """The file name of the catalog upscaler REF names (`asset-studio models` ids), else REF's own name."""
    from asset_studio.core.models import load_catalog

    try:
        entry = next((e for e in load_catalog() if e.kind == "upscaler" and ref in (e.id, e.name)), None)
    except UserError:
        entry = None
    if entry is None or not entry.allow_patterns:
        return file_name(ref)
    return file_name(entry.allow_patterns[0])


def _choices(objects: dict, node: str, name: str) -> list[str]:
    """The file names a loader node offers: its input's first element is the list, or "COMBO" then
    {"options": list} for nodes written against ComfyUI's v3 node API (UpscaleModelLoader in 0.3.64)."""
    try:
        spec = objects[node]["input"]["required"][name]
    except (KeyError, TypeError):
        return []
    values = spec[0] if isinstance(spec, list) and spec else []
    if values == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):  # nodes of ComfyUI's v3 API
        values = spec[1].get("options", [])
    return [str(v) for v in values] if isinstance(values, list) else []


def _preview(frame: bytes):
    """A preview picture from a binary WebSocket frame, or None for frames that are not one."""
    from PIL import Image

    if len(frame) < 8:
        return None
    kind = struct.unpack(">I", frame[:4])[0]
    if kind == PREVIEW_IMAGE:
        payload = frame[8:]  # then a 4-byte image format (JPEG/PNG): Pillow reads either
    elif kind == PREVIEW_WITH_METADATA:
        size = struct.unpack(">I", frame[4:8])[0]
        payload = frame[8 + size:]
    else:
        return None
    try:
        image = Image.open(io.BytesIO(payload))
        image.load()
        return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _prompt_error(detail: bytes) -> str:
    """The first reason in ComfyUI's answer to a refused /prompt, briefly."""
    try:
        answer = json.loads(detail)
    except ValueError:
        return "it gave no reason."
    for node in (answer.get("node_errors") or {}).values():
        for error in node.get("errors", []):
            return f"{node.get('class_type', 'a node')}: {error.get('message', '')} {error.get('details', '')}".strip() + "."
    error = answer.get("error") or {}
    return f"{error.get('message', 'it gave no reason')}."


def _execution_error(url: str, data: dict) -> Exception:
    """A node failed while running. Missing memory or a broken server may pass elsewhere; the rest
    would fail anywhere."""
    text = str(data.get("exception_message", "")).strip().splitlines()
    first = text[0] if text else "no message"
    node = data.get("node_type", "a node")
    sentence = f"The server {url} failed in {node}: {first.rstrip('.')}."
    kind = str(data.get("exception_type", ""))
    if "OutOfMemory" in kind or "out of memory" in first.lower():
        return ServerError(sentence)
    return JobError(sentence)
