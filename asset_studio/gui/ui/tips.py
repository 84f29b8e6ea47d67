"""Artist terms, explained where they are set (tooltips of the Create and Layout tabs)."""

TIPS = {
    "cfg": ("CFG scale (classifier-free guidance): how strictly the image follows the prompt. "
            "Low (2-5) is looser and more natural, 7 is the usual, high (10+) is literal but harsh. "
            "Turbo and LCM models want 0-2."),
    "steps": "Denoising steps: more is slower and usually finer, with little gain past 30. Turbo/LCM models need 1-8.",
    "sampler": "The sampler (scheduler) walks from noise to the image. 'Euler a' and 'DPM++ 2M Karras' are good defaults.",
    "seed": "The seed fixes the starting noise: the same seed and settings give the same image.",
    "lock": ("Locked: use exactly this seed. Unlocked: the style decides (its seed policy: the same subject "
             "always gets the same seed, or a fixed or random seed), and the seed used is shown here afterwards."),
    "batch": "How many images to make; image i uses seed + i.",
    "size": "Output size in pixels (multiples of 8). Models draw best near their training size: 512 for SD 1.5, 1024 for SDXL.",
    "size_auto": ("Automatic: the style pack and the model decide the size (SDXL models get 1024-class sizes). "
                  "Editing the size turns this off; click to hand the size back to the style."),
    "denoise": ("Denoise (strength) when starting from an image: 0 keeps the image, 1 ignores it. "
                "0.4-0.6 repaints details but keeps the composition."),
    "lora": ("LoRA weight: how strongly the style's LoRA pulls the look. 1 is as trained, 0.5-0.8 blends it "
             "with the base model, above 1.2 often breaks images."),
    "controlnet_scale": ("ControlNet scale: how strictly the image follows the layout's lines. 1 is firm, "
                         "0.5 lets the model reinterpret, above 1.5 can look traced."),
    "model": "The base model: a models/ folder entry, a .safetensors checkpoint, or a Hugging Face repo id you downloaded.",
    "negative": "What to keep out of the image (e.g. blurry, text, watermark). Added to the style's and template's negatives.",
    "subject": "What the asset is, in a few words: \"health potion\", \"goblin archer\", \"PLAY\".",
    "tiling": ("Seamless tiling: the image repeats without a seam left-right (a side-scroller's ground), up-down, "
               "or both (a floor or wall texture). The viewer shows tiled results repeated so seams would show."),
    "extra": "Extra words appended to the composed prompt (lighting, colour, details).",
}
