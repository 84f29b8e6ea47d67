"""Sampler names as artists know them (AUTOMATIC1111, Forge, civitai), the one table of them.

Each name maps to the diffusers scheduler and options that implement it, following diffusers' own
table ("Schedulers" docs: A1111/k-diffusion ↔ diffusers); engine/samplers.py builds them. Plain
data, so the request path, the GUI and the checks use it without importing diffusers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asset_studio.errors import UserError


@dataclass(frozen=True)
class Sampler:
    name: str
    scheduler: str  # diffusers class name
    options: dict = field(default_factory=dict)
    seeded: bool = False  # takes its noise from `noise_sampler_seed` rather than the generator


_SIGMAS_OFF = {"use_karras_sigmas": False}
_KARRAS = {"use_karras_sigmas": True}

SAMPLERS: dict[str, Sampler] = {
    s.name: s
    for s in [
        Sampler("Euler a", "EulerAncestralDiscreteScheduler"),
        Sampler("Euler", "EulerDiscreteScheduler", _SIGMAS_OFF),
        Sampler("Euler Karras", "EulerDiscreteScheduler", _KARRAS),
        Sampler("LMS", "LMSDiscreteScheduler", _SIGMAS_OFF),
        Sampler("LMS Karras", "LMSDiscreteScheduler", _KARRAS),
        Sampler("Heun", "HeunDiscreteScheduler", _SIGMAS_OFF),
        Sampler("Heun Karras", "HeunDiscreteScheduler", _KARRAS),
        Sampler("DPM2", "KDPM2DiscreteScheduler", _SIGMAS_OFF),
        Sampler("DPM2 Karras", "KDPM2DiscreteScheduler", _KARRAS),
        Sampler("DPM2 a", "KDPM2AncestralDiscreteScheduler", _SIGMAS_OFF),
        Sampler("DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", _KARRAS),
        Sampler("DPM++ 2M", "DPMSolverMultistepScheduler", {**_SIGMAS_OFF, "algorithm_type": "dpmsolver++"}),
        Sampler("DPM++ 2M Karras", "DPMSolverMultistepScheduler", {**_KARRAS, "algorithm_type": "dpmsolver++"}),
        Sampler("DPM++ 2M SDE", "DPMSolverMultistepScheduler", {**_SIGMAS_OFF, "algorithm_type": "sde-dpmsolver++"}),
        Sampler(
            "DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", {**_KARRAS, "algorithm_type": "sde-dpmsolver++"}
        ),
        Sampler("DPM++ SDE", "DPMSolverSDEScheduler", _SIGMAS_OFF, seeded=True),
        Sampler("DPM++ SDE Karras", "DPMSolverSDEScheduler", _KARRAS, seeded=True),
        Sampler("DPM++ 2S", "DPMSolverSinglestepScheduler", _SIGMAS_OFF),
        Sampler("DPM++ 2S Karras", "DPMSolverSinglestepScheduler", _KARRAS),
        Sampler("DDIM", "DDIMScheduler"),
        Sampler("PLMS", "PNDMScheduler", {"skip_prk_steps": True}),
        Sampler("UniPC", "UniPCMultistepScheduler", _SIGMAS_OFF),
        Sampler("DEIS", "DEISMultistepScheduler", _SIGMAS_OFF),
        Sampler("LCM", "LCMScheduler"),
        Sampler("TCD", "TCDScheduler"),
    ]
}

# Other spellings people paste: ComfyUI's sampler ids and common variants.
ALIASES = {
    "euler_ancestral": "Euler a",
    "euler a": "Euler a",
    "euler_a": "Euler a",
    "euler": "Euler",
    "lms": "LMS",
    "heun": "Heun",
    "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_karras": "DPM++ 2M Karras",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_2m_sde_karras": "DPM++ 2M SDE Karras",
    "dpmpp_sde": "DPM++ SDE",
    "dpmpp_sde_karras": "DPM++ SDE Karras",
    "ddim": "DDIM",
    "uni_pc": "UniPC",
    "lcm": "LCM",
}


def sampler_names() -> list[str]:
    return list(SAMPLERS)


def lookup(name: str) -> Sampler:
    """The sampler for a name (case and spacing forgiven), or a UserError listing the valid names."""
    key = " ".join(str(name).split())
    if key in SAMPLERS:
        return SAMPLERS[key]
    folded = {n.lower(): s for n, s in SAMPLERS.items()}
    if key.lower() in folded:
        return folded[key.lower()]
    alias = ALIASES.get(key.lower().replace(" ", "_")) or ALIASES.get(key.lower())
    if alias:
        return SAMPLERS[alias]
    raise UserError(f"Unknown sampler '{name}'; choose one of: {', '.join(SAMPLERS)}.")


def canonical_name(name: str) -> str:
    return lookup(name).name
