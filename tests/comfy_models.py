"""Random-weight models a real ComfyUI accepts, built at test time (never committed).

ComfyUI detects SD 1.5 from a UNet with 320 base channels and a 768-wide cross-attention context,
and builds CLIP-L and the VAE from fixed configs, so those two are full size; the UNet has one
level only. About 465 MB in fp16, a 64x64 step takes well under a second on a CPU core.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace


def build_comfy_sd15(seed: int = 0):
    """The diffusers modules of the smallest SD 1.5 checkpoint ComfyUI detects as one."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(320,), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",), up_block_types=("CrossAttnUpBlock2D",),
        cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
    )
    vae = AutoencoderKL(  # SD's own VAE shape
        block_out_channels=[128, 256, 512, 512], in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
        layers_per_block=2, norm_num_groups=32, sample_size=512,
    )
    text = CLIPTextModel(CLIPTextConfig(  # CLIP ViT-L/14's text tower
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
        num_hidden_layers=12, max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu",
    ))
    return SimpleNamespace(unet=unet, vae=vae, text_encoder=text)


def save_comfy_sd15(target: Path, modules=None) -> Path:
    """The checkpoint in the single-file LDM layout (as civitai ships), fp16."""
    import torch
    from safetensors.torch import save_file

    from ldm_convert import convert_openai_clip_state_dict, convert_unet_state_dict, convert_vae_state_dict

    m = modules or build_comfy_sd15()
    state = {"model.diffusion_model." + k: v
             for k, v in convert_unet_state_dict(m.unet.state_dict(), dict(m.unet.config)).items()}
    state.update({"first_stage_model." + k: v
                  for k, v in convert_vae_state_dict(m.vae.state_dict(), dict(m.vae.config)).items()})
    state.update({"cond_stage_model.transformer." + k: v
                  for k, v in convert_openai_clip_state_dict(m.text_encoder.state_dict()).items()})
    state = {k: v.to(torch.float16).contiguous() for k, v in state.items()}
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(target))
    return target


def save_comfy_lora(target: Path, modules) -> Path:
    """A kohya LoRA for those modules (tests/lora_factory's layout)."""
    from lora_factory import make_kohya_lora

    from safetensors.torch import load_file, save_file

    pipe = SimpleNamespace(unet=modules.unet, text_encoder=modules.text_encoder)
    path = make_kohya_lora(Path(target), rank=2, pipe=pipe, strength=2.0)
    # kohya names CLIP's layers from the full model ("lora_te_text_model_encoder_…"); the factory
    # walks the text transformer's own modules, which ComfyUI's key map does not know.
    tensors = {k.replace("lora_te_encoder_", "lora_te_text_model_encoder_"): v for k, v in load_file(str(path)).items()}
    save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora"})
    return path
