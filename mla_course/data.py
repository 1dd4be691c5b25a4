"""MNIST and Fashion-MNIST, two ways in.

* :func:`load_dataset` and :func:`make_loader`: the ``torchvision`` ``Dataset`` and
  ``DataLoader`` of the PyTorch tutorial the lecture points to.
* :func:`load_tensors` and :func:`iterate_batches`: the fast path. A whole split
  is one normalised tensor on the device and mini-batches are slices of it, so a
  training step moves no data between host and device.

Where the data comes from
-------------------------
If the environment variable ``MLA_DATA_DIR`` (``MLA_FASHION_DATA_DIR`` for
Fashion-MNIST, which is also found where Debian's ``dataset-fashion-mnist``
installs it), or the ``data_dir`` argument, names a folder, the four IDX files are read from there and nothing is
downloaded. The folder may hold them gzipped (``train-images-idx3-ubyte.gz``,
...) as published, uncompressed, or in torchvision's own layout
(``MNIST/raw/...``). They are read where they are and nothing is written.
Otherwise ``torchvision.datasets.MNIST(root, download=True)`` downloads them
(with its own checksums) into the cache folder (``MLA_CACHE_DIR``, default
``~/.cache/mla_course``), and they are read from there. Every file is read at
most to its known size (so a gzip bomb stops early) and its payload checked
against the MD5 of the original, so a truncated or corrupt copy is reported by name.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset
from torchvision import datasets, transforms

from .settings import CacheDirError, cache_dir, get_device

__all__ = [
    "DATASETS",
    "DataError",
    "iterate_batches",
    "load_dataset",
    "load_tensors",
    "make_loader",
]


class DataError(RuntimeError):
    """The data set is missing, cannot be downloaded, or a file is corrupt."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    torchvision_class: type
    folder: str  # torchvision's folder under the root: <root>/<folder>/raw
    mean: float  # training-set pixel mean after scaling to [0, 1]
    std: float
    classes: tuple[str, ...]
    md5: dict[str, str]  # MD5 of each uncompressed IDX file of the published .gz files
    env: str  # the environment variable that names a local mirror
    system_dir: str | None = None  # where a system package installs the files, if any


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist",
        datasets.MNIST,
        "MNIST",
        0.1307,
        0.3081,
        tuple(str(i) for i in range(10)),
        {
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
        "MLA_DATA_DIR",
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        datasets.FashionMNIST,
        "FashionMNIST",
        0.2860,
        0.3530,
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        {
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        "MLA_FASHION_DATA_DIR",
        "/usr/share/datasets/fashion-mnist",  # Debian: apt-get install dataset-fashion-mnist
    ),
}

_SPLITS = ("train", "test")
# Bytes of each uncompressed IDX file: a 16-byte header (magic, n, 28, 28) then the
# pixels, or an 8-byte header (magic, n) then the labels.
_SIZES = {
    "train-images-idx3-ubyte": 16 + 60_000 * 28 * 28,
    "train-labels-idx1-ubyte": 8 + 60_000,
    "t10k-images-idx3-ubyte": 16 + 10_000 * 28 * 28,
    "t10k-labels-idx1-ubyte": 8 + 10_000,
}

_HELP = (
    "To use a local copy instead, set the environment variable {env} (or pass "
    "data_dir=...) to a folder holding the four {name} IDX files: "
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
    "t10k-labels-idx1-ubyte.gz (gzipped or not), e.g. {env}=/path/to/{name}."
)


def _info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"name={name!r}: expected one of {sorted(DATASETS)}") from None


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise ValueError(f"split={split!r}: expected one of {list(_SPLITS)}")


def _denied(path: Path, what: str, source: str) -> DataError:
    return DataError(
        f"{path}: permission denied, cannot read this {what} ({source}). "
        f"Make it readable (chmod) or copy the files to a folder of yours."
    )


