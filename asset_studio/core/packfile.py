"""`.stylepack` files: a style pack folder as one zip, with a manifest of every file's sha256.

    manifest.json   {"format": "asset-studio.stylepack", "format_version": 1, "id": ..., "version": ...,
                     "files": {"style.toml": {"sha256": ..., "size": ...}, ...}}
    style.toml
    loras/….safetensors, preview.png, references/….png, …

A .stylepack comes from strangers, so import checks everything before it writes anything:
the manifest and every hash, the style.toml schema, safe relative names (no absolute paths, no
'..', no links, no duplicates), allowed file types only (pickle weights refused by name),
safetensors headers, per-file and total size limits and the compression ratio (zip bombs).
Only then is the pack extracted into a temporary folder beside its destination and renamed
into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import unicodedata
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from asset_studio.core.model_files import is_pickle
from asset_studio.core.safetensors_header import read_header
from asset_studio.core.stylepack import (
    ID_PATTERN, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, STYLE_FILE, StylePack, check_pack_path, find_style, load_stylepack,
    pack_files_named, parse_stylepack, parse_stylepack_text, style_dirs, user_styles_dir,
)
from asset_studio.errors import UserError

FORMAT = "asset-studio.stylepack"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SUFFIX = ".stylepack"
ALLOWED_SUFFIXES = (".toml", ".safetensors", ".png", ".jpg", ".jpeg", ".webp", ".txt", ".md", ".json")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAGIC = {".png": (b"\x89PNG\r\n\x1a\n",), ".jpg": (b"\xff\xd8\xff",), ".jpeg": (b"\xff\xd8\xff",)}
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Limits:
    """What an imported pack may hold. Generous for real LoRAs, small enough to stop abuse."""

    max_file_bytes: int = 2 * 1024**3  # an SDXL LoRA at high rank is under 1 GiB
    max_total_bytes: int = 4 * 1024**3
    max_text_bytes: int = 1024**2  # style.toml, manifest.json, notes
    max_image_bytes: int = MAX_IMAGE_BYTES  # previews and character references
    max_image_side: int = MAX_IMAGE_SIDE  # pixels per side: a small PNG can decode to gigabytes
    max_files: int = 256
    max_ratio: float = 100.0  # uncompressed / compressed, for entries above ratio_floor
    ratio_floor: int = 1024**2  # small files may compress well legitimately


@dataclass
class ImportResult:
    pack: StylePack
    folder: Path
    renamed_from: str | None = None  # the original id when kept side by side
    replaced: bool = False


# --- export --------------------------------------------------------------------------------


def _pack_files(folder: Path) -> list[str]:
    """Relative names of the files to ship; links and unsafe files are refused, dotfiles skipped."""
    names = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if any(part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
            continue
        if path.is_symlink():
            raise UserError(f"The pack folder holds a link ({rel}); a style pack may hold only plain files.")
        if path.is_dir():
            continue
        _check_suffix(rel)
        if check_pack_path(rel):
            raise UserError(f"The pack folder holds a file with an unsafe name ({rel}).")
        names.append(rel)
    return names


def is_stylepack_file(path: Path, pack_id: str | None = None) -> bool:
    """Whether PATH is a .stylepack that Asset Studio wrote (a zip whose manifest says so), of
    the pack PACK_ID when given."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(MANIFEST)
            if info.file_size > Limits().max_text_bytes:
                return False
            manifest = json.loads(zf.read(info).decode("utf-8"))
    except (OSError, KeyError, ValueError, RecursionError, zipfile.BadZipFile, zlib.error):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT \
        and (pack_id is None or manifest.get("id") == pack_id)


