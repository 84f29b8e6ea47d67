"""Train a style pack from the artist's own images: a LoRA on an SD 1.x/2.x or SDXL base.

    result = train(TrainConfig(data_dir="my-sprites", model="sd15.safetensors", out_dir="packs/my-style"),
                   on_event=print, should_cancel=lambda: False)

The recipe is diffusers' train_text_to_image_lora.py (and its SDXL sibling), without accelerate:
LoRA adapters (peft, rank r, alpha) on the UNet's attention projections and optionally on the
text encoders' (q/k/v/out); noise added by a DDPMScheduler built from the model's own scheduler
config; the loss is the MSE against the noise (epsilon models) or the velocity (v-prediction
models), optionally Min-SNR weighted; AdamW, gradient clipping at 1.0, a constant learning rate.
SDXL gets its pooled text embeds and size/crop time ids. On CUDA the frozen weights are in
bf16 (fp16 where bf16 is missing) with the LoRA weights in fp32 under autocast, and the UNet
uses gradient checkpointing, so SD 1.5 trains on an 8 GB card.

The model is loaded through engine/loader.py (the generation path: single files and diffusers
folders). Each image is encoded by the VAE once (its latent distribution is kept and sampled
each step, as encoding each step would); captions are encoded once unless the text encoder trains.

Every random draw of step s comes from a generator seeded by (seed, s), and the image order of
epoch e from one seeded by (seed, e), so a run resumed from a checkpoint takes the same draws as
one that never stopped. A checkpoint (PACK/.train/checkpoint.safetensors: LoRA weights, AdamW
state, step, RNG states, settings) is written atomically every `checkpoint_every` steps and on
cancel; it is safetensors, never a pickle.

The result is a style pack folder: style.toml (the trigger word in the prompt, the base model as
recommended model), loras/ID.safetensors in the kohya layout with ss_* metadata (what
AUTOMATIC1111, ComfyUI and engine/lora.py read), and sample images as previews.
This module imports torch only inside functions: the GUI can import its dataclasses cheaply.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from asset_studio.core import dataset as ds
from asset_studio.core import families
from asset_studio.errors import UserError

TRAIN_DIR = ".train"
CHECKPOINT = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "asset-studio.train-checkpoint"
UNET_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]  # as diffusers' LoRA training examples
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
KOHYA_BASE_VERSION = {"sd15": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0"}
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
DEFAULT_SAMPLE_SUBJECT = "a treasure chest"  # a new subject: shows the style, not a copied image
ID_CHARS = re.compile(r"[^a-z0-9_-]+")


@dataclass
class TrainConfig:
    data_dir: str
    model: str
    out_dir: str
    trigger: str = ""  # "" = the pack id
    pack_id: str = ""  # "" = from the output folder's name
    name: str = ""  # the pack's display name; "" = from the id
    steps: int = 1000
    epochs: int | None = None  # set: steps = epochs x batches per epoch
    rank: int = 16
    alpha: float | None = None  # None = rank (scale 1)
    learning_rate: float = 1e-4
    text_encoder_lr: float | None = None  # None = learning_rate
    batch_size: int = 1
    resolution: int | None = None  # None = the family's (512 SD 1.5, 768 SD 2, 1024 SDXL)
    bucket_step: int = ds.BUCKET_STEP
    seed: int = 0
    train_text_encoder: bool = False
    flip: bool = False
    background: str | None = None  # colour under transparent pixels; None = white
    snr_gamma: float | None = None  # Min-SNR weighting (5.0 is the paper's); None = plain MSE
    mixed_precision: str = "auto"  # auto: bf16/fp16 on CUDA, fp32 elsewhere
    gradient_checkpointing: bool | None = None  # None = on CUDA
    checkpoint_every: int = 100
    sample_every: int = 0  # 0 = samples only at the end (the pack's previews)
    sample_prompts: list[str] = field(default_factory=list)  # [] = a dataset caption and a new subject
    sample_steps: int = 20
    sample_cfg: float = 7.0
    save_precision: str = "fp16"  # of the LoRA file: fp16 (as most LoRAs ship) or fp32
    resume: bool = False
    force: bool = False  # replace a finished pack (or an unfinished training) in out_dir
    device: str | None = None
    model_config: str | None = None
    download: bool = False


# --- events (the GUI's worker forwards these; the CLI prints them) ------------------------------------


@dataclass
class DatasetChecked:
    report: ds.DatasetReport
    images: int
    buckets: dict  # (width, height) -> number of images


@dataclass
class ModelLoading:
    what: str


@dataclass
class TrainingStarted:
    start_step: int  # > 0 when resumed
    total_steps: int
    images: int
    device: str
    precision: str


@dataclass
class StepDone:
    step: int  # steps done so far (1-based)
    total: int
    loss: float
    eta_seconds: float
    steps_per_second: float


@dataclass
class SampleReady:
    step: int
    images: list  # PIL images, one per sample prompt
    paths: list[Path]


@dataclass
class CheckpointSaved:
    step: int
    path: Path


@dataclass
class TrainingFinished:
    pack_dir: Path
    lora_path: Path
    steps: int


@dataclass
class TrainingCancelled:
    step: int
    checkpoint: Path | None  # None when no step was done


@dataclass
class TrainResult:
    pack_dir: Path
    lora_path: Path | None
    steps: int
    cancelled: bool = False
    losses: list[float] = field(default_factory=list)  # the loss of each step of this run


def train(config: TrainConfig, on_event: Callable | None = None,
          should_cancel: Callable[[], bool] | None = None) -> TrainResult:
    """Train and write the style pack; callable from a worker thread. Bad input raises UserError."""
    trainer = Trainer(config, on_event, should_cancel)
    trainer.prepare()
    return trainer.run()


# --- helpers ---------------------------------------------------------------------------------------


def pack_id_for(folder: Path) -> str:
    """A style-pack id from a folder name: 'My Sprites!' -> 'my-sprites'."""
    from asset_studio.core.stylepack import ID_PATTERN

    slug = ID_CHARS.sub("-", Path(folder).name.lower()).strip("-_")[:64]
    if not ID_PATTERN.fullmatch(slug):
        raise UserError(f"No pack id can be made from the folder name {Path(folder).name!r}; "
                        "give one with --id (lower-case letters, digits, '-' or '_').")
    return slug


def derive_seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1


def check_config(c: TrainConfig) -> None:
    def need(ok: bool, sentence: str) -> None:
        if not ok:
            raise UserError(sentence)

    need(isinstance(c.steps, int) and 1 <= c.steps <= 1_000_000, "The number of steps must be from 1 to 1000000.")
    need(c.epochs is None or 1 <= c.epochs <= 10_000, "The number of epochs must be from 1 to 10000.")
    need(1 <= c.rank <= 1024, "The LoRA rank must be from 1 to 1024 (4 to 32 is usual).")
    need(c.alpha is None or 0 < c.alpha <= 4096, "The LoRA alpha must be positive (by default it is the rank).")
    for lr, what in ((c.learning_rate, "learning rate"), (c.text_encoder_lr, "text encoder learning rate")):
        need(lr is None or 0 < lr <= 1, f"The {what} must be above 0 and at most 1 (1e-4 is usual).")
    need(1 <= c.batch_size <= 256, "The batch size must be from 1 to 256.")
    need(c.bucket_step in (8, 16, 32, 64), "The bucket step must be 8, 16, 32 or 64 pixels.")
    need(0 <= c.seed < 2**63, "The seed must be from 0 to 2^63-1.")
    need(c.snr_gamma is None or c.snr_gamma > 0, "The SNR gamma must be positive (5 is usual).")
    need(c.mixed_precision in MIXED_PRECISION, f"Mixed precision must be one of {', '.join(MIXED_PRECISION)}.")
    need(c.checkpoint_every >= 1, "Checkpoints must be saved every 1 step or more.")
    need(c.sample_every >= 0, "Samples are made every N steps with N >= 0 (0 = only at the end).")
    need(1 <= c.sample_steps <= 150, "Sample images take 1 to 150 sampling steps.")
    need(c.save_precision in ("fp16", "fp32"), "The LoRA is saved in fp16 or fp32.")
    need(all(isinstance(p, str) and p.strip() and len(p) <= 1000 for p in c.sample_prompts),
         "Sample prompts must be non-empty text of at most 1000 characters.")
    if c.resolution is not None:
        ds.check_resolution(c.resolution, c.bucket_step)


# --- the trainer -------------------------------------------------------------------------------------


class Trainer:
    """One training run: prepare() checks and loads, run() trains and writes the pack."""

    def __init__(self, config: TrainConfig, on_event: Callable | None = None,
                 should_cancel: Callable[[], bool] | None = None):
        self.config = config
        self.emit = on_event or (lambda event: None)
        self.should_cancel = should_cancel or (lambda: False)
        self.start_step = 0
        self.losses: list[float] = []
        self.discard_checkpoint = False

    # --- checks and set-up -----------------------------------------------------------------------------

    def prepare(self) -> None:
        c = self.config
        check_config(c)
        self.out = Path(c.out_dir).expanduser()
        self.pack_id = c.pack_id or pack_id_for(self.out.resolve())
        from asset_studio.core.stylepack import ID_PATTERN

        if not ID_PATTERN.fullmatch(self.pack_id):
            raise UserError("The pack id must be 1 to 64 lower-case letters, digits, '-' or '_'.")
        self.trigger = ds.check_trigger(c.trigger or self.pack_id)
        self.train_dir = self.out / TRAIN_DIR
        self.checkpoint_path = self.train_dir / CHECKPOINT
        self._check_out_dir()

        from asset_studio.engine.loader import detect_family, resolve_model

        self.source = resolve_model(c.model, download=c.download)
        self.family = detect_family(self.source)
        self.resolution = c.resolution or families.base_size(self.family)
        ds.check_resolution(self.resolution, c.bucket_step)

        self.dataset = ds.scan_dataset(c.data_dir, self.trigger)
        self.report = ds.check_dataset(self.dataset, self.resolution, c.bucket_step)
        self.report.raise_problems()
        self.items = [item for item in self.dataset.items if item.path in self.report.sizes]
        self.background = ds.parse_background(c.background)
        self.buckets = [ds.bucket_for(*self.report.sizes[item.path], self.resolution, c.bucket_step)
                        for item in self.items]
        counts: dict = {}
        for b in self.buckets:
            counts[b] = counts.get(b, 0) + 1
        self.emit(DatasetChecked(report=self.report, images=len(self.items), buckets=counts))
        self.batches_per_epoch = len(self._epoch_batches(0))
        self.total_steps = c.steps if c.epochs is None else c.epochs * self.batches_per_epoch
        self.sample_prompts = list(c.sample_prompts) or self._default_prompts()
        self.settings = self._settings()
        saved = self._read_checkpoint_meta() if c.resume else None

        self._load_model()
        self._add_adapters()
        self._cache_inputs()
        if saved is not None:
            self._restore(saved)
        elif self.discard_checkpoint:
            self.checkpoint_path.unlink(missing_ok=True)

    def _check_out_dir(self) -> None:
        c, out = self.config, self.out
        if out.exists() and not out.is_dir():
            raise UserError(f"{out} is a file; give a folder for the new style pack.")
        has_checkpoint = self.checkpoint_path.is_file()
        has_pack = (out / "style.toml").is_file()
        if c.resume:
            if not has_checkpoint:
                raise UserError(f"There is no training to resume in {out} (no {TRAIN_DIR}/{CHECKPOINT}); "
                                "run without --resume to start one.")
            return
        if has_pack and not c.force:
            further = ", or --resume with more --steps to train it further" if has_checkpoint else ""
            raise UserError(f"{out} already holds a style pack; pass --force to replace it{further}, "
                            "or choose another folder.")
        if has_checkpoint and not c.force:
            raise UserError(f"{out} holds an unfinished training; pass --resume to continue it, "
                            "or --force to start over.")
        if out.is_dir() and any(out.iterdir()) and not (has_pack or has_checkpoint):
            raise UserError(f"The folder {out} is not empty and holds no style pack; choose a new or empty folder.")
        self.discard_checkpoint = has_checkpoint  # --force: start over, once everything is checked and loaded

    def _default_prompts(self) -> list[str]:
        return [self.items[0].caption, ds.with_trigger(self.trigger, DEFAULT_SAMPLE_SUBJECT)]

    def _settings(self) -> dict:
        """What decides the result: a resumed run must have the same (steps may grow)."""
        c = self.config
        files = []
        for item in self.items:
            files.append([item.path.name, hashlib.sha256(item.path.read_bytes()).hexdigest()[:16], item.caption])
        return {
            "model": str(self.source.path), "family": self.family, "data": files, "trigger": self.trigger,
            "rank": c.rank, "alpha": float(c.alpha or c.rank), "learning_rate": c.learning_rate,
            "text_encoder_lr": c.text_encoder_lr, "batch_size": c.batch_size, "resolution": self.resolution,
            "bucket_step": c.bucket_step, "seed": c.seed, "train_text_encoder": c.train_text_encoder,
            "flip": c.flip, "background": list(self.background), "snr_gamma": c.snr_gamma,
            "mixed_precision": c.mixed_precision,
        }

    def _load_model(self) -> None:
        import torch

        from asset_studio.engine.device import choose_device
        from asset_studio.engine.loader import load_pipeline

        c = self.config
        self.device, _ = choose_device(c.device, "fp32")
        precision = c.mixed_precision
        if precision == "auto":
            if self.device.type == "cuda":
                precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            else:
                precision = "no"
        if precision != "no" and self.device.type != "cuda":
            raise UserError(f"Mixed precision ({precision}) is for CUDA GPUs; on {self.device.type} train with 'no'.")
        self.precision = precision
        self.weight_dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        self.amp = precision != "no"
        self.emit(ModelLoading(f"Loading {self.source.name}…"))
        self.pipe = load_pipeline(self.source, self.family, self.device, self.weight_dtype,
                                  model_config=c.model_config)
        self.pipe.set_progress_bar_config(disable=True)
        self.text_encoders = [te for te in (self.pipe.text_encoder, getattr(self.pipe, "text_encoder_2", None))
                              if te is not None]
        for module in (self.pipe.unet, self.pipe.vae, *self.text_encoders):
            module.requires_grad_(False)
        from diffusers import DDPMScheduler

        self.noise_scheduler = DDPMScheduler.from_config(self.pipe.scheduler.config)
        self.prediction_type = self.noise_scheduler.config.prediction_type
        checkpointing = c.gradient_checkpointing
        if checkpointing is None:
            checkpointing = self.device.type == "cuda"
        self.gradient_checkpointing = bool(checkpointing)
        if checkpointing:
            self.pipe.unet.enable_gradient_checkpointing()

    def _add_adapters(self) -> None:
        import torch
        from peft import LoraConfig, inject_adapter_in_model

        c = self.config
        alpha = float(c.alpha or c.rank)
        torch.manual_seed(derive_seed(c.seed, "init"))  # peft's gaussian init draws from the global RNG
        self.pipe.unet.add_adapter(LoraConfig(r=c.rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                              target_modules=UNET_TARGETS))
        self.trained = {"unet": self.pipe.unet}
        if c.train_text_encoder:
            for name, encoder in zip(("text_encoder", "text_encoder_2"), self.text_encoders):
                # peft directly: transformers' add_adapter asks for a newer peft than PyPI pairs with it
                inject_adapter_in_model(LoraConfig(r=c.rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                                   target_modules=TEXT_TARGETS), encoder)
                self.trained[name] = encoder
        self.params: dict[str, torch.nn.Parameter] = {}
        for prefix, model in self.trained.items():
            for name, param in model.named_parameters():
                if "lora_" in name:
                    param.requires_grad_(True)
                    param.data = param.data.float()  # LoRA weights train in fp32 under autocast
                    self.params[f"{prefix}.{name}"] = param
        unet_params = [p for k, p in self.params.items() if k.startswith("unet.")]
        text_params = [p for k, p in self.params.items() if not k.startswith("unet.")]
        groups = [{"params": unet_params, "lr": c.learning_rate}]
        if text_params:
            groups.append({"params": text_params, "lr": c.text_encoder_lr or c.learning_rate})
        self.optimizer = torch.optim.AdamW(groups, lr=c.learning_rate, betas=(0.9, 0.999), weight_decay=1e-2,
                                           eps=1e-8)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None

    def _cache_inputs(self) -> None:
        """Encode every image (and its mirror image when flipping) once; captions too when the text
        encoders are frozen."""
        import numpy as np
        import torch

        self.emit(ModelLoading(f"Encoding {len(self.items)} images…"))
        from asset_studio.engine.loader import quiet_loading

        vae = self.pipe.vae
        if vae.dtype != torch.float32:
            with quiet_loading():  # the SDXL VAE overflows in fp16; encoding happens once, so fp32 costs little
                vae.to(torch.float32)
        self.latent_dists: list[list[tuple]] = []  # per item: [(mean, std) as is, (mean, std) flipped]
        self.time_ids = []
        self.had_alpha = 0
        with torch.no_grad():
            for item, bucket in zip(self.items, self.buckets):
                prepared = ds.prepare_image(item.path, bucket, self.background)
                self.had_alpha += prepared.had_alpha
                pixels = torch.from_numpy(np.asarray(prepared.image, dtype=np.float32) / 127.5 - 1.0)
                pixels = pixels.permute(2, 0, 1)[None]
                versions = [pixels, pixels.flip(-1)] if self.config.flip else [pixels]
                dists = []
                for version in versions:
                    dist = vae.encode(version.to(self.device)).latent_dist
                    dists.append((dist.mean[0].cpu(), dist.std[0].cpu()))
                self.latent_dists.append(dists)
                (ow, oh), (top, left), (bw, bh) = prepared.original_size, prepared.crop_top_left, bucket
                self.time_ids.append(torch.tensor([oh, ow, top, left, bh, bw], dtype=torch.float32))
        if vae.dtype != self.weight_dtype:
            with quiet_loading():
                vae.to(self.weight_dtype)
        self.text_cache = None
        if not self.config.train_text_encoder:
            with torch.no_grad():
                self.text_cache = [self._encode_text([item.caption]) for item in self.items]

    def _encode_text(self, captions: list[str]):
        """(prompt embeds, pooled embeds or None) as generation computes them (the pipeline's own encode)."""
        if self.family == "sdxl":
            embeds, _, pooled, _ = self.pipe.encode_prompt(prompt=captions, device=self.device,
                                                           num_images_per_prompt=1,
                                                           do_classifier_free_guidance=False)
            return embeds, pooled
        embeds, _ = self.pipe.encode_prompt(captions, self.device, 1, False)
        return embeds, None

    # --- the data order --------------------------------------------------------------------------------

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        """Epoch EPOCH's batches: images of one bucket per batch, shuffled by (seed, epoch)."""
        import torch

        generator = torch.Generator().manual_seed(derive_seed(self.config.seed, "epoch", epoch))
        by_bucket: dict = {}
        for index, bucket in enumerate(self.buckets):
            by_bucket.setdefault(bucket, []).append(index)
        batches = []
        for bucket in sorted(by_bucket):
            members = by_bucket[bucket]
            order = [members[i] for i in torch.randperm(len(members), generator=generator).tolist()]
            size = self.config.batch_size
            batches += [order[i:i + size] for i in range(0, len(order), size)]
        return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]

    def batch_for_step(self, step: int) -> list[int]:
        epoch, index = divmod(step, self.batches_per_epoch)
        if getattr(self, "_epoch_cache", (None,))[0] != epoch:
            self._epoch_cache = (epoch, self._epoch_batches(epoch))
        return self._epoch_cache[1][index]

    # --- the loss --------------------------------------------------------------------------------------

    def _loss(self, indices: list[int], generator, timesteps=None, exact: bool = False):
        """The training loss of a batch; every random draw comes from GENERATOR (a CPU generator).
        EXACT: the latents' means, never flipped (for fixed_loss)."""
        import torch
        import torch.nn.functional as F

        n = len(indices)
        flip = self.config.flip and not exact
        flips = (torch.rand(n, generator=generator) < 0.5).tolist() if flip else [False] * n
        latents = []
        for index, flip in zip(indices, flips):
            mean, std = self.latent_dists[index][1 if flip else 0]
            sample = mean if exact else mean + std * torch.randn(mean.shape, generator=generator)
            latents.append(sample)
        latents = torch.stack(latents)
        vae_config = self.pipe.vae.config
        shift = getattr(vae_config, "shift_factor", None)
        latents = ((latents - shift) if shift is not None else latents) * vae_config.scaling_factor
        noise = torch.randn(latents.shape, generator=generator)
        if timesteps is None:
            timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (n,), generator=generator)
        timesteps = timesteps.long()
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        if self.prediction_type == "epsilon":
            target = noise
        elif self.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        else:
            raise UserError(f"The model predicts {self.prediction_type!r}; training supports epsilon and "
                            "v-prediction models.")
        device = self.device
        with torch.autocast(device.type, dtype=self.weight_dtype, enabled=self.amp):
            if self.text_cache is not None:
                embeds = torch.cat([self.text_cache[i][0] for i in indices])
                pooled = torch.cat([self.text_cache[i][1] for i in indices]) if self.family == "sdxl" else None
            else:
                embeds, pooled = self._encode_text([self.items[i].caption for i in indices])
            extra = {}
            if self.family == "sdxl":
                time_ids = torch.stack([self.time_ids[i] for i in indices]).to(device)
                extra["added_cond_kwargs"] = {"text_embeds": pooled.to(device), "time_ids": time_ids}
            pred = self.pipe.unet(noisy.to(device, self.weight_dtype), timesteps.to(device), embeds.to(device),
                                  return_dict=False, **extra)[0]
        target = target.to(device)
        if self.config.snr_gamma is None:
            return F.mse_loss(pred.float(), target.float(), reduction="mean")
        from diffusers.training_utils import compute_snr

        snr = compute_snr(self.noise_scheduler, timesteps).to(device)
        weights = torch.clamp(snr, max=self.config.snr_gamma)
        weights = weights / snr if self.prediction_type == "epsilon" else weights / (snr + 1)
        loss = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
        return (loss * weights).mean()

    def fixed_loss(self, timesteps=(100, 300, 500, 700, 900), seed: int = 1234) -> float:
        """The mean loss over every image at fixed timesteps and noise (latent means, no flip): a
        measure of how well the LoRA fits the data that does not move with each step's draws."""
        import torch

        total, count = 0.0, 0
        with torch.no_grad():
            for index in range(len(self.items)):
                for t in timesteps:
                    generator = torch.Generator().manual_seed(derive_seed(seed, index, t))
                    total += float(self._loss([index], generator, torch.tensor([t]), exact=True))
                    count += 1
        return total / count

    # --- the loop --------------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        import torch

        c = self.config
        step = self.start_step
        if step > self.total_steps:
            raise UserError(f"The checkpoint is at step {step}, past the {self.total_steps} steps asked for; "
                            f"ask for more steps to continue it.")
        self.emit(TrainingStarted(start_step=step, total_steps=self.total_steps, images=len(self.items),
                                  device=str(self.device), precision=self.precision))
        for model in self.trained.values():
            model.train()
        params = list(self.params.values())
        timed_steps, timed_seconds = 0, 0.0
        while step < self.total_steps:
            if self.should_cancel():
                path = self.save_checkpoint(step) if step > self.start_step else None
                self.emit(TrainingCancelled(step=step, checkpoint=path if path else self._existing_checkpoint()))
                return TrainResult(self.out, None, step, cancelled=True, losses=self.losses)
            began = time.perf_counter()
            generator = torch.Generator().manual_seed(derive_seed(c.seed, "step", step))
            loss = self._loss(self.batch_for_step(step), generator)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)
            else:
                loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            step += 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise UserError(f"Training diverged at step {step} (the loss is {value}); lower the learning "
                                "rate, or resume from the last checkpoint with a lower one.")
            self.losses.append(value)
            timed_steps += 1
            timed_seconds += time.perf_counter() - began
            rate = timed_steps / timed_seconds if timed_seconds > 0 else 0.0
            eta = (self.total_steps - step) / rate if rate > 0 else 0.0
            self.emit(StepDone(step=step, total=self.total_steps, loss=value, eta_seconds=eta, steps_per_second=rate))
            if step % c.checkpoint_every == 0 and step < self.total_steps:
                self.save_checkpoint(step)
            if c.sample_every and step % c.sample_every == 0 and step < self.total_steps:
                self.sample(step, self.train_dir / "samples", f"step-{step:06d}")
        self.save_checkpoint(step)  # the final state too: --resume --steps MORE continues from here
        lora_path = self.write_pack(step)
        self.emit(TrainingFinished(pack_dir=self.out, lora_path=lora_path, steps=step))
        return TrainResult(self.out, lora_path, step, losses=self.losses)

    def _existing_checkpoint(self) -> Path | None:
        return self.checkpoint_path if self.checkpoint_path.is_file() else None

    # --- samples ---------------------------------------------------------------------------------------

    def sample(self, step: int, folder: Path, stem: str) -> list[Path]:
        import torch

        from asset_studio.core.outputs import png_writer, write_file

        c = self.config
        for model in self.trained.values():
            model.eval()
        images, paths = [], []
        try:
            for i, prompt in enumerate(self.sample_prompts):
                generator = torch.Generator().manual_seed(derive_seed(c.seed, "sample", i) % 2**32)
                with torch.autocast(self.device.type, dtype=self.weight_dtype, enabled=self.amp):
                    image = self.pipe(prompt, negative_prompt="", num_inference_steps=c.sample_steps,
                                      guidance_scale=c.sample_cfg, width=self.resolution, height=self.resolution,
                                      generator=generator).images[0]
                images.append(image)
                paths.append(write_file(Path(folder) / f"{stem}-{i + 1}.png", png_writer(image)))
        finally:
            for model in self.trained.values():
                model.train()
        self.emit(SampleReady(step=step, images=images, paths=paths))
        return paths

    # --- checkpoints -----------------------------------------------------------------------------------

    def save_checkpoint(self, step: int) -> Path:
        """LoRA weights, AdamW state, step and RNG states in one safetensors file, replaced atomically."""
        import torch
        from safetensors.torch import save

        from asset_studio.core.outputs import bytes_writer, write_file

        tensors = {f"param.{name}": p.detach().float().cpu().contiguous() for name, p in self.params.items()}
        state = self.optimizer.state_dict()
        for index, values in state["state"].items():
            for key, value in values.items():
                tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        metadata = {
            "format": CHECKPOINT_FORMAT, "version": "1", "step": str(step), "total_steps": str(self.total_steps),
            "settings": json.dumps(self.settings, sort_keys=True),
            "param_groups": json.dumps(state["param_groups"]),
            "scaler": json.dumps(self.scaler.state_dict() if self.scaler is not None else None),
        }
        self.train_dir.mkdir(parents=True, exist_ok=True)
        path = write_file(self.checkpoint_path, bytes_writer(save(tensors, metadata=metadata)))
        self.emit(CheckpointSaved(step=step, path=path))
        return path

    def _read_checkpoint_meta(self) -> dict:
        from asset_studio.core.safetensors_header import read_header_file

        header = read_header_file(self.checkpoint_path)
        meta = header.metadata or {}
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"{self.checkpoint_path} is not an Asset Studio training checkpoint.")
        try:
            saved = json.loads(meta["settings"])
            step = int(meta["step"])
        except (KeyError, ValueError):
            raise UserError(f"The checkpoint {self.checkpoint_path} is damaged; run with --force to start over.") \
                from None
        for key, value in self.settings.items():
            if saved.get(key) != value:
                what = "training images or captions" if key == "data" else key.replace("_", " ")
                raise UserError(f"The checkpoint in {self.train_dir} was made with other {what}; resume with the "
                                "same settings, or pass --force to start over.")
        return {"step": step, "meta": meta}

    def _restore(self, saved: dict) -> None:
        import torch
        from safetensors.torch import load_file

        tensors = load_file(str(self.checkpoint_path))
        with torch.no_grad():
            for name, param in self.params.items():
                value = tensors.get(f"param.{name}")
                if value is None or value.shape != param.shape:
                    raise UserError(f"The checkpoint {self.checkpoint_path} does not fit this model; "
                                    "pass --force to start over.")
                param.copy_(value.to(param.device, param.dtype))
        meta = saved["meta"]
        groups = json.loads(meta["param_groups"])
        state: dict = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value.to(self.device) if value.dim() else value
        self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        scaler = json.loads(meta.get("scaler") or "null")
        if self.scaler is not None and scaler:
            self.scaler.load_state_dict(scaler)
        torch.set_rng_state(tensors["rng.cpu"])
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.start_step = saved["step"]

    # --- the style pack --------------------------------------------------------------------------------

    def kohya_state_dict(self) -> dict:
        """The trained LoRA in the kohya layout: lora_unet_… / lora_te_… (lora_te1_/lora_te2_ on SDXL)
        with .lora_down.weight, .lora_up.weight and .alpha."""
        import torch

        c = self.config
        dtype = torch.float16 if c.save_precision == "fp16" else torch.float32
        alpha = torch.tensor(float(c.alpha or c.rank))
        text_prefixes = ({"text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"} if self.family == "sdxl"
                         else {"text_encoder": "lora_te_"})
        out = {}
        for name, param in self.params.items():
            component, rest = name.split(".", 1)
            match = re.fullmatch(r"(.+)\.lora_([AB])\.[^.]+\.weight", rest)
            if match is None:
                continue
            module, which = match.groups()
            if component == "unet":
                key = "lora_unet_" + module.replace(".", "_")
            else:
                if not module.startswith("text_model."):  # recent transformers flattened CLIPTextModel
                    module = "text_model." + module
                key = text_prefixes[component] + module.replace(".", "_")
            suffix = "lora_down.weight" if which == "A" else "lora_up.weight"
            out[f"{key}.{suffix}"] = param.detach().to("cpu", dtype).contiguous()
            out[f"{key}.alpha"] = alpha.to(dtype)
        return out

    def lora_metadata(self, step: int) -> dict[str, str]:
        c = self.config
        return {
            "ss_network_module": "networks.lora",
            "ss_network_dim": str(c.rank),
            "ss_network_alpha": f"{float(c.alpha or c.rank):g}",
            "ss_network_train_unet_only": str(not c.train_text_encoder),
            "ss_base_model_version": KOHYA_BASE_VERSION.get(self.family, self.family),
            "ss_sd_model_name": self.source.name,
            "ss_v2": str(self.family == "sd2"),
            "ss_v_parameterization": str(self.prediction_type == "v_prediction"),
            "ss_resolution": f"({self.resolution}, {self.resolution})",
            "ss_max_train_steps": str(step),
            "ss_num_epochs": str(math.ceil(step / self.batches_per_epoch)),
            "ss_num_batches_per_epoch": str(self.batches_per_epoch),
            "ss_batch_size_per_device": str(c.batch_size),
            "ss_num_train_images": str(len(self.items)),
            "ss_learning_rate": f"{c.learning_rate:g}",
            "ss_unet_lr": f"{c.learning_rate:g}",
            "ss_text_encoder_lr": f"{(c.text_encoder_lr or c.learning_rate) if c.train_text_encoder else 0:g}",
            "ss_optimizer": "torch.optim.AdamW(weight_decay=0.01,betas=(0.9, 0.999))",
            "ss_lr_scheduler": "constant",
            "ss_max_grad_norm": "1.0",
            "ss_min_snr_gamma": str(c.snr_gamma) if c.snr_gamma is not None else "None",
            "ss_mixed_precision": self.precision,
            "ss_gradient_checkpointing": str(self.gradient_checkpointing),
            "ss_seed": str(c.seed),
            "ss_flip_aug": str(c.flip),
            "ss_enable_bucket": "True",
            "ss_bucket_info": json.dumps({"buckets": {f"{w}x{h}": n for (w, h), n in self._bucket_counts().items()}}),
            "ss_tag_frequency": self.dataset.tag_frequency_json(),
            "ss_output_name": self.pack_id,
            "ss_training_comment": f"trigger: {self.trigger}; trained with Asset Studio",
        }

    def _bucket_counts(self) -> dict:
        counts: dict = {}
        for b in self.buckets:
            counts[b] = counts.get(b, 0) + 1
        return dict(sorted(counts.items()))

    def write_pack(self, step: int) -> Path:
        from safetensors.torch import save

        from asset_studio.core.outputs import bytes_writer, write_file
        from asset_studio.core.stylepack import Defaults, LoraEntry, PostProcess, StylePack, save_stylepack

        lora_rel = f"loras/{self.pack_id}.safetensors"
        lora_path = write_file(self.out / lora_rel, bytes_writer(save(self.kohya_state_dict(),
                                                                      metadata=self.lora_metadata(step))))
        previews = [p.relative_to(self.out).as_posix() for p in self.sample(step, self.out / "previews", "preview")]
        models = [str(self.source.path) if self.source.kind != "repo" else self.source.ref]
        if self.source.kind != "repo":
            models.append(self.source.path.name)  # found in the model folders on another machine
        pack = StylePack(
            id=self.pack_id,
            name=self.config.name or self.pack_id.replace("-", " ").replace("_", " ").title(),
            prompt=f"{self.trigger}, {{subject}}",
            description=(f"Trained by Asset Studio from {len(self.items)} images of {self.dataset.folder.name} for "
                         f"{step} steps (LoRA rank {self.config.rank}) on {self.source.name}."),
            family=self.family,
            recommended_models=models,
            loras=[LoraEntry(file=lora_rel, weight=1.0, trigger_words=[self.trigger])],
            defaults=Defaults(width=self.resolution, height=self.resolution),
            # Sprites cut out for training come out on the background colour: cut them out again.
            postprocess=PostProcess(remove_background=True) if self.had_alpha * 2 >= len(self.items) else PostProcess(),
            previews=previews,
        )
        stale = self._files_of_old_pack()
        save_stylepack(pack, self.out)  # last: a pack without style.toml is no pack, never a broken one
        for rel in stale - {lora_rel, *previews}:  # --force over an older pack: its LoRA and previews go
            (self.out / rel).unlink(missing_ok=True)
        return lora_path

    def _files_of_old_pack(self) -> set[str]:
        """The LoRA files and previews a pack already in the output folder names (replaced with --force)."""
        from asset_studio.core.stylepack import load_stylepack

        if not (self.out / "style.toml").is_file():
            return set()
        try:
            old = load_stylepack(self.out)
        except UserError:
            return set()
        return {lora.file for lora in old.loras if lora.file} | set(old.previews)
