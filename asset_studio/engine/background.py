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
        if model_file(name) is None and not allow_download:
            from asset_studio.engine.rembg_models import missing_model_message

            raise UserError(missing_model_message(name))
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
    """Alpha of the sprite: what does not connect to the border through backdrop-coloured pixels.

    The backdrop is what a flood fill from the image border reaches through pixels within the
    fitted background's own noise, so a light colour enclosed by the subject (white eyes, pale
    skin, highlights) stays opaque. An enclosed backdrop-coloured pocket is a hole only when it
    shows the backdrop itself: its gradient value and, on a noisy backdrop, its noise; on a flat
    backdrop a pocket of exactly the backdrop colour is ambiguous (white eyes or a hole) and
    stays opaque (rembg's u2netp, asked instead, was right on barely half of such pockets).
    Regions are classified on a locally averaged difference on noisy backdrops, and thin
    strokes on their per-pixel difference. Rim
    pixels are a mix C = a*F + (1-a)*B of the nearest solid colour F and the background B;
    projecting C-B on F-B gives a. A sprite made only of a neutral darkening of the backdrop (a
    shadow, track marks) is read as a translucent dark overlay.
    """
    from scipy import ndimage

    img = rgb.astype(np.float32)
    bg = fit.color
    diff = img - bg
    noisy = fit.noise > 2.0
    # averaging k x k pixels divides independent noise by k; edges stay sharp in the un-mixing
    k = 5 if noisy else 1
    diff_k = ndimage.uniform_filter(diff, size=(k, k, 1)) if noisy else diff
    dist = np.linalg.norm(diff_k, axis=2)
    dist_px = np.linalg.norm(diff, axis=2) if noisy else dist
    t_lo = max(4.2 * fit.noise / k, 6.0)  # ~99.9 % of 3-channel Gaussian noise lies below 4σ
    t_px = max(6.5 * fit.noise, 1.5 * t_lo)  # one pixel this far off is not noise: a thin stroke
    clear = (dist < t_lo) & (dist_px < t_px)
    strong = dist >= 1.5 * t_lo
    if noisy:  # a solid pixel must have solid company: lone noise spikes are not sprites
        strong = ndimage.binary_opening(strong, structure=np.ones((2, 2), bool))
        lines = dist_px >= t_px
        lab, n = ndimage.label(lines, structure=np.ones((3, 3), bool))
        if n:
            sizes = np.bincount(lab.ravel(), minlength=n + 1)
            strong |= (sizes >= 4)[lab] & lines
    # the backdrop: clear pixels 4-connected to the border (a diagonal gap in an outline is no leak)
    lab, n = ndimage.label(clear)
    border_labels = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    outside = np.zeros(n + 1, bool)
    outside[border_labels] = True
    outside[0] = False
    backdrop = outside[lab]
    # the sprite: what the backdrop does not reach, kept where it holds real evidence
    fg_lab, fg_n = ndimage.label(~backdrop, structure=np.ones((3, 3), bool))
    if fg_n == 0:
        return np.zeros(rgb.shape[:2], np.float32)
    has_strong = np.zeros(fg_n + 1, bool)
    has_strong[np.unique(fg_lab[strong])] = True
    has_strong[0] = False
    fg = has_strong[fg_lab]
    if not fg.any() or not backdrop.any():
        return fg.astype(np.float32)
    # pockets: clear regions enclosed by the sprite
    pocket_ids = np.unique(lab[fg & clear])
    boxes = ndimage.find_objects(lab)
    h, w = fg.shape
    graded = float(np.ptp(bg.reshape(-1, 3), axis=0).max()) >= 4.0  # the backdrop visibly changes
    for pid in pocket_ids[pocket_ids > 0]:
        sy, sx = boxes[pid - 1]
        box = (slice(max(sy.start - 3, 0), min(sy.stop + 3, h)), slice(max(sx.start - 3, 0), min(sx.stop + 3, w)))
        pocket = lab[box] == pid
        if _is_hole(pocket, diff[box], fit, graded):
            fg[box] &= ~pocket
    if not fg.any():
        return np.zeros(rgb.shape[:2], np.float32)
    # everything below happens near the sprite: crop to it (the rims reach `radius` beyond it)
    ys, xs = np.nonzero(fg)
    pad = radius + 4
    crop = (slice(max(ys.min() - pad, 0), ys.max() + pad + 1), slice(max(xs.min() - pad, 0), xs.max() + pad + 1))
    alpha = np.zeros(rgb.shape[:2], np.float32)
    faint = _faint_overlay(img[crop], bg[crop], fg[crop], fit)
    if faint is not None:
        alpha[crop] = faint
        return alpha
    alpha[crop] = _rim_alpha(fg[crop], dist[crop], diff[crop], diff_k[crop], fit, t_lo, radius)
    _thin_strokes(alpha[crop], diff[crop], dist_px[crop], t_px, fit.noise)
    return alpha