def export_stylepack(style: str | Path | StylePack, out: str | Path, force: bool = False) -> Path:
    """Write ``style`` (an id, a folder or a loaded pack) as a single .stylepack file.

    An existing file at ``out`` is replaced only when it is a style pack (or with ``force``)."""
    from asset_studio.core.outputs import check_targets, write_file

    pack = style if isinstance(style, StylePack) else find_style(style)
    folder = Path(pack.folder)
    pack = load_stylepack(folder)  # export only what would import again
    out = Path(out)
    if out.suffix != SUFFIX:
        out = out.with_name(out.name + SUFFIX)
    files = {}
    for rel in _pack_files(folder):
        data = (folder / rel).read_bytes()
        files[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "id": pack.id, "version": pack.version,
                "files": files}
    # Only an earlier export of this same pack is replaced without --force.
    check_targets([out], [folder / rel for rel in files], force, owned=lambda p: is_stylepack_file(p, pack.id))

    def write(f) -> None:
        with zipfile.ZipFile(f, "w") as zf:
            _write_entry(zf, MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
            for rel in files:
                _write_entry(zf, rel, (folder / rel).read_bytes())

    return write_file(out, write)


def _write_entry(zf: zipfile.ZipFile, name: str, data: bytes):
    # A fixed timestamp and mode make the same pack give the same file.
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    dense = name.lower().endswith((".png", ".jpg", ".jpeg", ".webp"))
    info.compress_type = zipfile.ZIP_STORED if dense else zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


# --- import --------------------------------------------------------------------------------


def _check_suffix(name: str):
    lower = name.lower()
    if is_pickle(lower):
        raise UserError(
            f"The pack contains {name}, a pickle file ({Path(lower).suffix}); pickle weights can run code "
            "when loaded, so style packs accept only .safetensors weights."
        )
    if not lower.endswith(ALLOWED_SUFFIXES):
        raise UserError(
            f"The pack contains {name}, a file type style packs may not hold; allowed: "
            + " ".join(ALLOWED_SUFFIXES) + "."
        )


def _check_entry(info: zipfile.ZipInfo, limits: Limits):
    name = info.filename
    shown = name[:120].encode("ascii", "backslashreplace").decode()
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise UserError(f"The pack contains an absolute path ({shown}); files must stay inside the pack.")
    if ".." in re.split(r"[/\\]", name):
        raise UserError(f"The pack contains a path that leaves the pack ({shown}).")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UserError(f"The pack contains a link ({shown}); a style pack may hold only plain files.")
    kind = stat.S_IFMT(mode)  # 0 when the zip tool stored no file type (Windows tools, Python's writestr)
    if info.is_dir():
        if kind and kind != stat.S_IFDIR:
            raise UserError(f"The pack contains {shown}, which is not a plain file.")
        if check_pack_path(name.rstrip("/")):
            raise UserError(f"The pack contains an unsafe name ({shown}).")
        return
    if kind and kind != stat.S_IFREG:
        raise UserError(f"The pack contains {shown}, which is not a plain file.")
    problem = check_pack_path(name)
    if problem or any(ord(c) < 32 for c in name):
        raise UserError(f"The pack contains an unsafe name ({shown}).")
    if info.flag_bits & 0x1:
        raise UserError(f"The pack contains an encrypted file ({shown}).")
    _check_suffix(name)
    lower = name.lower()
    limit = limits.max_file_bytes if lower.endswith(".safetensors") else \
        limits.max_image_bytes if lower.endswith((".png", ".jpg", ".jpeg", ".webp")) else limits.max_text_bytes
    if info.file_size > limit:
        raise UserError(f"The pack contains {shown} of {info.file_size:,} bytes, over the limit of {limit:,} bytes.")
    if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        raise UserError(
            f"The pack contains {shown}, compressed more than {limits.max_ratio:g} to 1: "
            "refused as a possible zip bomb."
        )


def _read_limited(zf: zipfile.ZipFile, info: zipfile.ZipInfo, sink=None) -> tuple[str, int, bytes]:
    """Stream an entry: its sha256, its real size, and its first bytes. Never trusts the header size."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with zf.open(info) as stream:
            while True:
                block = stream.read(1 << 20)
                if not block:
                    break
                size += len(block)
                if size > info.file_size:
                    raise UserError(f"The pack's entry {info.filename} is larger than it declares: refused.")
                if len(head) < 64:
                    head += block[: 64 - len(head)]
                digest.update(block)
                if sink is not None:
                    sink.write(block)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise UserError(f"The pack's entry {info.filename} is damaged ({exc}).") from None
    return digest.hexdigest(), size, head


def _check_image(zf: zipfile.ZipFile, info: zipfile.ZipInfo, rel: str, limits: Limits) -> None:
    """Refuse a preview whose pixel size is absurd (a decompression bomb) before anyone shows it."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(zf.read(info))) as im:  # reads the header only
            w, h = im.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, zipfile.BadZipFile, zlib.error):
        raise UserError(f"The pack's file {rel} is not a readable image.") from None
    if max(w, h) > limits.max_image_side:
        raise UserError(
            f"The pack's image {rel} is {w}x{h} pixels, over the limit of {limits.max_image_side} pixels per side."
        )


