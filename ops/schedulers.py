"""Sampler choice by name: a diffusers scheduler built from the pipeline's own schedule.

A new scheduler is made with ``from_config(pipeline.scheduler.config)``, so the trained beta
schedule, prediction type and timestep spacing carry over; only the sampling method changes.
"""
from __future__ import annotations

from ..graph_runtime.errors import NodeInputError

#: combo name -> (diffusers class name, config overrides)
SCHEDULERS: dict[str, tuple[str, dict]] = {
    "default": ("", {}),
    "DDIM": ("DDIMScheduler", {}),
    "DDPM": ("DDPMScheduler", {}),
    "PNDM": ("PNDMScheduler", {}),
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "Euler Karras": ("EulerDiscreteScheduler", {"use_karras_sigmas": True}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "DPM2": ("KDPM2DiscreteScheduler", {}),
    "DPM2 ancestral": ("KDPM2AncestralDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": False}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True}),
    "DPM++ 2M SDE Karras": ("DPMSolverMultistepScheduler",
                            {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True}),
    "DPM++ 2S": ("DPMSolverSinglestepScheduler", {}),
    "DEIS": ("DEISMultistepScheduler", {}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "LMS Karras": ("LMSDiscreteScheduler", {"use_karras_sigmas": True}),
    "LCM": ("LCMScheduler", {}),
}


def make_scheduler(name: str, base_config):
    """A scheduler for ``name`` on the schedule of ``base_config``; None for 'default'."""
    if name not in SCHEDULERS:
        raise NodeInputError("scheduler", f"expected one of {list(SCHEDULERS)}, got {name!r}")
    class_name, overrides = SCHEDULERS[name]
    if not class_name:
        return None
    import diffusers

    try:
        cls = getattr(diffusers, class_name)
        return cls.from_config(base_config, **overrides)
    except ImportError as exc:  # LMS needs scipy, which is not a dependency of the pack
        raise NodeInputError("scheduler", f"{name} needs a package that is not installed: {exc}") from exc
