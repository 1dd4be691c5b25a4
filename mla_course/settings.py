"""Run-time settings: every ``MLA_*`` environment variable the package reads, parsed here.

Quick mode (``MLA_QUICK=1``) shrinks every experiment to seconds on a CPU: the
tests and ``nox -s docs-quick`` use it. The book itself is built without it.

Every setting read from the environment is checked when it is first used, and a
bad value is refused with an error that names the variable, the value and what
is allowed:

========================  ==========================================================
``MLA_QUICK``             1/true/yes/on or 0/false/no/off (default off)
``MLA_NO_CACHE``          same flag values: recompute instead of reading the cache
``MLA_DEVICE``            ``cpu``, ``cuda`` or ``cuda:N`` (default: CUDA if present)
``MLA_CACHE_DIR``         a folder that can be created (default ``~/.cache/mla_course``)
``MLA_SEED_OFFSET``       an integer added to every seed (default 0)
``MLA_PROGRESS``          flag: progress bars on a terminal (default) or never (off)
``MLA_CUDA_GRAPH``        ``auto`` (default), ``off`` or ``require``
``MLA_CLAIMS_DIR``        a folder where every checked claim is recorded (the docs set it)
``MLA_COMPUTE_DIR``       a folder where each page's training compute is recorded (same)
========================  ==========================================================

The data folders ``MLA_DATA_DIR`` and ``MLA_FASHION_DATA_DIR`` are read by
:mod:`mla_course.data`, which checks the files they name.

Float32 matrix products are pinned to full IEEE float32 (no TensorFloat-32)
whenever a device is chosen (:func:`get_device`): TF32 rounds the inputs of a
product to 10 mantissa bits, which moves the book's numbers on a GPU and breaks
the agreement tests. :func:`float32_matmul_precision` says what is in force.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import platformdirs
import torch

__all__ = [
    "CacheDirError",
    "cache_dir",
    "claims_dir",
    "compute_dir",
    "cuda_graph_mode",
    "float32_matmul_precision",
    "generator",
    "get_device",
    "pick",
    "pin_float32_precision",
    "progress",
    "quick",
    "seed_everything",
    "seed_offset",
    "shifted_seed",
]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")

# torch.manual_seed and torch.Generator.manual_seed take a 64-bit seed.
SEED_MAX = 2**64 - 1


class SettingError(ValueError):
    """An environment variable holds a value the package cannot use."""


def _flag(name: str) -> bool:
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if value in _FALSE:
        return False
    if value in _TRUE:
        return True
    raise SettingError(
        f"{name}={raw!r}: expected one of {', '.join(_TRUE)} (on) "
        f"or {', '.join(v for v in _FALSE if v)} (off)"
    )


def quick() -> bool:
    """Whether quick mode is on (environment variable ``MLA_QUICK``)."""
    return _flag("MLA_QUICK")


def progress() -> bool | None:
    """``MLA_PROGRESS``: ``None`` (bars on a terminal only, the default) or ``False`` (never)."""
    return (
        None if _flag("MLA_PROGRESS") or not os.environ.get("MLA_PROGRESS", "").strip() else False
    )


_GRAPH_MODES = {"": "auto", "auto": "auto", "1": "auto", "on": "auto", "true": "auto"}
_GRAPH_MODES |= {"yes": "auto", "0": "off", "off": "off", "false": "off", "no": "off"}
_GRAPH_MODES |= {"require": "require"}


def cuda_graph_mode() -> str:
    """``MLA_CUDA_GRAPH`` as ``"auto"``, ``"off"`` or ``"require"``."""
    raw = os.environ.get("MLA_CUDA_GRAPH", "")
    try:
        return _GRAPH_MODES[raw.strip().lower()]
    except KeyError:
        raise SettingError(
            f"MLA_CUDA_GRAPH={raw!r}: expected auto (the default; also 1, on, true, yes), "
            f"off (also 0, false, no) or require"
        ) from None


def compute_dir() -> Path | None:
    """``MLA_COMPUTE_DIR``: where the runs' network-steps and FLOPs are recorded, or ``None``."""
    raw = os.environ.get("MLA_COMPUTE_DIR", "").strip()
    return Path(raw) if raw else None


def claims_dir() -> Path | None:
    """``MLA_CLAIMS_DIR``: where checked claims are recorded, or ``None`` (not recorded)."""
    raw = os.environ.get("MLA_CLAIMS_DIR", "").strip()
    return Path(raw) if raw else None


def pick(full, quick_value):
    """Return ``quick_value`` in quick mode and ``full`` otherwise.

    Gallery scripts state their budget once, in plain sight::

        epochs = pick(full=20, quick_value=1)
    """
    return quick_value if quick() else full


_DEVICE_FORM = re.compile(r"(cpu|cuda(:\d+)?)")
_ALLOWED_DEVICES = "'cpu', 'cuda' or 'cuda:N' (N the index of a GPU)"


def _parse_device(device, name: str) -> torch.device:
    """``device`` as a ``torch.device``, or an error naming ``name`` (argument or variable)."""
    if isinstance(device, torch.device):
        text = str(device)
    elif isinstance(device, str):
        text = device.strip().lower()
    else:
        raise TypeError(f"{name}={device!r}: expected a str or torch.device, {_ALLOWED_DEVICES}")
    if not _DEVICE_FORM.fullmatch(text):
        raise SettingError(f"{name}={device!r}: expected {_ALLOWED_DEVICES}")
    parsed = torch.device(text)
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise SettingError(f"{name}={text!r}: CUDA is not available on this machine; use 'cpu'")
        override = os.environ.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "").strip()
        if override not in ("", "0"):
            raise SettingError(
                f"TORCH_ALLOW_TF32_CUBLAS_OVERRIDE={override!r} switches TF32 on for every "
                f"float32 matrix product, which changes the book's numbers: unset it or set 0"
            )
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise SettingError(
                f"{name}={text!r}: this machine has {count} CUDA device(s), "
                f"'cuda:0' to 'cuda:{count - 1}'"
            )
    return parsed


