"""Padding ragged sequences into batches: shared by the data loaders, the text encoders and the
decoders (it sits below all of them)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def pad(arrays: Sequence[np.ndarray], value: float = 0.0, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (T_i, ...) arrays into (B, T_max, ...) and a (B, T_max) bool mask of real frames."""
    t_max = max(len(a) for a in arrays)
    first = np.asarray(arrays[0])
    out = np.full((len(arrays), t_max, *first.shape[1:]), value, dtype=first.dtype)
    mask = np.zeros((len(arrays), t_max), dtype=bool)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
        mask[i, :len(a)] = True
    return torch.as_tensor(out, dtype=dtype), torch.from_numpy(mask)


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over time (dim 1) of (B, T, d) features at the real positions of ``valid`` (B, T)."""
    w = valid.to(x.dtype)[..., None]
    return (x * w).sum(1) / w.sum(1).clamp(min=1)
