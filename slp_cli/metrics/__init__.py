"""Scores for generated signing: exact DTW pose errors and back-translation text metrics.

Definitions follow docs/design.md, section 8. Imports are lazy so that importing ``slp_cli.metrics``
does not load numba or sacrebleu until a metric is used.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "dtw_mje": "dtw", "dtw_pa_jpe": "dtw", "dtw_scores": "dtw", "PROTOCOLS": "dtw",
    "bleu": "text", "chrf": "text", "rouge_l": "text", "wer": "text",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
