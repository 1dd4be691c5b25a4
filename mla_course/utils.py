"""Run-time settings shared by the whole package: quick mode, device, seeds, cache folder.

Quick mode (``MLA_QUICK=1``) shrinks every experiment to seconds on a CPU: the
tests and ``nox -s docs-quick`` use it. The book itself is built without it.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

__all__ = ["cache_dir", "get_device", "pick", "quick", "seed_everything"]


def _flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name}={value!r}: expected 1/true/yes/on or 0/false/no/off")


def quick() -> bool:
    """Whether quick mode is on (environment variable ``MLA_QUICK``)."""
    return _flag("MLA_QUICK")


def pick(full, quick_value):
    """Return ``quick_value`` in quick mode and ``full`` otherwise.

    Gallery scripts state their budget once, in plain sight::

        epochs = pick(full=20, quick_value=1)
    """
    return quick_value if quick() else full


def get_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``device`` if given, else ``MLA_DEVICE``, else CUDA if present."""
    if device is None:
        device = os.environ.get("MLA_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r}: CUDA is not available on this machine; use 'cpu'"
        )
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a CPU generator seeded with ``seed``.

    The returned generator drives the order of mini-batches, so two runs with
    the same seed see the same batches in the same order.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r}: expected a non-negative integer")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 -- seeds legacy np.random users too
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def cache_dir() -> Path:
    """Where downloaded data and cached results live (``MLA_CACHE_DIR``, else ``~/.cache/mla_course``)."""
    root = os.environ.get("MLA_CACHE_DIR") or Path.home() / ".cache" / "mla_course"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
