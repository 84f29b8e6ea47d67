"""Frames in and out of video files: reading MP4/WebM/GIF/a frame folder (PyAV and Pillow),
writing the previews of an animation (GIF and animated WebP with Pillow; MP4 and WebM with PyAV).

Video files come from strangers: every failure to read one is one sentence, frame counts and
sizes are bounded, and nothing is written except the named outputs (through core/outputs).
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from asset_studio.core.job import DEFAULT_PREVIEWS, MAX_FRAMES
from asset_studio.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif")
MAX_VIDEO_BYTES = 2 * 1024**3
MAX_FRAME_PIXELS = 4096 * 4096


def probe_video(path: str | Path, max_frames: int = 0) -> tuple[int, tuple[int, int]]:
    """(frame count up to MAX_FRAMES or the limit, size of the first frame), keeping one frame in
    memory at a time: what a command needs to know before the model loads."""
    count, size = 0, (0, 0)
    for frame in iter_frames(path, max_frames):
        count, size = count + 1, size if count else frame.size
    return count, size


def read_frames(path: str | Path, max_frames: int = 0) -> list[Image.Image]:
    """The frames of a video file, an animated GIF/WebP or a folder of pictures, as RGB images
    (at most MAX_FRAMES, or MAX_FRAMES given here); one sentence for anything unreadable."""
    return list(iter_frames(path, max_frames))


def iter_frames(path: str | Path, max_frames: int = 0):
    """The frames of a video file, an animated GIF/WebP or a folder of pictures, as RGB images
    (at most MAX_FRAMES, or MAX_FRAMES given here); one sentence for anything unreadable."""
    from asset_studio.core.images import read_image
    from asset_studio.core.sheet import IMAGE_SUFFIXES, natural_key

    src = Path(path)
    limit = max_frames or MAX_FRAMES
    if src.is_dir():
        files = sorted((p for p in src.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                       key=lambda p: natural_key(p.name))
        if not files:
            raise UserError(f"The frame folder {src} holds no pictures.")
        return (read_image(p, "RGB", what=f"The frame {p.name}") for p in files[:limit])
    if not src.is_file():
        raise UserError(f"The video {src} does not exist.")
    if src.stat().st_size > MAX_VIDEO_BYTES:
        raise UserError(f"The video {src.name} is larger than {MAX_VIDEO_BYTES // 1024**3} GB.")
    if src.suffix.lower() in (".gif", ".webp", ".png", ".apng"):
        return _pillow_frames(src, limit)
    return _av_frames(src, limit)


def _pillow_frames(src: Path, limit: int):
    from PIL import ImageSequence, UnidentifiedImageError

    try:
        with Image.open(src) as im:
            if im.width * im.height > MAX_FRAME_PIXELS:
                raise UserError(f"The frames of {src.name} are {im.width}x{im.height}, larger than 4096x4096.")
            for i, frame in enumerate(ImageSequence.Iterator(im)):
                if i >= limit:
                    break
                yield frame.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"{src.name} is not a readable animation ({type(exc).__name__}).") from None


def _av_frames(src: Path, limit: int):
    import av

    count = 0
    try:
        with av.open(str(src)) as container:
            if not container.streams.video:
                raise UserError(f"{src.name} holds no video stream.")
            stream = container.streams.video[0]
            if (stream.width or 0) * (stream.height or 0) > MAX_FRAME_PIXELS:
                raise UserError(f"The frames of {src.name} are {stream.width}x{stream.height}, larger than 4096x4096.")
            for frame in container.decode(stream):
                if count >= limit:
                    break
                count += 1
                yield frame.to_image().convert("RGB")
    except av.FFmpegError as exc:  # not a video, truncated, unknown codec
        raise UserError(f"{src.name} is not a readable video ({exc.__class__.__name__}).") from None
    if not count:
        raise UserError(f"The video {src.name} has no frames.")


def video_fps(path: str | Path, default: float = 8.0) -> float:
    """The frame rate of a video file (DEFAULT for a folder, a GIF without timing or an unreadable rate)."""
    src = Path(path)
    if src.is_dir() or not src.is_file():
        return default
    if src.suffix.lower() in (".gif", ".webp", ".apng"):
        try:
            with Image.open(src) as im:
                ms = im.info.get("duration") or 0
            return round(1000 / ms, 3) if ms > 0 else default
        except OSError:
            return default
    import av

    try:
        with av.open(str(src)) as container:
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else default
    except (av.FFmpegError, IndexError):
        return default


# --- previews ----------------------------------------------------------------------------------------


def _duration_ms(fps: float) -> int:
    return max(10, round(1000 / fps))  # browsers treat GIF delays under 20 ms as 100 ms; 10 ms is GIF's unit


def gif_bytes(frames: list[Image.Image], fps: float) -> bytes:
    """An endlessly repeating GIF; transparent pixels stay transparent (GIF has one clear colour)."""
    buf = io.BytesIO()
    first, rest = frames[0], frames[1:]
    if first.mode == "RGBA":
        # disposal 2 clears each frame before the next, or a moving sprite leaves a trail
        first.save(buf, "GIF", save_all=True, append_images=rest, duration=_duration_ms(fps), loop=0,
                   disposal=2, optimize=False)
    else:
        first.save(buf, "GIF", save_all=True, append_images=rest, duration=_duration_ms(fps), loop=0)
    return buf.getvalue()


def webp_bytes(frames: list[Image.Image], fps: float) -> bytes:
    """An animated WebP: full colour and alpha, unlike GIF."""
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=_duration_ms(fps), loop=0,
                   lossless=True)
    return buf.getvalue()


def apng_bytes(frames: list[Image.Image], fps: float) -> bytes:
    """An endlessly repeating APNG: full colour and true alpha (semi-transparent edges stay soft,
    unlike GIF's one clear colour). Each frame replaces the last (disposal 1 clears the frame's
    area to transparent, blend 0 writes it as is), so a moving sprite leaves no trail."""
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=_duration_ms(fps), loop=0,
                   disposal=1, blend=0)
    return buf.getvalue()


PREVIEW_WRITERS = {"gif": gif_bytes, "apng": apng_bytes, "webp": webp_bytes}
PREVIEW_SUFFIX = {"gif": ".gif", "apng": ".apng", "webp": ".webp"}  # .apng: no gallery or sheet takes it for a still PNG


def video_bytes(frames: list[Image.Image], fps: float, container: str) -> bytes:
    """MP4 (H.264, yuv420p: plays everywhere) or WebM (VP9; with alpha when the frames have it)."""
    from fractions import Fraction

    import av

    alpha = container == "webm" and frames[0].mode == "RGBA"
    codec = {"mp4": "libx264", "webm": "libvpx-vp9"}[container]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        w, h = frames[0].size
        stream.width, stream.height = w - w % 2, h - h % 2  # 4:2:0 needs even sides
        stream.pix_fmt = "yuva420p" if alpha else "yuv420p"
        for im in frames:
            im = im.convert("RGBA" if alpha else "RGB")
            if im.size != (stream.width, stream.height):
                im = im.crop((0, 0, stream.width, stream.height))
            frame = av.VideoFrame.from_image(im)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def write_previews(frames: list[Image.Image], fps: float, base: Path, video: bool,
                   formats=DEFAULT_PREVIEWS) -> list[Path]:
    """BASE.gif, BASE.apng, BASE.webp as FORMATS asks (and BASE.mp4, BASE.webm when VIDEO),
    written as one set (beside the frame folder, never in it, so `sheet FOLDER` packs no preview)."""
    from asset_studio.core.outputs import bytes_writer, write_set

    items = [(base.with_name(base.name + PREVIEW_SUFFIX[kind]), bytes_writer(PREVIEW_WRITERS[kind](frames, fps)))
             for kind in dict.fromkeys(formats)]
    if video:
        for kind in ("mp4", "webm"):
            items.append((base.with_name(f"{base.name}.{kind}"), bytes_writer(video_bytes(frames, fps, kind))))
    return write_set(items)
