"""Background removal: rembg models, a fast border key for plain/graded backgrounds, and `auto`.

Generated sprites mostly sit on a plain, near-plain or softly graded background. For those a
colour key fitted to the image border is both faster and sharper than a segmentation model:
the background is modelled per channel as a quadratic surface over (x, y), alpha is read from
each pixel's distance to that surface and refined by un-mixing edge pixels against the nearest
solid foreground colour. When the border is not well explained by such a surface (a scene, a
textured backdrop) `auto` falls back to a rembg model. Sessions are created once per model name
and reused, loaded from ``U2NET_HOME`` / rembg's cache, and never downloaded unless asked.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from asset_studio.errors import UserError

MODELS = ("u2netp", "u2net", "isnet-general-use", "isnet-anime", "birefnet-general")
METHODS = ("auto", "model", "key")

_SESSIONS: dict[str, object] = {}
_SESSIONS_LOCK = threading.Lock()


@dataclass
class RemovalOptions:
    method: str = "auto"  # auto | model | key
    model: str = "u2netp"
    alpha_matting: bool = False  # rembg's closed-form matting on the model/key mask (slow)
    defringe: bool = True  # remove the background colour mixed into edge pixels
    hard_alpha: bool = False  # 0/255 alpha only, for pixel art
    allow_download: bool = False  # let rembg fetch a missing model file

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"Unknown background method '{self.method}': use one of {', '.join(METHODS)}.")
        if self.model not in MODELS:
            raise UserError(f"Unknown background model '{self.model}': use one of {', '.join(MODELS)}.")


@dataclass
class BackgroundFit:
    """The background estimated from the image border."""

    color: np.ndarray  # H x W x 3 float32, the fitted background at every pixel
    noise: float  # robust per-channel standard deviation of the border around the fit (0-255)
    inliers: float  # fraction of border pixels the fit explains

    @property
    def plain(self) -> bool:
        """Whether the border is a plain or smoothly graded backdrop the key handles well."""
        return self.noise <= 12.0 and self.inliers >= 0.85


# --------------------------------------------------------------------------- rembg sessions


def model_file(name: str) -> str | None:
    """Path of the model's .onnx file in U2NET_HOME or rembg's cache, or None when absent."""
    cls = _session_class(name)
    return cls.resolve_existing(f"{name}.onnx")


def get_session(name: str, allow_download: bool = False):
    """The rembg session for ``name``, created on first use and reused afterwards."""
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(name)
        if session is not None:
            return session
        cls = _session_class(name)
        if model_file(name) is None and not allow_download:
            raise UserError(
                f"The background model file {name}.onnx is missing from {cls.legacy_home()} and "
                f"{cls.model_dir()}: copy it there, set U2NET_HOME to its folder, or allow the download (--download-model)."
            )
        from rembg import new_session

        try:
            session = new_session(name)
        except Exception as exc:  # a truncated or foreign .onnx file
            raise UserError(f"The background model {name} could not be loaded: {exc}.") from exc
        _SESSIONS[name] = session
        return session


def _session_class(name: str):
    if name not in MODELS:
        raise UserError(f"Unknown background model '{name}': use one of {', '.join(MODELS)}.")
    from rembg.sessions import sessions_class

    for cls in sessions_class:
        if cls.name() == name:
            return cls
    raise UserError(f"The installed rembg does not provide the model '{name}'.")


def model_alpha(rgb: np.ndarray, name: str = "u2netp", allow_download: bool = False) -> np.ndarray:
    """Alpha in [0, 1] predicted by a rembg model (the session is cached)."""
    session = get_session(name, allow_download)
    mask = session.predict(Image.fromarray(rgb))[0]
    return np.asarray(mask.convert("L"), dtype=np.float32) / 255.0


# --------------------------------------------------------------------------- border key


def _design(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Quadratic surface terms: enough for linear and radial-ish gradients, too stiff for a sprite."""
    return np.stack([np.ones_like(xs), xs, ys, xs * xs, xs * ys, ys * ys], axis=-1)


