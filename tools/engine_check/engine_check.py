"""Manual check: do sheets written by `asset-studio sheet` load as they are in PixiJS and Phaser 3?

Packs a sprite folder with the real CLI, then asks each engine's own loader what it built and
compares that with what the source PNGs say (names, sizes, trim boxes, pixels, animations).
Needs Node with pixi.js installed in --pixi-dir and, for Phaser, phaser in --phaser-dir plus a
Chromium. See README.md. Exit code 0 when every check passed.
"""

from __future__ import annotations

import argparse
import base64
import functools
import io
import os
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
SEQ = re.compile(r"^(?P<prefix>.*?)[_-]?(?P<index>\d+)$")


# ----------------------------------------------------------------------------- expectations


def sources(folder: Path) -> dict[str, Image.Image]:
    return {p.relative_to(folder).as_posix(): Image.open(p).convert("RGBA") for p in sorted(folder.rglob("*.png"))}


def alpha_bbox(im: Image.Image) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = im.getchannel("A").getbbox() or (0, 0, 0, 0)
    return x0, y0, x1 - x0, y1 - y0


def expected_animations(names: list[str]) -> dict[str, list[str]]:
    """Numbered siblings (flagGreen1, flagGreen2 …) in number order; worked out here, not by the app."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for n in names:
        m = SEQ.match(n.rsplit(".", 1)[0])
        if m:
            groups.setdefault(m.group("prefix"), []).append((int(m.group("index")), n))
    return {k: [n for _, n in sorted(v)] for k, v in groups.items() if len(v) >= 2}


def same_pixels(got: Image.Image, want: Image.Image) -> int:
    """Pixels that differ: alpha anywhere, colour where anything shows."""
    a, b = np.asarray(got, dtype=np.int16), np.asarray(want, dtype=np.int16)
    if a.shape != b.shape:
        return -1
    bad = (a[..., 3] != b[..., 3]) | ((b[..., 3] > 0) & (np.abs(a[..., :3] - b[..., :3]).max(-1) > 0))
    return int(bad.sum())


def names_by_pixels(data_json: Path, src: dict[str, Image.Image]) -> dict[str, str]:
    """{frame key in the data file: source name}, found by rebuilding each frame from the page's
    pixels (not by trusting its name): Aseprite data names frames 0, 1, 2 …"""
    doc = json.loads(data_json.read_text())
    page = Image.open(data_json.parent / doc["meta"]["image"]).convert("RGBA")
    entries = doc["frames"] if isinstance(doc["frames"], list) else [{"filename": k, **v} for k, v in doc["frames"].items()]
    out: dict[str, str] = {}
    for e in entries:
        f, o, size = e["frame"], e["spriteSourceSize"], e["sourceSize"]
        full = Image.new("RGBA", (size["w"], size["h"]))
        full.paste(page.crop((f["x"], f["y"], f["x"] + f["w"], f["y"] + f["h"])), (o["x"], o["y"]))
        same = [n for n, im in src.items() if n not in out.values() and same_pixels(full, im) == 0]
        out[e["filename"]] = same[0] if same else f"?{e['filename']}"
    return out


# ----------------------------------------------------------------------------- sheets


def make_sheet(sprites: Path, out: Path, fmt: str, *extra: str) -> Path:
    cli = Path(sys.executable).with_name("asset-studio")
    cmd = [str(cli), "sheet", str(sprites), "--out", str(out), "--format", fmt, "--trim", "--padding", "2", *extra]
    print("$", " ".join(cmd[1:]))
    subprocess.run(cmd, check=True)
    return out


# ----------------------------------------------------------------------------- PixiJS


def check_pixi(pixi_dir: Path, jsons: list[Path], src: dict[str, Image.Image], label: str,
               want_anims: dict[str, list[str]] | None = None) -> list[str]:
    """Parse the pages with Pixi's Spritesheet in Node; compare names, rects, pixels, animations."""
    run = subprocess.run(["node", str(HERE / "pixi_load.cjs"), str(pixi_dir), *map(str, jsons)],
                         capture_output=True, text=True)
    if run.returncode:
        return [f"pixi {label}: node failed: {run.stderr.strip()[-500:]}"]
    got = json.loads(run.stdout)
    problems: list[str] = []
    frames: dict[str, tuple[dict, Path]] = {}
    animations: dict[str, list] = {}
    for j in jsons:
        sheet = got["sheets"][str(j)]
        page = Image.open(j.parent / json.loads(j.read_text())["meta"]["image"]).convert("RGBA")
        if [page.width, page.height] != [json.loads(j.read_text())["meta"]["size"][k] for k in "wh"]:
            problems.append(f"pixi {label}: {j.name} meta.size differs from the PNG")
        for name, t in sheet["frames"].items():
            frames[name] = (t, page)
        animations.update(sheet["animations"])
    missing = sorted(set(src) - set(frames))
    extra = sorted(set(frames) - set(src))
    px_bad = rect_bad = 0
    for name, (t, page) in frames.items():
        if name not in src:
            continue
        im = src[name]
        bx, by, bw, bh = alpha_bbox(im)
        if (t["orig"]["w"], t["orig"]["h"]) != im.size or t["trim"] is None and (bw, bh) != im.size or \
                t["trim"] is not None and (t["trim"]["x"], t["trim"]["y"], t["trim"]["w"], t["trim"]["h"]) != (bx, by, bw, bh):
            rect_bad += 1
            problems.append(f"pixi {label}: {name} orig/trim {t['orig']} {t['trim']} != source {im.size} bbox {(bx, by, bw, bh)}")
        f = t["frame"]
        crop = page.crop((f["x"], f["y"], f["x"] + f["w"], f["y"] + f["h"]))
        if t["rotate"]:  # TexturePacker stores turned 90° clockwise; Pixi's rotate=2 turns it back
            crop = crop.transpose(Image.Transpose.ROTATE_90)
        canvas = Image.new("RGBA", (int(t["orig"]["w"]), int(t["orig"]["h"])))
        tx, ty = (t["trim"]["x"], t["trim"]["y"]) if t["trim"] else (0, 0)
        canvas.paste(crop, (int(tx), int(ty)))
        n = same_pixels(canvas, im)
        if n:
            px_bad += 1
            problems.append(f"pixi {label}: {name} shows {n} wrong pixels")
    want_anims = expected_animations(list(src)) if want_anims is None else want_anims
    anim_bad = [k for k in set(want_anims) | set(animations) if animations.get(k) != want_anims.get(k)]
    print(f"PixiJS {got['pixi_version']} [{label}] pages={len(jsons)} frames found {len(set(frames) & set(src))}/{len(src)}"
          f" (extra names: {len(extra)}), orig/trim mismatches {rect_bad}, pixel mismatches {px_bad},"
          f" animations {len(want_anims) - len([k for k in anim_bad if k in want_anims])}/{len(want_anims)} correct")
    if missing:
        problems.append(f"pixi {label}: frames missing: {missing[:5]}{' …' if len(missing) > 5 else ''}"
                        f" (Pixi named them {extra[:5]})")
    for k in sorted(anim_bad):
        problems.append(f"pixi {label}: animation {k}: got {animations.get(k)}, want {want_anims.get(k)}")
    return problems