def _read_manifest(zf: zipfile.ZipFile, limits: Limits) -> dict:
    try:
        info = zf.getinfo(MANIFEST)
    except KeyError:
        raise UserError(f"The file is not a style pack: it has no {MANIFEST}.") from None
    if info.file_size > limits.max_text_bytes:
        raise UserError(f"The pack's {MANIFEST} is larger than {limits.max_text_bytes:,} bytes.")
    try:
        manifest = json.loads(zf.read(info).decode("utf-8"))
    except (ValueError, RecursionError, zipfile.BadZipFile, zlib.error):
        # ValueError: bad UTF-8 or JSON, or an integer of thousands of digits; RecursionError: deep nesting
        raise UserError(f"The pack's {MANIFEST} is not valid JSON.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"The pack's {MANIFEST} is not an Asset Studio style pack manifest.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"The pack's {MANIFEST}: format_version {manifest.get('format_version')!r} is not supported "
            f"(this Asset Studio reads version {FORMAT_VERSION})."
        )
    if not isinstance(manifest.get("id"), str) or not ID_PATTERN.fullmatch(manifest["id"]):
        raise UserError(f"The pack's {MANIFEST}: id must be a valid style id.")
    if not isinstance(manifest.get("version"), str):
        raise UserError(f"The pack's {MANIFEST}: version must be a string.")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise UserError(f"The pack's {MANIFEST}: files must list the pack's files.")
    for rel, entry in files.items():
        ok = isinstance(entry, dict) and isinstance(entry.get("sha256"), str) \
            and _SHA256.fullmatch(entry["sha256"]) and isinstance(entry.get("size"), int) \
            and not isinstance(entry.get("size"), bool) and entry["size"] >= 0 and set(entry) == {"sha256", "size"}
        if not ok:
            raise UserError(f"The pack's {MANIFEST}: files.{rel[:80]} must have exactly a sha256 and a size.")
    return manifest


