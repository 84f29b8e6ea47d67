"""What a LoRA file holds, read from its safetensors header alone (no torch).

LoRAs come in several layouts: kohya / AUTOMATIC1111 (`lora_unet_…` / `lora_te_…` with
`.lora_down` / `.lora_up` / `.alpha`), diffusers / peft (`unet.…lora_A.weight`), LyCORIS LoHa
(`.hada_w1_a` …) and LoKr (`.lokr_w1` …), each possibly with DoRA magnitudes. parse_lora_file
groups a file's tensors into modules (one per layer of the model it was trained on) with the
tensor keys of each part, so the engine can turn every layout into the same per-layer deltas and
`asset-studio lora inspect` can describe a file without loading it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asset_studio.core.safetensors_header import SafetensorsHeader, read_header_file
from asset_studio.errors import UserError

MAX_LORA_BYTES = 2 * 1024**3

COMPONENT_LABELS = {"unet": "UNet", "text_encoder": "text encoder", "text_encoder_2": "text encoder 2"}

# Key prefix -> (component, naming). kohya names are the module path with "_" for "."; the
# diffusers / peft names keep the dots.
_PREFIXES = (
    ("lora_unet_", "unet", "kohya"),
    ("lora_te1_", "text_encoder", "kohya"),
    ("lora_te2_", "text_encoder_2", "kohya"),
    ("lora_te_", "text_encoder", "kohya"),
    ("unet.", "unet", "dotted"),
    ("text_encoder_2.", "text_encoder_2", "dotted"),
    ("text_encoder.", "text_encoder", "dotted"),
    ("base_model.model.", "unet", "dotted"),  # peft's own save of a UNet adapter
)

# Key suffix -> (kind, part). Longest suffixes first, so ".lora.down.weight" wins over ".down.weight".
_SUFFIXES = (
    (".lora_linear_layer.down.weight", "lora", "down"),
    (".lora_linear_layer.up.weight", "lora", "up"),
    (".lora_magnitude_vector.weight", "lora", "magnitude"),
    (".lora_magnitude_vector", "lora", "magnitude"),
    (".lora_down.weight", "lora", "down"),
    (".lora_up.weight", "lora", "up"),
    (".lora_mid.weight", "lora", "mid"),
    (".lora.down.weight", "lora", "down"),
    (".lora.up.weight", "lora", "up"),
    ("_lora.down.weight", "lora", "down"),  # old diffusers attention processors: to_q_lora.down.weight
    ("_lora.up.weight", "lora", "up"),
    (".lora_A.weight", "lora", "down"),
    (".lora_B.weight", "lora", "up"),
    (".hada_w1_a", "loha", "w1_a"),
    (".hada_w1_b", "loha", "w1_b"),
    (".hada_w2_a", "loha", "w2_a"),
    (".hada_w2_b", "loha", "w2_b"),
    (".hada_t1", "loha", "t1"),
    (".hada_t2", "loha", "t2"),
    (".lokr_w1_a", "lokr", "w1_a"),
    (".lokr_w1_b", "lokr", "w1_b"),
    (".lokr_w2_a", "lokr", "w2_a"),
    (".lokr_w2_b", "lokr", "w2_b"),
    (".lokr_w1", "lokr", "w1"),
    (".lokr_w2", "lokr", "w2"),
    (".lokr_t2", "lokr", "t2"),
    (".dora_scale", None, "magnitude"),
    (".alpha", None, "alpha"),
)

# Layouts the studio recognises but cannot apply, by a tell-tale key part.
_UNSUPPORTED = (
    ((".oft_blocks", ".oft_diag", ".oft_R"), "LyCORIS OFT / BOFT"),
    ((".diff", ".diff_b"), "LyCORIS full-weight (diff)"),
    ((".on_input", ".weight_ia3"), "LyCORIS (IA)³"),
    ((".a1.weight", ".b1.weight", ".a2.weight", ".b2.weight"), "LyCORIS GLoRA"),
    (("lora_te3_", "lora_transformer_", "transformer.", "lora_unet_double_blocks", "lora_unet_single_blocks"),
     "SD3 / Flux"),
)

LAYOUT_LABELS = {
    "lora": "LoRA",
    "loha": "LyCORIS LoHa",
    "lokr": "LyCORIS LoKr",
}


@dataclass
class LoraModule:
    """One layer's worth of a LoRA file: its tensor keys by part, as named in the file."""

    component: str  # "unet", "text_encoder" or "text_encoder_2"
    name: str  # the module's name after the prefix: kohya "down_blocks_0_…" or dotted "down_blocks.0.…"
    naming: str  # "kohya" or "dotted"
    kind: str = "lora"  # "lora", "loha" or "lokr"
    parts: dict[str, str] = field(default_factory=dict)  # part ("down", "up", "alpha", "w1_a" …) -> tensor key
    shapes: dict[str, list[int]] = field(default_factory=dict)

    @property
    def rank(self) -> int | None:
        """The rank that alpha is divided by (None: a LoKr whose factors are both full).

        As LyCORIS and ComfyUI count it: LoHa's first pair; LoKr's second factor when it is
        decomposed, else its first.
        """
        order = ("w2_b", "w1_b") if self.kind == "lokr" else ("down", "w1_b")
        for part in order:
            if part in self.shapes and self.shapes[part]:
                return self.shapes[part][0]
        return None

    @property
    def is_conv(self) -> bool:
        return any(len(s) == 4 and s[2:] != [1, 1] for s in self.shapes.values())