# ----------------------------------------------------------------------------- Phaser 3


def serve(folder: Path) -> ThreadingHTTPServer:
    """Serve ``folder``; a POST to /result (the page's report) lands in folder/posted.json."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep the report readable
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            (folder / "posted.json.part").write_bytes(body)
            (folder / "posted.json.part").replace(folder / "posted.json")
            self.send_response(204)
            self.end_headers()

    handler = functools.partial(Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def chromium_flags(profile: str, size: tuple[int, int]) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
            f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"]


def run_page(binary: str, url: str, size: tuple[int, int], posted: Path, timeout: float = 120) -> dict:
    """Open the page and wait for the report it POSTs (headless Chromium's virtual-time budget
    does not wait for Pixi's image decoding, so --dump-dom alone can fire too early)."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        # its own session, so that ending it ends Chromium's helper processes too
        proc = subprocess.Popen([binary, *chromium_flags(profile, size), url], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout
            while not posted.exists() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            proc.wait(10)
    return json.loads(posted.read_text()) if posted.exists() else {"error": "no report within the time limit"}


def screenshot(binary: str, url: str, size: tuple[int, int], png: Path) -> None:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        subprocess.run([binary, *chromium_flags(profile, size), "--virtual-time-budget=20000", f"--screenshot={png}", url],
                       capture_output=True, timeout=180)


def check_in_browser(engine: str, lib_js: Path, browser: str, atlases: list[dict], src: dict[str, Image.Image],
                     stage: Path, renderer: str = "CANVAS") -> list[str]:
    """Load ``atlases`` in Chromium with ``engine``'s page ("phaser" or "pixi"), then compare the
    frames, animations and drawn pixels it reports with the source images."""
    stage.mkdir(parents=True, exist_ok=True)
    shutil.copy(lib_js, stage)
    shutil.copy(HERE / f"{engine}_page.html", stage / "index.html")
    names = sorted(src)
    cell = max(max(im.size) for im in src.values()) + 4
    cols = 16
    rows = -(-len(names) // cols)
    staged = []
    for a in atlases:
        for p in (a["png"], a["json"]):
            for q in (Path(p), *Path(p).parent.glob(Path(p).stem.rsplit("-", 1)[0] + "-*" + Path(p).suffix)):
                shutil.copy(q, stage / q.name)  # pages of a multi-page sheet travel together
        # which of the engine's frame keys should show which source image
        a["source_of"] = names_by_pixels(Path(a["json"]), src) if a.get("aseprite") else {n: n for n in src}
        key_of = {v: k for k, v in a["source_of"].items()}
        staged.append({"key": a["key"], "png": Path(a["png"]).name, "json": Path(a["json"]).name,
                       "aseprite": a.get("aseprite", False), "frame_of": {n: key_of.get(n, n) for n in names}})
    manifest = {"atlases": staged, "names": names, "cell": cell, "cols": cols, "rows": rows, "renderer": renderer}
    (stage / "manifest.js").write_text("window.MANIFEST = " + json.dumps(manifest) + ";\n")
    size = (cols * cell, len(atlases) * rows * cell)
    server = serve(stage)
    url = f"http://127.0.0.1:{server.server_port}/index.html"
    tag = f"{engine} {renderer}"
    try:
        posted = run_page(browser, url, (size[0], size[1] + 200), stage / "posted.json")
        screenshot(browser, url, (size[0], size[1] + 200), stage / "screenshot.png")
    finally:
        server.shutdown()
    if "result" not in posted:
        return [f"{tag}: the page did not finish ({posted.get('error', '')[:400]})"]
    got = posted["result"]
    canvas = Image.open(io.BytesIO(base64.b64decode(posted["pixels"].split(",", 1)[1]))).convert("RGBA")
    (stage / "result.json").write_text(json.dumps(got, indent=1))
    canvas.save(stage / "canvas.png")
    version = got.get("phaser_version") or got.get("pixi_version")
    problems: list[str] = []
    premul = lambda arr: np.concatenate([arr[..., :3] * arr[..., 3:] / 255.0, arr[..., 3:]], -1)
    for band, a in enumerate(atlases):
        entry = got["atlases"][a["key"]]
        frames = {a["source_of"].get(k, k): v for k, v in entry["frames"].items()}
        found = set(frames) & set(src)
        rect_bad, px_bad = [], []
        for i, name in enumerate(names):
            x, y = (i % cols) * cell, (band * rows + i // cols) * cell
            want = Image.new("RGBA", (cell, cell))
            want.paste(src[name], (0, 0))
            diff = np.abs(premul(np.asarray(canvas.crop((x, y, x + cell, y + cell)), float))
                          - premul(np.asarray(want, float))).max(-1)
            bad = int((diff > 2).sum())  # 8-bit premultiplied colour on the way: allow rounding
            if bad:
                px_bad.append(name)
                problems.append(f"{tag} {a['key']}: {name} drawn with {bad} wrong pixels")
            if name in frames:
                f, im = frames[name], src[name]
                trim = f["trim"] and (f["trim"]["x"], f["trim"]["y"], f["trim"]["w"], f["trim"]["h"])
                if (f["real"]["w"], f["real"]["h"]) != im.size or (trim or (0, 0, *im.size)) != alpha_bbox(im):
                    rect_bad.append(name)
                    problems.append(f"{tag} {a['key']}: {name} real {f['real']} trim {f['trim']} != {im.size} {alpha_bbox(im)}")
        line = (f"{engine} {version} {got['renderer']} [{a['key']}] frames found {len(found)}/{len(src)}"
                f" (other names: {len(set(frames) - set(src))}), size/trim mismatches {len(rect_bad)},"
                f" frames drawn wrong {len(px_bad)}/{len(src)}")
        if entry.get("pages", 1) > 1:
            line += f", pages loaded {entry['pages']}"
        want_anims = a.get("animations", expected_animations(names))
        if "animations" in entry:
            anims = {k: [a["source_of"].get(n, n) for n in v["shown"]] for k, v in entry["animations"].items()}
            bad = [k for k in set(anims) | set(want_anims) if anims.get(k) != want_anims.get(k)]
            line += f", animations {len(want_anims) - len([k for k in bad if k in want_anims])}/{len(want_anims)} correct"
            for k in sorted(bad):
                problems.append(f"{tag} {a['key']}: animation {k}: got {anims.get(k)}, want {want_anims.get(k)}")
            durations = {d for v in entry["animations"].values() for d in v.get("durations", [])}
            if durations:
                line += f" (frame durations {sorted(durations)} ms)"
        if entry["missing"]:
            problems.append(f"{tag} {a['key']}: texture did not load")
        print(line)
    print(f"  screenshot: {stage / 'screenshot.png'}  canvas read back: {stage / 'canvas.png'}")
    return problems


# ----------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sprites", type=Path, default=Path("/work/shared/data/sprites-dev/items"))
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "engine_check")
    ap.add_argument("--pixi-dir", type=Path, help="folder where `npm install pixi.js` ran")
    ap.add_argument("--phaser-dir", type=Path, help="folder where `npm install phaser` ran")
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = ap.parse_args()
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    src = sources(args.sprites)
    print(f"{len(src)} source sprites, expected animations: {expected_animations(list(src))}")
    s = {}
    for fmt in ("texturepacker-hash", "texturepacker-array", "aseprite"):
        s[fmt] = make_sheet(args.sprites, out / f"{fmt}.png", fmt).with_suffix(".json")
    s["rotated"] = make_sheet(args.sprites, out / "rotated.png", "texturepacker-hash", "--rotate").with_suffix(".json")
    make_sheet(args.sprites, out / "multi.png", "texturepacker-hash", "--max-size", "256")
    multi = sorted(out.glob("multi-*.json"))
    problems: list[str] = []
    notes: list[str] = []  # what an engine cannot do by its own design, not a defect of the files

    def limitation(found: list[str], why: str) -> None:
        notes.append(f"{why}: {len(found)} check(s) fail as expected" + (f", e.g. {found[0]}" if found else " (none failed?)"))

    # An animation whose frames land on different pages cannot be a Pixi animation: each page's
    # Spritesheet only resolves its own frames, so the exporter leaves such animations out.
    page_of = {n: j.name for j in multi for n in json.loads(j.read_text())["frames"]}
    all_anims = expected_animations(list(src))
    one_page = {k: v for k, v in all_anims.items() if len({page_of[n] for n in v}) == 1}
    split = sorted(set(all_anims) - set(one_page))
    if split:
        notes.append(f"multi-page sheet ({len(multi)} pages): animations split over pages, absent by design: {split}")
    if args.pixi_dir:
        problems += check_pixi(args.pixi_dir, [s["texturepacker-hash"]], src, "hash")
        limitation(check_pixi(args.pixi_dir, [s["texturepacker-array"]], src, "array"),
                   "PixiJS reads TexturePacker JSON Hash only (it keys Array frames by index)")
        problems += check_pixi(args.pixi_dir, [s["rotated"]], src, "hash --rotate")
        problems += check_pixi(args.pixi_dir, multi, src, f"hash, {len(multi)} pages", one_page)
        if args.chromium:
            atlases = [{"key": "hash", "png": s["texturepacker-hash"].with_suffix(".png"), "json": s["texturepacker-hash"]},
                       {"key": "rotated", "png": s["rotated"].with_suffix(".png"), "json": s["rotated"]},
                       {"key": "multi", "png": multi[0].with_suffix(".png"), "json": multi[0], "animations": one_page}]
            problems += check_in_browser("pixi", args.pixi_dir / "node_modules/pixi.js/dist/pixi.min.js", args.chromium,
                                         atlases, src, out / "pixi-webgl", "WEBGL")
    if args.phaser_dir and args.chromium:
        lib = args.phaser_dir / "node_modules/phaser/dist/phaser.min.js"
        atlases = [{"key": k, "png": s[f].with_suffix(".png"), "json": s[f], "aseprite": f == "aseprite"}
                   for k, f in (("hash", "texturepacker-hash"), ("array", "texturepacker-array"), ("aseprite", "aseprite"))]
        problems += check_in_browser("phaser", lib, args.chromium, atlases, src, out / "phaser")
        problems += check_in_browser("phaser", lib, args.chromium, atlases[:1], src, out / "phaser-webgl", "WEBGL")
        # Phaser 3 keeps `rotated` but never turns such frames back (phaserjs/phaser#5012)
        rotated = [{"key": "rotated", "png": s["rotated"].with_suffix(".png"), "json": s["rotated"]}]
        limitation(check_in_browser("phaser", lib, args.chromium, rotated, src, out / "phaser-webgl-rotated", "WEBGL"),
                   "Phaser 3 does not draw frames stored rotated (--rotate)")
    print(f"\n{len(notes)} engine limitation(s):")
    for n in notes:
        print("  -", n)
    print(f"{len(problems)} problem(s)")
    for p in problems:
        print("  -", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
