"""A loopback stand-in for a ComfyUI server: the HTTP + WebSocket API Asset Studio uses (/system_stats,
/object_info, /upload/image, /prompt, /ws, /view, /queue, /interrupt), answering as ComfyUI 0.3.64
does, with pictures made up from each graph instead of a model. For tests that need a server's
side of the protocol without a real one (real servers: comfy_servers.py).

    with StandInComfy(checkpoints=["svd_xt.safetensors"]) as server:
        server.url                         # http://127.0.0.1:PORT
        server.prompts                     # every graph posted to /prompt, in order
        server.uploads                     # name -> PNG bytes of every uploaded picture

Each graph's SaveImage returns draw(graph) pictures: by default one per frame of an SVD graph (one
for an image graph), frame i a solid colour whose red is 10 * i and green the seed's low byte, so
a test reads the order and the animation off the saved pixels.
"""

from __future__ import annotations

import asyncio
import io
import threading
import uuid

from PIL import Image

from asset_studio.remote.graph import STUDIO_NODES
from asset_studio.remote.video_graph import SVD_NODES


def node_of(graph: dict, class_type: str) -> dict:
    return next(n["inputs"] for n in graph.values() if n["class_type"] == class_type)


def solid_frames(graph: dict) -> list[Image.Image]:
    seed = node_of(graph, "KSampler")["seed"]
    try:
        cond = node_of(graph, "SVD_img2vid_Conditioning")
        count, size = cond["video_frames"], (cond["width"], cond["height"])
    except StopIteration:
        latent = node_of(graph, "EmptyLatentImage")
        count, size = 1, (latent["width"], latent["height"])
    return [Image.new("RGB", size, (10 * i, seed % 256, 0)) for i in range(count)]


class StandInComfy:
    def __init__(self, checkpoints=("svd_xt.safetensors",), nodes=STUDIO_NODES | SVD_NODES, draw=solid_frames,
                 steps: int = 2, broken_view: bool = False):
        self.checkpoints = list(checkpoints)
        self.nodes = set(nodes)
        self.draw = draw
        self.steps = steps
        self.broken_view = broken_view  # /view fails: a server that breaks while the frames are fetched
        self.prompts: list[dict] = []
        self.uploads: dict[str, bytes] = {}
        self._outputs: dict[str, bytes] = {}
        self._sockets: dict = {}
        self.url = ""

    # --- the API -------------------------------------------------------------------------------------

    async def _system_stats(self, request):
        from aiohttp import web

        return web.json_response({"system": {"comfyui_version": "0.3.64"},
                                  "devices": [{"name": "stand-in", "type": "cpu"}]})

    async def _object_info(self, request):
        from aiohttp import web

        info = {name: {"input": {"required": {}}} for name in self.nodes}
        for loader in ("CheckpointLoaderSimple", "ImageOnlyCheckpointLoader"):
            if loader in info:
                info[loader]["input"]["required"]["ckpt_name"] = [list(self.checkpoints)]
        return web.json_response(info)

    async def _upload(self, request):
        from aiohttp import web

        form = await request.post()
        image = form["image"]
        self.uploads[image.filename] = image.file.read()
        return web.json_response({"name": image.filename, "subfolder": "", "type": "input"})

    async def _prompt(self, request):
        from aiohttp import web

        body = await request.json()
        prompt_id = uuid.uuid4().hex
        self.prompts.append(body["prompt"])
        asyncio.get_running_loop().create_task(self._execute(prompt_id, body["prompt"], body.get("client_id")))
        return web.json_response({"prompt_id": prompt_id, "number": len(self.prompts), "node_errors": {}})

    async def _execute(self, prompt_id: str, graph: dict, client_id: str | None):
        ws = self._sockets.get(client_id)
        if ws is None:
            return

        async def send(kind, **data):
            await ws.send_json({"type": kind, "data": dict(data, prompt_id=prompt_id)})

        await send("execution_start")
        sampler = next(i for i, n in graph.items() if n["class_type"] == "KSampler")
        await send("executing", node=sampler)
        for step in range(1, self.steps + 1):
            await send("progress", value=step, max=self.steps, node=sampler)
        save = next(i for i, n in graph.items() if n["class_type"] == "SaveImage")
        images = []
        for i, picture in enumerate(self.draw(graph)):
            name = f"{node_of(graph, 'SaveImage')['filename_prefix']}_{len(self._outputs) + 1:05d}_.png"
            buf = io.BytesIO()
            picture.save(buf, format="PNG")
            self._outputs[name] = buf.getvalue()
            images.append({"filename": name, "subfolder": "", "type": "output"})
        await send("executed", node=save, output={"images": images})
        await send("execution_success")
        await send("executing", node=None)

    async def _ws(self, request):
        from aiohttp import web

        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client_id = request.query.get("clientId", "")
        self._sockets[client_id] = ws
        status = {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}
        await ws.send_json({"type": "status", "data": status})
        async for _ in ws:
            pass
        self._sockets.pop(client_id, None)
        return ws

    async def _view(self, request):
        from aiohttp import web

        body = self._outputs.get(request.query.get("filename", ""))
        if self.broken_view:
            return web.Response(status=500)
        if body is None:
            return web.Response(status=404)
        return web.Response(body=body, content_type="image/png")

    async def _ok(self, request):
        from aiohttp import web

        return web.json_response({})

    # --- running -------------------------------------------------------------------------------------

    def __enter__(self) -> "StandInComfy":
        from aiohttp import web

        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_get("/system_stats", self._system_stats)
        app.router.add_get("/object_info", self._object_info)
        app.router.add_post("/upload/image", self._upload)
        app.router.add_post("/prompt", self._prompt)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/view", self._view)
        app.router.add_post("/queue", self._ok)
        app.router.add_post("/interrupt", self._ok)
        self.runner = web.AppRunner(app, shutdown_timeout=1.0)

        def serve():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            self.url = "http://127.0.0.1:%d" % self.runner.addresses[0][1]
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, name="stand-in ComfyUI", daemon=True)
        self.thread.start()
        if not started.wait(10):
            raise RuntimeError("the stand-in ComfyUI server did not start")
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