def inspect_stylepack(path: str | Path, limits: Limits = Limits()) -> tuple[StylePack, dict]:
    """Validate a .stylepack completely without writing anything; returns its pack and manifest."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"The file {path} does not exist.")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path.name} is not a .stylepack file (not a zip archive).")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path.name} is a damaged .stylepack file ({exc}).") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_files + 1:
            raise UserError(f"The pack holds {len(infos)} entries, more than the limit of {limits.max_files}.")
        seen: set[str] = set()
        total = 0
        for info in infos:
            _check_entry(info, limits)
            # macOS and Windows file systems fold case and Unicode normalisation: é and e+◌́ clash too.
            key = unicodedata.normalize("NFC", info.filename.rstrip("/")).casefold()
            if key in seen:
                raise UserError(f"The pack contains {info.filename} twice.")
            seen.add(key)
            total += info.file_size
        if total > limits.max_total_bytes:
            raise UserError(f"The pack unpacks to {total:,} bytes, over the limit of {limits.max_total_bytes:,}.")

        manifest = _read_manifest(zf, limits)
        files = manifest["files"]
        entries = {i.filename: i for i in infos if not i.is_dir() and i.filename != MANIFEST}
        for rel in files:
            if rel not in entries:
                raise UserError(f"The pack's manifest lists {rel[:120]}, which the file does not contain.")
        for rel in entries:
            if rel not in files:
                raise UserError(f"The pack contains {rel}, which its manifest does not list.")
        folded = {unicodedata.normalize("NFC", rel).casefold() for rel in entries}
        for rel in entries:
            parts = unicodedata.normalize("NFC", rel).casefold().split("/")
            if any("/".join(parts[:i]) in folded for i in range(1, len(parts))):
                raise UserError(f"The pack contains {rel}, inside a name that is also a file.")
        if STYLE_FILE not in entries:
            raise UserError(f"The pack has no {STYLE_FILE}.")

        for rel, info in entries.items():
            digest, size, head = _read_limited(zf, info)
            if size != files[rel]["size"] or digest != files[rel]["sha256"]:
                raise UserError(f"The pack's file {rel} does not match the sha256 in its manifest: refused.")
            suffix = Path(rel.lower()).suffix
            if suffix in _MAGIC and not head.startswith(_MAGIC[suffix]):
                raise UserError(f"The pack's file {rel} is not a {suffix[1:].upper()} image.")
            if suffix == ".webp" and not (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
                raise UserError(f"The pack's file {rel} is not a WEBP image.")
            if suffix in (".png", ".jpg", ".jpeg", ".webp"):
                _check_image(zf, info, rel, limits)
            if suffix == ".safetensors":
                with zf.open(info) as stream:
                    read_header(stream, size, rel)

        try:
            text = zf.read(STYLE_FILE).decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"The pack's {STYLE_FILE} is not UTF-8 text.") from None
        pack = parse_stylepack_text(text)
        if pack.id != manifest["id"]:
            raise UserError(f"The pack's manifest id '{manifest['id']}' differs from its {STYLE_FILE} id '{pack.id}'.")
        for key, rel in pack_files_named(pack):
            if rel not in entries:
                raise UserError(f"{STYLE_FILE}: {key} names {rel}, which is not in the pack.")
    return pack, manifest


def _user_folder_of(pack_id: str) -> Path | None:
    base = user_styles_dir()
    if (base / pack_id / STYLE_FILE).is_file():
        return base / pack_id
    if base.is_dir():
        for sub in base.iterdir():
            if sub.name.startswith("."):  # our own temporary folders
                continue
            try:
                if (sub / STYLE_FILE).is_file() and load_stylepack(sub).id == pack_id:
                    return sub
            except UserError:
                continue
    return None


def _id_taken(pack_id: str) -> bool:
    if any((base / pack_id).exists() for base in style_dirs()):
        return True
    try:
        find_style(pack_id)
    except UserError:
        return False
    return True


_WORK_DIR = re.compile(r"^\.(?P<kind>import|replaced)-(?P<pid>\d+)-[0-9a-f]+(?:-(?P<name>.+))?$")


def _sweep_work_dirs(dest: Path) -> None:
    """Clean up after an import that was killed: drop its half-extracted folder, and put back an
    installed pack it had moved aside but not yet replaced."""
    from asset_studio.core.outputs import _alive

    try:
        names = os.listdir(dest)
    except OSError:
        return
    for name in names:
        m = _WORK_DIR.match(name)
        if not m or int(m.group("pid")) == os.getpid() or _alive(int(m.group("pid"))):
            continue
        if m.group("kind") == "replaced" and m.group("name") and not (dest / m.group("name")).exists():
            os.replace(dest / name, dest / m.group("name"))
        else:
            shutil.rmtree(dest / name, ignore_errors=True)


def _install(path, pack, manifest, original: str, new_id: str, replace: bool, dest: Path) -> tuple[Path, bool]:
    """Extract into a hidden folder beside the destination (each file fsynced), then rename into place."""
    dest.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:10]}"
    tmp = dest / f".import-{token}"
    old = None
    try:
        tmp.mkdir()
        with zipfile.ZipFile(path) as zf:
            for rel, expected in manifest["files"].items():
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "xb") as sink:
                    digest, size, _ = _read_limited(zf, zf.getinfo(rel), sink)
                    sink.flush()
                    os.fsync(sink.fileno())
                if digest != expected["sha256"]:  # the archive changed under us
                    raise UserError(f"The pack's file {rel} changed while it was imported: refused.")
        if new_id != original:
            import tomli_w

            raw = pack.to_toml_dict()
            raw["id"] = new_id
            raw["name"] = f"{pack.name[:90]} ({new_id.rsplit('-', 1)[1]})"
            parse_stylepack(raw)
            from asset_studio.core.outputs import text_writer, write_file

            (tmp / STYLE_FILE).unlink()
            write_file(tmp / STYLE_FILE, text_writer(tomli_w.dumps(raw)))
        replaced = replace and _id_taken(new_id)
        existing = _user_folder_of(new_id) if replace else None
        final = existing or dest / new_id
        if existing is not None:
            # the old pack's name rides along, so a killed import can put it back (_sweep_work_dirs)
            old = dest / f".replaced-{token}-{existing.name}"
            os.replace(existing, old)
        elif final.exists():
            raise UserError(f"{final} already exists and is not a style pack; move it away and import again.")
        try:
            os.replace(tmp, final)
        except OSError:
            if existing is not None:
                os.replace(old, existing)  # put the old pack back
                old = None
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return final, replaced


def import_stylepack(path: str | Path, replace: bool = False, limits: Limits = Limits()) -> ImportResult:
    """Install a .stylepack into the user's styles folder, after checking all of it.

    An installed pack with the same id is kept: the new one is installed beside it with a
    suffixed id (pixel-art-2), unless ``replace`` is true.
    """
    pack, manifest = inspect_stylepack(path, limits)  # nothing is written before this returns
    _sweep_work_dirs(user_styles_dir())  # a killed import's leftovers, before ids are counted

    original = pack.id
    new_id = original
    if _id_taken(original) and not replace:
        n = 2
        while _id_taken(f"{original[:60]}-{n}"):
            n += 1
        new_id = f"{original[:60]}-{n}"

    dest = user_styles_dir()
    try:
        final, replaced = _install(path, pack, manifest, original, new_id, replace, dest)
    except OSError as exc:  # a full disk, a read-only or forbidden folder: the installed packs are untouched
        from asset_studio.errors import describe_os_error

        raise UserError(describe_os_error(exc, dest / new_id)) from None
    return ImportResult(
        pack=load_stylepack(final),
        folder=final,
        renamed_from=original if new_id != original else None,
        replaced=replaced,
    )