def _rim_alpha(
    fg: np.ndarray, dist: np.ndarray, diff: np.ndarray, diff_k: np.ndarray, fit: BackgroundFit, t_lo: float, radius: int
) -> np.ndarray:
    """Alpha of the sprite mask with its anti-aliased rim un-mixed against the backdrop.

    Anti-aliased rims can be several pixels wide (upscaled art), so a pixel far from the
    background may still be partly transparent: F comes from pixels at the plateau of their
    neighbourhood, and only pixels the backdrop reaches without crossing such a plateau are
    un-mixed (the rim of an enclosed white eye is not an edge of the sprite).
    """
    from scipy import ndimage

    clear_bg = ~fg
    alpha = fg.astype(np.float32)
    depth = ndimage.distance_transform_edt(fg)  # distance to the backdrop
    near_clear = depth <= radius
    peak = ndimage.maximum_filter(dist, size=7)
    # a flat patch is paint too, even when a stronger colour is near: a pale stem under a red
    # cap has the cap's hue, but a rim ramps while paint stays level
    level = ndimage.maximum_filter(dist, size=3) - ndimage.minimum_filter(dist, size=3)
    flat = level <= np.maximum(0.1 * dist, 3.0 + fit.noise)
    interior = fg & ((dist >= 0.85 * peak) | ~near_clear | flat) & (dist >= 1.5 * t_lo)
    if not interior.any():
        return alpha
    open_lab, open_n = ndimage.label(~interior)
    reached = np.zeros(open_n + 1, bool)
    reached[np.unique(open_lab[clear_bg])] = True
    reached[0] = False
    near, (iy, ix) = ndimage.distance_transform_edt(~interior, return_indices=True)
    # a rim pixel lies between the backdrop and its solid colour; one deeper than that solid
    # pixel is paint behind an outline (a pale body), not a mix with the backdrop
    band = reached[open_lab] & near_clear & (near <= radius) & (dist > t_lo * 0.5) & (depth <= depth[iy, ix])
    if band.any():
        fb = diff_k[iy[band], ix[band]]  # F - B, averaged: the solid colour's offset
        den = (fb * fb).sum(axis=1)
        # against a strong F one pixel's own noise is small (σ/|F-B|); a weak F needs the
        # 3 x 3 average, which would smear a dark outline into the backdrop beside it
        if fit.noise > 2.0:
            diff_3 = ndimage.uniform_filter(diff, size=(3, 3, 1))
            c = np.where((den >= (10.0 * fit.noise) ** 2)[:, None], diff[band], diff_3[band])
        else:
            c = diff[band]
        a_unmix = (c * fb).sum(axis=1) / np.maximum(den, 1e-6)
        # where F hardly differs from B the projection is noise: fall back to a ramp
        ramp = np.clip((dist[band] - t_lo) / (2 * t_lo), 0.0, 1.0)
        weak = den < (3.0 * fit.noise + 4.0) ** 2
        a_band = np.clip(np.where(weak, ramp, a_unmix), 0.0, 1.0)
        # a rim pixel is a mix of F and B; one that is not (between a pale fill and its
        # outline) is paint and stays solid
        resid = np.linalg.norm(c - np.clip(a_unmix, 0.0, 1.0)[:, None] * fb, axis=1)
        mixed = resid <= np.maximum(5.0 * fit.noise + 3.0, 0.5 * np.linalg.norm(c, axis=1))
        if fit.noise > 2.0:
            # one pixel's noise hides its hue; the 3 x 3 mean (noise σ/3) must point from B
            # towards F, or it is pale paint of another hue (a stem under a red cap)
            c3 = diff_3[band]
            n3 = np.linalg.norm(c3, axis=1)
            cos = (c3 * fb).sum(axis=1) / np.maximum(n3 * np.sqrt(den), 1e-6)
            mixed &= ~((n3 > np.sqrt(3.0) * fit.noise + 2.0) & (cos < 0.7))
        mixed |= weak
        alpha[band] = np.where(mixed, a_band, 1.0)
        # coverage only grows inward: a rim pixel behind solid ones is paint of a colour that
        # happens to lie between F and B (a near-white highlight along a yellow facet)
        ring = np.ceil(depth).astype(np.int32)
        for level in range(2, radius + 2):
            here = band & (ring == level)
            if not here.any():
                continue
            shallower = np.where((ring < level) & fg, alpha, 0.0)
            floor = ndimage.maximum_filter(shallower, size=3)
            alpha[here] = np.maximum(alpha[here], floor[here])
    return alpha


