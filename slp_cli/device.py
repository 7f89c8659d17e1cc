"""The one device helper every stage uses: ``--device auto|cpu|cuda|cuda:N``, with the same messages.

Under torchrun each process takes ``cuda:(LOCAL_RANK % device_count)``, which is also right when
a scheduler shows every process a single GPU (SLURM ``--gpus-per-task=1``: LOCAL_RANK may be 3
while the process sees only ``cuda:0``).
"""

from __future__ import annotations

import contextlib

from .errors import SlpError

CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str = "auto", *, local_rank: int | None = None):
    """The ``torch.device`` for ``name``; SlpError for an unknown name or a GPU that is not there."""
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda" and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise SlpError(f"unknown device {name!r}; use {CHOICES}")
    if not torch.cuda.is_available():
        raise SlpError(f"--device {name} asked for, but PyTorch sees no CUDA GPU here; use --device cpu")
    count = torch.cuda.device_count()
    if name == "cuda":
        return torch.device("cuda", (local_rank or 0) % count)
    if int(name[5:]) >= count:
        raise SlpError(f"--device {name}: this machine has {count} CUDA GPU(s) (cuda:0 to cuda:{count - 1})")
    return torch.device("cuda", int(name[5:]))


def to_device(batch, device):
    """Tensors of a (nested) batch moved to ``device``; other values unchanged."""
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def autocast(device, enabled: bool = True):
    """bf16 autocast on CUDA (when ``enabled``); full precision elsewhere."""
    import torch

    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