@dataclass
class LoraFile:
    path: Path
    header: SafetensorsHeader
    modules: list[LoraModule]
    kind: str  # "lora", "loha" or "lokr"
    naming: str  # "kohya" or "dotted"
    dora: bool = False
    alphas: dict[str, float] = field(default_factory=dict)  # module key (component/name) -> alpha, when stored

    @property
    def layout(self) -> str:
        """Human name of the layout, e.g. "kohya / AUTOMATIC1111 LoRA" or "diffusers / peft LoRA (DoRA)"."""
        if self.kind == "lora":
            base = "kohya / AUTOMATIC1111 LoRA" if self.naming == "kohya" else "diffusers / peft LoRA"
            if self.naming == "kohya" and any(m.is_conv for m in self.modules):
                base = "kohya / LyCORIS LoCon"
        else:
            base = LAYOUT_LABELS[self.kind]
        return base + (" with DoRA" if self.dora else "")

    def counts(self) -> dict[str, int]:
        out = {c: 0 for c in COMPONENT_LABELS}
        for m in self.modules:
            out[m.component] += 1
        return {c: n for c, n in out.items() if n}

    def ranks(self) -> list[int]:
        return sorted({m.rank for m in self.modules if m.rank is not None})

    def adapter_metadata(self) -> dict:
        """diffusers' saved LoraConfig values (``unet.lora_alpha`` …), when the file has them."""
        raw = self.header.metadata.get("lora_adapter_metadata")
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def alpha(self, module: LoraModule) -> float | None:
        """The module's alpha: its own `.alpha` tensor, else diffusers' saved config, else None."""
        key = f"{module.component}/{module.name}"
        if key in self.alphas:
            return self.alphas[key]
        meta = self.adapter_metadata()
        if not meta:
            return None
        pattern = meta.get(f"{module.component}.alpha_pattern") or {}
        for suffix, value in pattern.items() if isinstance(pattern, dict) else ():
            if module.name == suffix or module.name.endswith("." + suffix):
                return float(value)
        value = meta.get(f"{module.component}.lora_alpha")
        return float(value) if isinstance(value, (int, float)) else None

    def scale(self, module: LoraModule) -> float:
        """alpha / rank (alpha / sqrt(rank) for peft's rsLoRA); 1 when the file stores no alpha."""
        alpha, rank = self.alpha(module), module.rank
        if alpha is None or not rank:
            return 1.0
        if self.adapter_metadata().get(f"{module.component}.use_rslora") is True:
            return alpha / rank ** 0.5
        return alpha / rank

    def trigger_words(self) -> list[str]:
        """Trigger words: a civitai sidecar's trainedWords, else the most frequent training tags."""
        from asset_studio.core.lora_sidecar import read_sidecar

        sidecar = read_sidecar(self.path)
        if sidecar and sidecar.trained_words:
            return list(sidecar.trained_words)
        raw = self.header.metadata.get("ss_tag_frequency")
        try:
            freq = json.loads(raw) if raw else {}
        except ValueError:
            return []
        counts: dict[str, int] = {}
        for tags in freq.values() if isinstance(freq, dict) else ():
            for tag, n in tags.items() if isinstance(tags, dict) else ():
                if isinstance(n, int):
                    counts[tag.strip()] = counts.get(tag.strip(), 0) + n
        return [t for t, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:5] if t]

    def training_metadata(self) -> dict[str, str]:
        return {k: v for k, v in sorted(self.header.metadata.items()) if k.startswith("ss_")}


def _unsupported(keys) -> str | None:
    for markers, name in _UNSUPPORTED:
        for key in keys:
            if any(key.endswith(m) or key.startswith(m) or f"{m}." in key for m in markers):
                return name
    return None