# Paint at least this wide is solid; narrower is a stroke re-read from its own pixels. A 2 px
# diagonal laser reads 3 px wide at the noise threshold, and a 3 x 3 opening kept parts of it as paint.
SOLID_K = 4


def _thin_strokes(alpha: np.ndarray, diff: np.ndarray, dist_px: np.ndarray, t_px: float, noise: float) -> None:
    """Re-read 1-2 px strokes from their own pixels (in place).

    The k x k average that beats a noisy backdrop smears a thin stroke over k pixels, and a
    stroke's nearest "solid" pixel is rarely fully covered; a stroke stands far above the noise,
    so each pixel beside it is un-mixed against the colour of the stroke's strongest pixels.
    """
    from scipy import ndimage

    lines = dist_px >= t_px
    solid = ndimage.binary_opening(lines, structure=np.ones((SOLID_K, SOLID_K), bool))
    thin = lines & ~ndimage.binary_dilation(solid, iterations=2)
    tlab, tn = ndimage.label(thin, structure=np.ones((3, 3), bool))
    if tn == 0:
        return
    thin &= (np.bincount(tlab.ravel(), minlength=tn + 1) >= 6)[tlab]  # a stroke, not a noise speck
    if not thin.any():
        return
    zone = ndimage.binary_dilation(thin, iterations=3) & ~ndimage.binary_dilation(solid, iterations=1)
    # only the backdrop side of a stroke is re-read: paint a thin outline encloses (a pale body,
    # skin close to the backdrop) and the outline pixels bordering it keep their alpha
    lab, n = ndimage.label(~lines)
    outside_ids = np.zeros(n + 1, bool)
    outside_ids[np.unique(lab[alpha <= 0.0])] = True
    outside_ids[0] = False
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    outside_ids |= sizes < 30  # a sliver where strokes cross encloses no paint worth keeping
    outside_ids[0] = False
    outside = outside_ids[lab]
    enclosed = ~lines & ~outside
    zone &= (outside & ~lines) | (lines & ~ndimage.binary_dilation(enclosed, structure=np.ones((3, 3), bool)))
    # a 1-2 px stroke and the smear around it lie within 3 px of the backdrop on both sides
    zone &= ndimage.distance_transform_edt(alpha > 0.0) <= 3.0
    h, w = dist_px.shape
    best, fb = np.zeros((h, w), np.float32), np.zeros_like(diff)
    pad_d = np.pad(dist_px, 1)
    pad_c = np.pad(diff, ((1, 1), (1, 1), (0, 0)))
    for dy in range(3):  # the colour of the strongest pixel in each 3 x 3 neighbourhood
        for dx in range(3):
            d = pad_d[dy : dy + h, dx : dx + w]
            take = d > best
            best[take] = d[take]
            fb[take] = pad_c[dy : dy + h, dx : dx + w][take]
    # a 1 px stroke is rarely fully covered anywhere, so its colour comes from its strongest
    # pixels as a whole (a laser is one colour), not from the nearest, partly covered one
    slab, sn = ndimage.label(lines, structure=np.ones((3, 3), bool))
    colours = np.zeros((sn + 1, 3), np.float32)
    boxes = ndimage.find_objects(slab)
    for i in np.unique(slab[thin]):  # only strokes: noise specks and solid parts need no colour
        idx = boxes[i - 1]
        part = slab[idx] == i
        d, c_part = dist_px[idx][part], diff[idx][part]
        top = d >= np.percentile(d, 80 if noise > 2.0 else 97)
        colours[i] = c_part[top].mean(axis=0)
    _, (ny, nx) = ndimage.distance_transform_edt(~lines, return_indices=True)
    stroke_colour = colours[slab[ny, nx]]
    fb = np.where((np.linalg.norm(stroke_colour, axis=-1) > best)[..., None], stroke_colour, fb)
    f, c = fb[zone], diff[zone]
    a = np.clip((c * f).sum(axis=1) / np.maximum((f * f).sum(axis=1), 1e-6), 0.0, 1.0)
    # only a pixel that is a mix of that stroke and the backdrop is re-read: paint beside a
    # thin outline (a white body inside it) is not, and keeps its alpha
    near_stroke = best[zone] >= t_px
    tol = max(noise * 4.0, 6.0)  # the noise, or 8-bit rounding on a clean backdrop
    mix = (np.linalg.norm(c - a[:, None] * f, axis=1) <= tol) & near_stroke
    # beside a stroke but not next to its core: backdrop the average smeared over, unless painted
    smeared = ~near_stroke & (np.linalg.norm(c, axis=1) <= tol)
    alpha[zone] = np.where(mix, a, np.where(smeared, 0.0, alpha[zone]))


