"""Tiny random-weight Stable Diffusion pipelines built from the real diffusers/transformers classes.

Tests save these to disk and load them through the same code path a user's model takes.
The tokenizer is CLIP's real vocabulary (rebuilt offline by asset_studio.engine.clip_vocab),
so prompts tokenize as they do for real models; only the networks are tiny.
"""

from __future__ import annotations

from pathlib import Path

CLIP_VOCAB = 49408
BOS, EOS = 49406, 49407


def _text_config(projection_dim: int = 32, pad_token_id: int = EOS, hidden_size: int = 32):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=CLIP_VOCAB,
        hidden_size=hidden_size,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=3,
        max_position_embeddings=77,
        projection_dim=projection_dim,
        hidden_act="gelu",
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=pad_token_id,
    )


def _vae():
    from diffusers import AutoencoderKL

    # Four blocks give the real 8x latent scale, so sizes behave as with a real model.
    return AutoencoderKL(
        block_out_channels=[32, 32, 32, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=32,
        sample_size=64,
    )


def _scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        steps_offset=1, timestep_spacing="leading",
    )


def build_tiny_sd15(seed: int = 0):
    """An SD-1.5-shaped StableDiffusionPipeline with random weights."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from asset_studio.engine.clip_vocab import write_clip_tokenizer
    import tempfile

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = _vae()
    text_encoder = CLIPTextModel(_text_config())
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = CLIPTokenizer.from_pretrained(write_clip_tokenizer(Path(tmp)))
    return StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def build_tiny_sdxl(seed: int = 0):
    """An SDXL-shaped StableDiffusionXLPipeline with random weights (two text encoders)."""
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from asset_studio.engine.clip_vocab import write_clip_tokenizer
    import tempfile

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=80,  # 6 * 8 time ids + 32 pooled text
        cross_attention_dim=80,  # 32 + 48 from the two text encoders
        norm_num_groups=32,
    )
    vae = _vae()
    text_encoder = CLIPTextModel(_text_config())
    # Widths differ as in the real SDXL (768 / 1280): single-file loaders tell the encoders apart by width.
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(pad_token_id=0, hidden_size=48))
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = CLIPTokenizer.from_pretrained(write_clip_tokenizer(Path(tmp) / "a"))
        tokenizer_2 = CLIPTokenizer.from_pretrained(write_clip_tokenizer(Path(tmp) / "b", pad_token="!"))
    return StableDiffusionXLPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
        tokenizer=tokenizer, tokenizer_2=tokenizer_2, scheduler=_scheduler(),
        force_zeros_for_empty_prompt=True,
    )


def save_diffusers(pipe, folder: Path) -> Path:
    folder = Path(folder)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
