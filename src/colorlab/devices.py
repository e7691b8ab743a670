"""Which device a job runs on, and its mixed precision: the one place that resolves them."""

from __future__ import annotations

import contextlib

import torch

from colorlab.errors import OptionError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; ``cpu``, ``cuda``, ``cuda:N`` as asked
    (`OptionError` for a name that is no device, or CUDA where there is none)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise OptionError("device", str(device), "choose auto, cpu, cuda or cuda:N") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(
            "device", str(device), "use auto or cpu", "asks for CUDA, which is not available"
        )
    return resolved


def accelerator_device(accelerator: str = "auto") -> torch.device:
    """The device a Lightning ``accelerator`` trains on: its first GPU, or the CPU."""
    if str(accelerator) in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def autocast(
    device: torch.device, precision: str = "bf16-mixed"
) -> contextlib.AbstractContextManager:
    """Autocast for a Lightning ``precision`` (``bf16-mixed``, ``16-mixed``; else none) on
    ``device``; inference uses bf16 on CUDA and float32 on the CPU."""
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(str(precision))
    if dtype is None or (device.type == "cpu" and dtype is torch.float16):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (timing; nothing on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