def _is_hole(pocket: np.ndarray, diff: np.ndarray, fit: BackgroundFit, graded: bool) -> bool:
    """Whether an enclosed backdrop-coloured pocket shows the backdrop (a hole) or is the sprite."""
    from scipy import ndimage

    core = ndimage.binary_erosion(pocket, iterations=2)
    if core.sum() < 9:
        core = pocket
    d = diff[core]
    n = len(d)
    offset = float(np.linalg.norm(d.mean(axis=0)))
    # the mean of n backdrop pixels lies within a few σ/√n of the fit
    if offset > max(3.0, 4.0 * fit.noise / np.sqrt(n)):
        return False
    if fit.noise > 2.0:  # a flat fill inside a noisy backdrop is paint, the backdrop's noise a hole
        spread = float(np.sqrt(np.mean(d.var(axis=0))))
        return spread >= 0.6 * fit.noise
    if graded:
        return True  # paint would not follow a visible gradient this closely
    # flat backdrop, flat pocket: white eyes and a hole look the same, and eyes are commoner
    return False


def _faint_overlay(img: np.ndarray, bg: np.ndarray, fg: np.ndarray, fit: BackgroundFit) -> np.ndarray | None:
    """Alpha of a sprite that is only a neutral darkening of the backdrop (alpha < 0.5 everywhere), else None.

    One composite cannot tell a translucent overlay from an opaque pale colour; a sprite that
    is nowhere darker than half the backdrop and keeps the backdrop's hue everywhere is read as
    black at partial alpha, the common case of shadows, track marks and smoke.
    """
    from scipy import ndimage

    ratio = img / np.maximum(bg, 1.0)
    k = 5 if fit.noise > 2.0 else 1
    if k > 1:  # noise makes the ratio jitter: its local mean is the honest read
        ratio = ndimage.uniform_filter(ratio, size=(k, k, 1))
    r = ratio[fg]
    s = r.mean(axis=1)
    slack = 0.01 + 2.0 * fit.noise / k / 255.0  # 8-bit rounding plus the averaged noise
    # nowhere darker than half the backdrop, never lighter than it, and darker somewhere for real
    if s.min() < 0.5 or np.percentile(s, 99) > 1.0 + 2 * slack or np.percentile(s, 50) > 1.0 - 4 * slack:
        return None
    hue = np.abs(r - s[:, None]).max(axis=1)
    if np.percentile(hue, 95) > slack:  # a tinted or coloured sprite is paint, not a shadow
        return None
    alpha = np.zeros(img.shape[:2], np.float32)
    # the values come from each pixel (its three channels average the noise down): a local
    # mean would bleed the marks into the backdrop beside them
    a = 1.0 - (img[fg] / np.maximum(bg[fg], 1.0)).mean(axis=1)
    alpha[fg] = np.where(a > 3.0 * fit.noise / np.sqrt(3.0) / 255.0 + 0.01, np.clip(a, 0.0, 1.0), 0.0)
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