def _find(folder: Path, info: DatasetInfo, stem: str, source: str) -> Path:
    """The regular file ``stem`` or ``stem.gz`` in ``folder`` or its torchvision layout."""
    for where in (folder, folder / info.folder / "raw", folder / "raw"):
        for candidate in (where / stem, where / f"{stem}.gz"):
            try:
                mode = candidate.stat().st_mode
            except FileNotFoundError:
                continue
            except NotADirectoryError:
                break  # e.g. <folder>/MNIST is a file: not this layout
            except PermissionError:
                raise _denied(where, "mirror folder", source) from None
            if not stat.S_ISREG(mode):
                raise DataError(
                    f"{candidate} ({source}) is not a regular file (a directory?): expected the "
                    f"{info.name} IDX file {stem}, gzipped or not."
                )
            return candidate
    raise DataError(
        f"{info.name}: {stem}(.gz) is not in the mirror folder {folder} ({source}). "
        + _HELP.format(name=info.name, env=info.env)
    )


def _read(path: Path, info: DatasetInfo, stem: str, source: str, fix: str) -> np.ndarray:
    """The IDX file at ``path`` as a uint8 array, read at most to its known size, MD5-checked."""
    size = _SIZES[stem]
    buf = bytearray(size + 1)  # one byte more: a longer file is caught without reading it all
    view, n = memoryview(buf), 0
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            while n < len(buf) and (got := f.readinto(view[n:])):
                n += got
    except PermissionError:
        raise _denied(path, "mirror file", source) from None
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path} is corrupt or truncated ({err}). {fix}") from err
    if n != size:
        got = f"more than {size}" if n > size else str(n)
        raise DataError(
            f"{path} is corrupt or truncated: it holds {got} bytes (uncompressed), the original "
            f"{info.name} file {stem} has {size}. {fix}"
        )
    if hashlib.md5(view[:size], usedforsecurity=False).hexdigest() != info.md5[stem]:
        raise DataError(
            f"{path} does not hold the original {info.name} file {stem} (MD5 mismatch): it is "
            f"corrupt or another data set. {fix}"
        )
    ndim = buf[3]  # IDX header: 0, 0, type (0x08: unsigned byte), ndim, then ndim big-endian int32
    shape = tuple(int(d) for d in np.frombuffer(buf, ">i4", count=ndim, offset=4))
    return np.frombuffer(buf, np.uint8, count=size - 4 - 4 * ndim, offset=4 + 4 * ndim).reshape(
        shape
    )


def _folder(info: DatasetInfo, data_dir, download: bool) -> tuple[Path, str, str]:
    """Where the files are, what named that folder, and how to fix a bad file there."""
    if data_dir is not None:
        folder, source = data_dir, "data_dir"
    elif os.environ.get(info.env):
        folder, source = os.environ[info.env], info.env
    elif info.system_dir and Path(info.system_dir).is_dir():
        folder, source = info.system_dir, f"the system's folder, {info.env} unset"
    else:
        folder = None
    if folder is not None:
        folder = Path(folder).expanduser()
        try:
            found = folder.is_dir()
        except PermissionError:
            raise _denied(folder, "mirror folder", source) from None
        if not found:
            raise DataError(
                f"{source}={str(folder)!r}: the mirror folder does not exist or is not a "
                "folder. " + _HELP.format(name=info.name, env=info.env)
            )
        return folder, source, "Replace it with a good copy of the original file."
    try:
        root = cache_dir() / "data"
    except CacheDirError as err:
        raise DataError(f"{err} " + _HELP.format(name=info.name, env=info.env)) from err
    raw = root / info.folder / "raw"
    if not all((raw / stem).is_file() for stem in info.md5):
        if not download:
            raise DataError(
                f"{info.name} is not in {raw} and download=False. "
                + _HELP.format(name=info.name, env=info.env)
            )
        try:
            info.torchvision_class(str(root), train=False, download=True)
        except Exception as err:  # torchvision raises RuntimeError, URLError, OSError...
            raise DataError(
                f"Could not download {info.name} into {root} (MLA_CACHE_DIR) "
                f"({type(err).__name__}: {err}). " + _HELP.format(name=info.name, env=info.env)
            ) from err
    return raw, "the cache folder, MLA_CACHE_DIR", "Delete it and load the data again."


def _load(
    info: DatasetInfo, split: str, data_dir, download: bool
) -> tuple[torch.Tensor, torch.Tensor, Path]:
    """Images ``(n, 28, 28)`` uint8 and labels ``(n,)`` int64 of a split, and their folder."""
    folder, source, fix = _folder(info, data_dir, download)
    prefix = "train" if split == "train" else "t10k"
    arrays = []
    for kind in ("labels-idx1", "images-idx3"):
        stem = f"{prefix}-{kind}-ubyte"
        arrays.append(_read(_find(folder, info, stem, source), info, stem, source, fix))
    labels, images = arrays
    return torch.from_numpy(images), torch.from_numpy(labels).long(), folder


