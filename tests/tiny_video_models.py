"""Tiny random-weight video models built from the real diffusers classes: an AnimateDiff motion
adapter that fits tests/tiny_models.py's SD 1.5 UNet, and a Stable Video Diffusion pipeline
(spatio-temporal UNet, temporal VAE decoder, CLIP image encoder), shaped as in diffusers' own tests."""

from __future__ import annotations

from pathlib import Path


def build_motion_adapter(seed: int = 0, max_seq: int = 32):
    """A MotionAdapter for the tiny SD 1.5 UNet (channels 32, 64; one layer per block)."""
    import torch
    from diffusers import MotionAdapter

    torch.manual_seed(seed)
    return MotionAdapter(
        block_out_channels=(32, 64),
        motion_layers_per_block=1,
        motion_norm_num_groups=32,
        motion_num_attention_heads=8,  # what every AnimateDiff release uses (single files cannot say)
        motion_max_seq_length=max_seq,
        use_motion_mid_block=True,
    )


def save_motion_adapter(adapter, folder: Path) -> Path:
    adapter.save_pretrained(folder, safe_serialization=True)
    return Path(folder)


def save_motion_adapter_file(adapter, path: Path) -> Path:
    """The adapter as one .safetensors file, in AnimateDiff's own tensor names (mm_sd_v15_v2 style)."""
    from safetensors.torch import save_file

    state = {}
    for k, v in adapter.state_dict().items():
        k = (k.replace(".norm1", ".norms.0").replace(".norm2", ".norms.1").replace(".norm3", ".ff_norm")
             .replace(".attn1", ".attention_blocks.0").replace(".attn2", ".attention_blocks.1")
             .replace(".pos_embed.pe", ".pos_encoder.pe"))
        k = k.replace("motion_modules.0.transformer_blocks", "motion_modules.0.temporal_transformer.transformer_blocks")
        state[k] = v.contiguous()
    save_file(state, str(path))
    return Path(path)


def save_motion_lora(unet_dir: Path, adapter_dir: Path, path: Path, seed: int = 5) -> Path:
    """A random LoRA on the motion modules only (what the camera-move motion LoRAs are), saved with the
    `unet.` prefix diffusers' motion LoRA files use."""
    import torch
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from safetensors.torch import save_file

    unet = UNetMotionModel.from_unet2d(UNet2DConditionModel.from_pretrained(unet_dir),
                                       MotionAdapter.from_pretrained(adapter_dir))
    torch.manual_seed(seed)
    inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                       target_modules=r".*motion_modules.*\.(to_q|to_k|to_v|to_out\.0)"), unet)
    state = {f"unet.{k}": v.contiguous() for k, v in get_peft_model_state_dict(unet).items()}
    assert state and all("motion_modules" in k for k in state)
    save_file(state, str(path))
    return path


def build_tiny_svd(seed: int = 0):
    import torch
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32, num_attention_heads=8, projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, interpolation_type="linear",
        num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
        steps_offset=1, timestep_spacing="leading", timestep_type="continuous", trained_betas=None,
        use_karras_sigmas=True,
    )
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"], latent_channels=4,
    )
    # SVD resizes the picture to 224² for its encoder whatever the config says: 16x16 patches of 14
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4, image_size=224,
        intermediate_size=37, patch_size=14,
    ))
    return StableVideoDiffusionPipeline(
        unet=unet, image_encoder=encoder, scheduler=scheduler, vae=vae,
        feature_extractor=CLIPImageProcessor(crop_size=32, size=32),
    )


def build_tiny_animatable_sdxl(seed: int = 0):
    """An SDXL-shaped pipeline with three UNet blocks, as the real SDXL (and as diffusers' own
    AnimateDiff SDXL test): SDXL motion adapters are made for three blocks."""
    import tempfile

    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from asset_studio.engine.clip_vocab import write_clip_tokenizer
    from tiny_models import _scheduler, _text_config, _vae

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64, 128), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4, 8), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1, 1),
        projection_class_embeddings_input_dim=80,  # 6 * 8 time ids + 32 pooled text
        cross_attention_dim=80, norm_num_groups=32,
    )
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = CLIPTokenizer.from_pretrained(write_clip_tokenizer(Path(tmp) / "a"))
        tokenizer_2 = CLIPTokenizer.from_pretrained(write_clip_tokenizer(Path(tmp) / "b", pad_token="!"))
    return StableDiffusionXLPipeline(
        unet=unet, vae=_vae(), text_encoder=CLIPTextModel(_text_config()),
        text_encoder_2=CLIPTextModelWithProjection(_text_config(pad_token_id=0, hidden_size=48)),
        tokenizer=tokenizer, tokenizer_2=tokenizer_2, scheduler=_scheduler(), force_zeros_for_empty_prompt=True,
    )


def build_sdxl_motion_adapter(seed: int = 0, max_seq: int = 32):
    """A MotionAdapter for build_tiny_animatable_sdxl's UNet (three blocks, no mid-block motion,
    as animatediff-motion-adapter-sdxl-beta)."""
    import torch
    from diffusers import MotionAdapter

    torch.manual_seed(seed)
    return MotionAdapter(block_out_channels=(32, 64, 128), motion_layers_per_block=1, motion_norm_num_groups=32,
                         motion_num_attention_heads=8, motion_max_seq_length=max_seq, use_motion_mid_block=False)