def pin_float32_precision() -> None:
    """Full IEEE float32 for matrix products and convolutions: TF32 off.

    :func:`get_device` calls it; the test and docs configurations call it too, for code
    that computes before choosing a device.
    """
    torch.set_float32_matmul_precision("highest")
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision"):  # torch >= 2.9: the per-backend form
        matmul.fp32_precision = "ieee"
        cudnn.conv.fp32_precision = "ieee"
        cudnn.rnn.fp32_precision = "ieee"
    else:  # pragma: no cover - older torch
        matmul.allow_tf32 = False
        cudnn.allow_tf32 = False


def float32_matmul_precision() -> str:
    """What float32 matrix products and convolutions use, for the bench record and the
    book's build line: ``"ieee"`` (full float32, the setting :func:`get_device` pins), else
    a description of the TF32 settings in force, e.g. ``"tf32 allowed (matmul=tf32, ...)"``.
    """
    if os.environ.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "").strip() not in ("", "0"):
        return "tf32 forced (TORCH_ALLOW_TF32_CUBLAS_OVERRIDE)"
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision"):  # torch >= 2.9: read the form we set
        flags = {
            "matmul": matmul.fp32_precision,
            "cudnn.conv": cudnn.conv.fp32_precision,
            "cudnn.rnn": cudnn.rnn.fp32_precision,
        }
        ieee = all(v == "ieee" for v in flags.values())
    else:  # pragma: no cover - older torch
        flags = {"matmul.allow_tf32": matmul.allow_tf32, "cudnn.allow_tf32": cudnn.allow_tf32}
        ieee = not any(flags.values())
    flags["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    if ieee and flags["float32_matmul_precision"] == "highest":
        return "ieee"
    return "tf32 allowed (" + ", ".join(f"{k}={v}" for k, v in flags.items()) + ")"


def get_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``device`` if given, else ``MLA_DEVICE``, else CUDA if present.

    Accepted values: ``cpu``, ``cuda`` or ``cuda:N``. Choosing a device also pins
    float32 matrix products to full IEEE precision (no TF32).
    """
    if device is not None:
        parsed = _parse_device(device, "device")
    elif os.environ.get("MLA_DEVICE", "").strip():
        parsed = _parse_device(os.environ["MLA_DEVICE"], "MLA_DEVICE")
    else:
        parsed = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pin_float32_precision()
    return parsed


def seed_offset() -> int:
    """The integer ``MLA_SEED_OFFSET`` (default 0) added to every seed the book uses.

    Rebuilding with another offset reruns every experiment on other seeds: a claim
    that holds only for the seeds first chosen shows up as a failed check.
    """
    raw = os.environ.get("MLA_SEED_OFFSET", "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(
            f"MLA_SEED_OFFSET={raw!r}: expected an integer in [0, {SEED_MAX}] (default 0)"
        ) from None
    if not 0 <= value <= SEED_MAX:
        raise SettingError(
            f"MLA_SEED_OFFSET={raw!r}: expected an integer in [0, {SEED_MAX}] (default 0)"
        )
    return value


def shifted_seed(seed: int) -> int:
    """``seed + MLA_SEED_OFFSET``, checked to be a seed torch accepts ([0, 2**64 - 1])."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed={seed!r}: expected an integer in [0, 2**64 - 1] = [0, {SEED_MAX}]")
    offset = seed_offset()
    if seed + offset > SEED_MAX:
        raise ValueError(
            f"seed={seed!r} + MLA_SEED_OFFSET={offset} = {seed + offset} is past {SEED_MAX}: "
            f"seeds must lie in [0, 2**64 - 1]"
        )
    return seed + offset


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch with ``seed`` shifted by ``MLA_SEED_OFFSET``; return a
    CPU generator seeded the same way.

    ``seed`` is the book's own seed, an integer in [0, 2**64 - 1]; the offset is
    added here (:func:`shifted_seed`), so callers pass the seed unshifted. The
    returned generator drives the order of mini-batches, so two runs with the same
    seed see the same batches in the same order.
    """
    seed = shifted_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 -- seeds legacy np.random users too
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` shifted by ``MLA_SEED_OFFSET``: pages write
    ``generator(0)`` and rebuilding with another offset draws other numbers."""
    return torch.Generator().manual_seed(shifted_seed(seed))


class CacheDirError(OSError):
    """``MLA_CACHE_DIR`` (or the default cache folder) cannot be created or written."""


def cache_dir() -> Path:
    """Where downloaded data and cached results live (``MLA_CACHE_DIR``, else the user's
    cache folder, ``~/.cache/mla_course`` on Linux), created if need be.

    Raises :class:`CacheDirError`, naming ``MLA_CACHE_DIR``, if the folder cannot
    be created (it is a file, or its parent is read-only).
    """
    given = os.environ.get("MLA_CACHE_DIR", "").strip()
    path = Path(given or platformdirs.user_cache_dir("mla_course")).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        what = f"MLA_CACHE_DIR={given!r}" if given else f"the default cache folder {path}"
        reason = "it is a file" if path.exists() and not path.is_dir() else err.strerror or err
        raise CacheDirError(
            f"{what}: cannot create the folder ({reason}). Set MLA_CACHE_DIR to a writable folder."
        ) from err
    return path
