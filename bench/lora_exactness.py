"""Mean absolute difference between the studio's LoRA image and the hand-merged base model, per layout.

    .venv/bin/python bench/lora_exactness.py        # tiny random SD 1.5 / SD 2.x / SDXL models, CPU

Each layout is written for the tiny model's own layers with random factors (tests/lora_factory.py),
applied through engine.lora.apply_loras, and compared with the same model whose weights were merged
by hand (W + w·alpha/rank·up·down per layer; LoHa / LoKr / DoRA by their own formulas). Values are
in 1/255 of the image range; the goal is <= 1. "effect" is how far the LoRA moves the image.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    import tempfile

    import numpy as np
    import torch

    from lora_factory import ATTN_TARGETS, CONV_TARGETS, apply_by_hand, make_layout_lora
    from test_lora import build_tiny_sd2
    from tiny_models import build_tiny_sd15, build_tiny_sdxl

    from asset_studio.core.job import LoraRef
    from asset_studio.engine.lora import apply_loras

    torch.set_num_threads(1)
    every = ATTN_TARGETS + CONV_TARGETS
    cases = [
        ("sd15", "kohya (attn, MLP, proj, LoCon conv, TE)", [("kohya", dict(unet_targets=every), 0.7)]),
        ("sd15", "kohya LDM names, no alpha", [("kohya", dict(unet_targets=every, ldm=True, alpha=None), 0.7)]),
        ("sd15", "kohya TE only (q_proj, v_proj, fc1)", [("kohya", dict(unet_targets=(), te_targets=("q_proj", "v_proj", "fc1")), 1.0)]),
        ("sd15", "diffusers / peft", [("peft", dict(unet_targets=every), 0.7)]),
        ("sd15", "DoRA (peft) w=1", [("dora", dict(), 1.0)]),
        ("sd15", "DoRA (peft) w=0.5", [("dora", dict(), 0.5)]),
        ("sd15", "LyCORIS LoHa", [("loha", dict(unet_targets=every), 0.7)]),
        ("sd15", "LyCORIS LoKr", [("lokr", dict(unet_targets=every), 0.7)]),
        ("sd15", "LyCORIS LoKr, w1 low-rank, w2 full", [("lokr", dict(unet_targets=every, w1_decomposed=True), 0.7)]),
        ("sd15", "LyCORIS LoHa with DoRA (dora_scale)", [("loha", dict(dora=True), 0.8)]),
        ("sd15", "old diffusers (processor names)", [("diffusers-old", dict(unet_targets=every), 0.7)]),
        ("sd15", "two at once: kohya 0.6 + LoHa -0.4", [("kohya", dict(unet_targets=every, seed=11), 0.6),
                                                         ("loha", dict(seed=12), -0.4)]),
        ("sd2", "kohya (linear proj_in)", [("kohya", dict(unet_targets=every), 0.9)]),
        ("sd2", "diffusers / peft", [("peft", dict(unet_targets=every), 0.9)]),
        ("sdxl", "kohya LDM names, te1 + te2", [("kohya", dict(unet_targets=every, ldm=True), 0.8)]),
        ("sdxl", "kohya te1 + te2 only", [("kohya", dict(unet_targets=()), 0.8)]),
        ("sdxl", "diffusers / peft", [("peft", dict(unet_targets=every), 0.8)]),
        ("sdxl", "LyCORIS LoHa", [("loha", dict(), 0.8)]),
    ]
    builders = {"sd15": build_tiny_sd15, "sd2": build_tiny_sd2, "sdxl": build_tiny_sdxl}
    pipes = {}

    def image(pipe):
        generator = torch.Generator().manual_seed(0)
        return pipe("a red potion", num_inference_steps=2, height=64, width=64, generator=generator,
                    output_type="np").images[0]

    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'model':<6} {'layout':<42} {'studio vs hand (/255)':>22} {'effect (/255)':>14}")
        for family, label, loras in cases:
            if family not in pipes:
                pipes[family] = (builders[family](), builders[family]())
                for p in pipes[family]:
                    p.set_progress_bar_config(disable=True)
            pipe, ref = pipes[family]
            merges = [(make_layout_lora(Path(tmp) / f"{len(list(Path(tmp).iterdir()))}.safetensors", pipe, layout,
                                        **options), weight) for layout, options, weight in loras]
            apply_loras(pipe, [LoraRef(str(m.path), w) for m, w in merges], family)
            studio = image(pipe)
            apply_loras(pipe, [], family)
            undo = apply_by_hand(ref, merges)
            by_hand = image(ref)
            undo()
            base = image(ref)
            mismatch, effect = np.abs(studio - by_hand).mean() * 255, np.abs(by_hand - base).mean() * 255
            worst = max(worst, mismatch)
            print(f"{family:<6} {label:<42} {mismatch:>22.5f} {effect:>14.2f}")
    print(f"worst: {worst:.5f}/255 (goal <= 1)")
    return 0 if worst <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