def fit_background(rgb: np.ndarray) -> BackgroundFit:
    """Fit a per-channel quadratic surface to the border pixels, ignoring what intrudes on it."""
    h, w = rgb.shape[:2]
    ring = max(2, min(h, w) // 64)
    border = np.zeros((h, w), bool)
    border[:ring] = border[-ring:] = True
    border[:, :ring] = border[:, -ring:] = True
    yy, xx = np.nonzero(border)
    xs = xx.astype(np.float32) / max(w - 1, 1) * 2 - 1
    ys = yy.astype(np.float32) / max(h - 1, 1) * 2 - 1
    a = _design(xs, ys)
    c = rgb[yy, xx].astype(np.float32)
    coef, *_ = np.linalg.lstsq(a, c, rcond=None)
    res = np.linalg.norm(c - a @ coef, axis=1)
    keep = res <= np.median(res)  # start from the better half: robust to half the border intruded
    for _ in range(5):  # then grow back every pixel the refined surface explains
        coef, *_ = np.linalg.lstsq(a[keep], c[keep], rcond=None)
        res = np.linalg.norm(c - a @ coef, axis=1)
        new_keep = res <= max(float(np.median(res[keep])) * 3.0, 6.0)
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    res_c = (c - a @ coef)[keep]
    # median absolute deviation per channel is robust to the few outliers left in `keep`
    noise = float(np.sqrt(np.mean((1.4826 * np.median(np.abs(res_c), axis=0)) ** 2))) if len(res_c) else 255.0
    gy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    gx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    gx, gy = np.broadcast_to(gx, (h, w)), np.broadcast_to(gy, (h, w))
    color = (_design(gx, gy) @ coef.astype(np.float32)).astype(np.float32)
    return BackgroundFit(color=color, noise=noise, inliers=float(keep.mean()))


def key_alpha(rgb: np.ndarray, fit: BackgroundFit, radius: int = 10) -> np.ndarray:
    """Alpha from the distance to the fitted background, with edge pixels un-mixed.

    Regions are classified on a locally averaged difference, so a pale sprite on a noisy
    backdrop still stands out from the noise: clear background, solid sprite, or the rim in
    between. Rim pixels are a mix C = a*F + (1-a)*B of the nearest solid colour F and the
    background B; projecting C-B on F-B gives a.
    """
    from scipy import ndimage

    img = rgb.astype(np.float32)
    bg = fit.color
    diff = img - bg
    noisy = fit.noise > 2.0
    # averaging k x k pixels divides independent noise by k; edges stay sharp in the un-mixing
    k = 5 if noisy else 1
    diff_k = ndimage.uniform_filter(diff, size=(k, k, 1)) if noisy else diff
    diff_3 = ndimage.uniform_filter(diff, size=(3, 3, 1)) if noisy else diff
    dist = np.linalg.norm(diff_k, axis=2)
    t_lo = max(4.2 * fit.noise / k, 6.0)  # ~99.9 % of 3-channel Gaussian noise lies below 4σ
    clear = dist < t_lo
    candidate = dist >= 1.5 * t_lo
    # a solid pixel must have solid company: lone noise spikes are not sprites
    candidate = ndimage.binary_opening(candidate, structure=np.ones((2, 2), bool)) | (
        candidate & ndimage.binary_erosion(dist >= t_lo, structure=np.ones((3, 3), bool))
    )
    alpha = candidate.astype(np.float32)
    if not clear.any() or not candidate.any():
        return alpha
    # Anti-aliased rims can be several pixels wide (upscaled art), so a pixel far from the
    # background may still be partly transparent: F comes from pixels at the plateau of their
    # neighbourhood, and only pixels near the clear background are un-mixed (pale details
    # inside the sprite stay solid).
    near_clear = ndimage.distance_transform_edt(~clear) <= radius
    peak = ndimage.maximum_filter(dist, size=7)
    interior = candidate & ((dist >= 0.85 * peak) | ~near_clear)
    if not interior.any():
        return alpha
    near, (iy, ix) = ndimage.distance_transform_edt(~interior, return_indices=True)
    band = near_clear & ~interior & (near <= radius) & (dist > t_lo * 0.5)
    if band.any():
        fb = diff_k[iy[band], ix[band]]  # F - B, averaged: the solid colour's offset
        den = (fb * fb).sum(axis=1)
        a_unmix = (diff_3[band] * fb).sum(axis=1) / np.maximum(den, 1e-6)
        # where F hardly differs from B the projection is noise: fall back to a ramp
        ramp = np.clip((dist[band] - t_lo) / (2 * t_lo), 0.0, 1.0)
        weak = den < (3.0 * fit.noise + 4.0) ** 2
        alpha[band] = np.clip(np.where(weak, ramp, a_unmix), 0.0, 1.0)
    return alpha


def unmix_colors(rgb: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Foreground colours with the background removed from partly transparent pixels.

    Solves C = a*F + (1-a)*B for F, then keeps F within the colours of the nearest solid pixel
    when a is too small for the division to be trustworthy.
    """
    from scipy import ndimage

    img = rgb.astype(np.float32)
    out = img.copy()
    edge = (alpha > 0.0) & (alpha < 0.999)
    if not edge.any():
        return rgb
    a = alpha[edge][:, None]
    f = bg[edge] + (img[edge] - bg[edge]) / np.maximum(a, 1e-3)
    solid = alpha >= 0.999
    if solid.any():
        _, (iy, ix) = ndimage.distance_transform_edt(~solid, return_indices=True)
        nearest = img[iy[edge], ix[edge]]
        f = np.where(a < 0.2, nearest, f)
    out[edge] = f
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def local_background(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Per-pixel background: the colour of the nearest clearly transparent pixel."""
    from scipy import ndimage

    clear = alpha <= 0.02
    if not clear.any():
        return np.broadcast_to(rgb.reshape(-1, 3).mean(0), rgb.shape).astype(np.float32)
    _, (iy, ix) = ndimage.distance_transform_edt(~clear, return_indices=True)
    return rgb[iy, ix].astype(np.float32)


# --------------------------------------------------------------------------- the one entry point


def remove_background(image: Image.Image, options: RemovalOptions | None = None) -> Image.Image:
    """An RGBA image of the same size with the background made transparent."""
    options = options or RemovalOptions()
    given_alpha = None
    if "A" in image.getbands() and image.getchannel("A").getextrema()[0] < 255:
        # already partly transparent: analyse it over white and keep what was cut before
        rgba = image.convert("RGBA")
        given_alpha = np.asarray(rgba.getchannel("A"), np.float32) / 255.0
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        rgb = np.asarray(flat.convert("RGB"))
    else:
        rgb = np.asarray(image.convert("RGB"))
    fit = fit_background(rgb) if options.method != "model" else None
    use_key = options.method == "key" or (options.method == "auto" and fit.plain)
    if use_key:
        alpha = key_alpha(rgb, fit)
        bg = fit.color
    else:
        alpha = model_alpha(rgb, options.model, options.allow_download)
        bg = fit.color if fit is not None and fit.plain else local_background(rgb, alpha)

    if options.alpha_matting:
        from rembg.bg import alpha_matting_cutout

        mask = Image.fromarray((alpha * 255 + 0.5).astype(np.uint8))
        try:
            cut = np.asarray(alpha_matting_cutout(Image.fromarray(rgb), mask, 240, 10, 10))
            colors, alpha = cut[..., :3], cut[..., 3].astype(np.float32) / 255.0
        except ValueError:  # no unknown region left to matte: keep the mask as it is
            colors = unmix_colors(rgb, alpha, bg) if options.defringe else rgb
    elif options.defringe:
        colors = unmix_colors(rgb, alpha, bg)
    else:
        colors = rgb

    if given_alpha is not None:
        alpha = np.minimum(alpha, given_alpha)
    if options.hard_alpha:
        alpha = (alpha >= 0.5).astype(np.float32)
    a8 = (np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(np.dstack([colors, a8]), "RGBA")


class BackgroundRemover:
    """Removes backgrounds with fixed options; the model session it needs is shared and reused."""

    def __init__(self, options: RemovalOptions | None = None):
        self.options = options or RemovalOptions()
        if self.options.method == "model":
            get_session(self.options.model, self.options.allow_download)  # fail early, once

    def __call__(self, image: Image.Image) -> Image.Image:
        return remove_background(image, self.options)
