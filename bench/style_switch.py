"""Style switch time against a cold model load, measured in the same run.

    .venv/bin/python bench/style_switch.py                       # tiny random SD 1.5 model and LoRAs
    .venv/bin/python bench/style_switch.py --tiny sdxl           # tiny random SDXL model and LoRAs
    .venv/bin/python bench/style_switch.py --model PATH_OR_ID --lora-a A.safetensors --lora-b B.safetensors

Two style packs, each with its own LoRA (tiny random ones in kohya and peft layout when none are
given). A cold load is the model loaded from disk into a new pipeline through the engine's loader
(imports done beforehand); a switch is compose() of the other style plus apply_loras() on the
loaded pipeline, after each LoRA's first load. Goal: median switch / median cold load <= 5%.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # tiny_models, lora_factory


def make_style(folder: Path, style_id: str, lora: Path, family: str) -> Path:
    from asset_studio.core.stylepack import LoraEntry, StylePack, save_stylepack

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "loras").mkdir(exist_ok=True)
    shutil.copy(lora, folder / "loras" / lora.name)
    pack = StylePack(id=style_id, name=style_id, family=family, prompt=f"{style_id} style, {{subject}}",
                     loras=[LoraEntry(file=f"loras/{lora.name}", weight=0.8, trigger_words=[style_id])])
    save_stylepack(pack, folder)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder, .safetensors or cached repo id (default: a tiny random model)")
    parser.add_argument("--tiny", choices=("sd15", "sdxl"), default="sd15", help="family of the tiny default model")
    parser.add_argument("--lora-a", type=Path)
    parser.add_argument("--lora-b", type=Path)
    parser.add_argument("--cold", type=int, default=3, help="cold loads to time (median)")
    parser.add_argument("--switches", type=int, default=20, help="style switches to time (median)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    import torch  # noqa: F401  imports are not part of a cold load

    from asset_studio.core.compose import AssetRequest, compose
    from asset_studio.core.stylepack import load_stylepack
    from asset_studio.engine.device import choose_device
    from asset_studio.engine.loader import detect_family, load_pipeline, resolve_model
    from asset_studio.engine.lora import apply_loras

    device, dtype = choose_device(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="style-switch-"))
    try:
        model = args.model
        if model is None:
            from tiny_models import build_tiny_sd15, build_tiny_sdxl, save_diffusers

            build = build_tiny_sdxl if args.tiny == "sdxl" else build_tiny_sd15
            model = str(save_diffusers(build(), tmp / f"tiny-{args.tiny}"))
        source = resolve_model(model)
        family = detect_family(source)
        lora_a, lora_b = args.lora_a, args.lora_b
        if lora_a is None or lora_b is None:
            if args.model is not None:
                parser.error("with --model, give --lora-a and --lora-b made for that model")
            from lora_factory import make_kohya_lora, make_peft_lora

            lora_a = make_kohya_lora(tmp / "a" / "kohya.safetensors", family)
            lora_b = make_peft_lora(tmp / "b" / "peft.safetensors", family)
        styles = [load_stylepack(make_style(tmp / "styles" / n, n, lora, family))
                  for n, lora in (("style-a", lora_a), ("style-b", lora_b))]

        load_pipeline(source, family, device, dtype)  # warm-up: first-use code paths, OS file cache
        cold = []
        for _ in range(args.cold):
            start = time.perf_counter()
            pipe = load_pipeline(source, family, device, dtype)
            cold.append(time.perf_counter() - start)

        first = []
        for style in styles:  # each LoRA's one-time load into this pipeline
            start = time.perf_counter()
            apply_loras(pipe, compose(AssetRequest("chest", style=style, model=model)).loras, family)
            first.append(time.perf_counter() - start)

        unet_params = {id(p): p.detach().clone() for n, p in pipe.unet.named_parameters() if "lora_" not in n}
        pipe_id = id(pipe)
        switches = []
        for i in range(args.switches):
            style = styles[i % 2]
            start = time.perf_counter()
            job = compose(AssetRequest("chest", style=style, model=model))
            apply_loras(pipe, job.loras, family)
            switches.append(time.perf_counter() - start)
        now = {id(p): p for n, p in pipe.unet.named_parameters() if "lora_" not in n}
        untouched = id(pipe) == pipe_id and now.keys() == unet_params.keys() and all(
            torch.equal(now[k], v) for k, v in unet_params.items())

        cold_s, switch_s = statistics.median(cold), statistics.median(switches)
        print(f"model: {source.name} ({family}) on {device}, {dtype}")
        print(f"cold load (median of {len(cold)}):      {cold_s * 1000:9.1f} ms")
        print(f"first use of each LoRA:            {', '.join(f'{t * 1000:.1f}' for t in first)} ms")
        print(f"style switch (median of {len(switches)}):  {switch_s * 1000:9.2f} ms")
        print(f"switch / cold load:                {switch_s / cold_s:9.2%}  (goal <= 5%)")
        print(f"base pipeline and UNet weights untouched: {untouched}")
        return 0 if untouched else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