def _read_scalar(path: Path, header: SafetensorsHeader, key: str) -> float:
    info = header.tensors[key]
    dtypes = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "<u2"}
    if info.dtype not in dtypes or int(np.prod(info.shape or [1])) != 1:
        raise UserError(f"{path.name} is not a LoRA file the studio can read: its '{key[:80]}' is not one number.")
    start, end = info.offsets
    with open(path, "rb") as f:
        f.seek(header.data_start + start)
        raw = f.read(end - start)
    value = np.frombuffer(raw, dtype=dtypes[info.dtype])[0]
    if info.dtype == "BF16":  # numpy has no bfloat16: widen the bits to a float32
        value = np.array([int(value) << 16], dtype=np.uint32).view(np.float32)[0]
    value = float(value)
    if not np.isfinite(value):
        raise UserError(f"{path.name} has a NaN or infinite alpha ({key[:80]}); the file is broken.")
    return value


def parse_lora_file(path: Path, max_bytes: int = MAX_LORA_BYTES) -> LoraFile:
    """Group a LoRA file's tensors into modules; refuse, with one sentence, what is not a LoRA we can apply."""
    path = Path(path)
    header = read_header_file(path, max_bytes)
    return parse_lora_header(path, header)


def parse_lora_header(path: Path, header: SafetensorsHeader) -> LoraFile:
    name = path.name
    keys = list(header.tensors)
    if not keys:
        raise UserError(f"{name} holds no weights.")
    bad = _unsupported(keys)
    if bad:
        raise UserError(f"{name} is a {bad} file, a layout the studio cannot apply.")
    modules: dict[tuple[str, str], LoraModule] = {}
    stray: list[str] = []
    for key in keys:
        prefix = next((p for p in _PREFIXES if key.startswith(p[0])), None)
        suffix = next((s for s in _SUFFIXES if key.endswith(s[0])), None)
        if prefix is None or suffix is None:
            stray.append(key)
            continue
        module_name = key[len(prefix[0]):-len(suffix[0])]
        if suffix[0].startswith("_lora."):
            module_name += "_lora"  # to_q_lora: the engine maps the processor name to the layer
        module = modules.setdefault((prefix[1], module_name), LoraModule(prefix[1], module_name, prefix[2]))
        if suffix[1] is not None:
            module.kind = suffix[1] if module.kind == "lora" else module.kind
        module.parts[suffix[2]] = key
        module.shapes[suffix[2]] = header.tensors[key].shape
    if stray:
        raise UserError(
            f"{name} is not a LoRA layout the studio knows: {len(stray)} of its {len(keys)} weights "
            f"(e.g. '{stray[0][:80]}') are neither kohya, diffusers / peft, LoHa nor LoKr LoRA weights."
        )

    kinds = {m.kind for m in modules.values()}
    namings = {m.naming for m in modules.values()}
    if len(kinds) > 1:
        mixed = " and ".join(sorted(LAYOUT_LABELS[k] for k in kinds))
        raise UserError(f"{name} mixes {mixed} layers in one file, which the studio cannot apply.")
    kind = kinds.pop()
    need = {"lora": ({"down", "up"},), "loha": ({"w1_a", "w1_b", "w2_a", "w2_b"},),
            "lokr": ({"w1", "w2"}, {"w1_a", "w1_b", "w2"}, {"w1", "w2_a", "w2_b"}, {"w1_a", "w1_b", "w2_a", "w2_b"})}
    label = LAYOUT_LABELS[kind]
    for m in modules.values():
        present = set(m.parts) - {"alpha", "magnitude"}
        if "mid" in present or "t1" in present or "t2" in present:
            raise UserError(f"{name} is a {label} with Tucker-decomposed convolutions, a layout the studio cannot apply.")
        if present not in need[kind]:
            raise UserError(f"{name} is an incomplete {label}: the layer '{m.name[:80]}' lacks some of its weights.")
    with_magnitude = [m for m in modules.values() if "magnitude" in m.parts]
    if with_magnitude and len(with_magnitude) != len(modules):
        raise UserError(f"{name} uses DoRA on only some of its layers, which the studio cannot apply.")
    for m in with_magnitude:
        shape = m.shapes["magnitude"]
        # one magnitude per output (peft, LyCORIS' default); LyCORIS' wd_on_out=False keeps one per input
        if len(shape) > 1 and shape[0] == 1 and any(d > 1 for d in shape[1:]):
            raise UserError(f"{name} uses DoRA with magnitudes per input channel (LyCORIS wd_on_out=False), "
                            f"which the studio cannot apply.")
    lora = LoraFile(path=path, header=header, modules=list(modules.values()), kind=kind,
                    naming="kohya" if namings == {"kohya"} else "dotted", dora=bool(with_magnitude))
    for m in lora.modules:
        if "alpha" in m.parts:
            lora.alphas[f"{m.component}/{m.name}"] = _read_scalar(path, header, m.parts["alpha"])
    return lora