class _Images(datasets.VisionDataset):
    """One split, item by item as ``torchvision.datasets.MNIST`` gives it: a PIL image
    (mode ``L``) through ``transform``, and an ``int`` label."""

    def __init__(self, info: DatasetInfo, images, labels, root: Path, transform) -> None:
        super().__init__(str(root), transform=transform)
        self.data, self.targets, self.classes = images, labels, list(info.classes)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.data[index].numpy())  # uint8 (28, 28): mode "L"
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])

    def __len__(self) -> int:
        return len(self.data)


def normalization(name: str = "mnist") -> transforms.Normalize:
    """The ``Normalize`` transform with the training-set mean and standard deviation."""
    info = _info(name)
    return transforms.Normalize((info.mean,), (info.std,))


def load_dataset(
    name: str = "mnist",
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    transform=None,
) -> Dataset:
    """The ``Dataset`` of one split, item by item as ``torchvision.datasets.MNIST`` gives it.

    Images are tensors of shape ``(1, 28, 28)``, scaled to [0, 1] then normalised
    with the training-set mean and standard deviation, unless ``transform`` is given.
    """
    info = _info(name)
    _check_split(split)
    images, labels, folder = _load(info, split, data_dir, download)
    if transform is None:
        transform = transforms.Compose([transforms.ToTensor(), normalization(name)])
    return _Images(info, images, labels, folder, transform)


def make_loader(
    name: str = "mnist",
    split: str = "train",
    *,
    batch_size: int = 64,
    shuffle: bool | None = None,
    limit: int | None = None,
    generator: torch.Generator | None = None,
    data_dir: str | os.PathLike | None = None,
    **loader_kwargs,
) -> DataLoader:
    """A ``DataLoader`` over one split (shuffled for ``train`` unless told otherwise).

    ``limit`` keeps the first ``limit`` examples. With the same ``generator`` state,
    the order of examples is the one :func:`iterate_batches` gives.
    """
    _check_positive("batch_size", batch_size)
    dataset = load_dataset(name, split, data_dir=data_dir)
    if limit is not None:
        _check_positive("limit", limit)
        dataset = Subset(dataset, range(min(limit, len(dataset))))
    if shuffle is None:
        shuffle = split == "train"
    # The sampler, not the loader, gets the generator: a DataLoader draws a worker seed
    # from its own generator first, which would shift the order of the examples.
    sampler = RandomSampler(dataset, generator=generator) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, **loader_kwargs)


def load_tensors(
    name: str = "mnist",
    split: str = "train",
    *,
    device: str | torch.device | None = None,
    limit: int | None = None,
    flatten: bool = True,
    normalize: bool = True,
    data_dir: str | os.PathLike | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split as two tensors on ``device``: images and labels.

    Returns ``X`` of shape ``(n, 784)`` (or ``(n, 1, 28, 28)`` with ``flatten=False``),
    float32 and normalised like :func:`load_dataset`, and ``y`` of shape ``(n,)``, int64.
    ``limit`` keeps the first ``limit`` examples.
    """
    info = _info(name)
    _check_split(split)
    if limit is not None:
        _check_positive("limit", limit)
    images, labels, _ = _load(info, split, data_dir, download=True)
    images, labels = images[:limit], labels[:limit]  # uint8 (n, 28, 28), int64 (n,)
    X = images.to(torch.float32).div_(255.0)
    if normalize:
        X = X.sub_(info.mean).div_(info.std)
    X = X.reshape(len(X), -1) if flatten else X.unsqueeze(1)
    device = get_device(device)
    return X.to(device), labels.to(device)


def iterate_batches(
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield mini-batches ``(X[idx], y[idx])`` of a device-resident split.

    The permutation is drawn on the CPU from ``generator`` exactly as a
    ``DataLoader(shuffle=True, generator=generator)`` would draw it.
    """
    _check_positive("batch_size", batch_size)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}: they must match")
    n = len(X)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(X.device)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield X[idx], y[idx]


def classes(name: str = "mnist") -> tuple[str, ...]:
    """The class names of a data set."""
    return _info(name).classes


def _check_positive(arg: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{arg}={value!r}: expected a positive integer")
