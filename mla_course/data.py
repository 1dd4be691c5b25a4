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
(``MNIST/raw/...``). Otherwise torchvision downloads them (with its own
checksums) into the cache folder (``MLA_CACHE_DIR``, default
``~/.cache/mla_course``). Every payload is checked against the MD5 of the
original file, so a truncated or corrupt copy is reported by name.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset
from torchvision import datasets, transforms

from .utils import cache_dir, get_device

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
    md5: dict[str, str]  # MD5 of each uncompressed IDX file, as first published
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


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# (path, size, modification time) -> MD5: a file is hashed once per process, and
# again only if it changed on disk since.
_digests: dict[tuple[Path, int, int], str] = {}


def _matches(path: Path, md5: str) -> bool:
    """Whether the file at ``path`` has the MD5 ``md5``."""
    stat = path.stat()
    key = (path.resolve(), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        _digests[key] = _md5(path)
    return _digests[key] == md5


def _find_in_mirror(mirror: Path, info: DatasetInfo, stem: str) -> Path:
    for folder in (mirror, mirror / info.folder / "raw", mirror / "raw"):
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    raise DataError(
        f"{info.name}: {stem}(.gz) is not in the mirror folder {mirror} "
        f"({info.env} or data_dir). " + _HELP.format(name=info.name, env=info.env)
    )


def _copy_from_mirror(mirror: Path, info: DatasetInfo, raw: Path) -> None:
    """Materialise the mirror's files, uncompressed and checked, in torchvision's layout."""
    raw.mkdir(parents=True, exist_ok=True)
    for stem, md5 in info.md5.items():
        target = raw / stem
        if target.is_file() and _matches(target, md5):
            continue
        source = _find_in_mirror(mirror, info, stem)
        tmp = target.with_suffix(".tmp")
        try:
            opener = gzip.open if source.suffix == ".gz" else open
            with opener(source, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (OSError, EOFError, zlib.error) as err:
            tmp.unlink(missing_ok=True)
            raise DataError(
                f"{source} is corrupt or truncated ({err}). Replace it with a good copy of "
                f"{source.name}."
            ) from err
        if _md5(tmp) != md5:
            tmp.unlink(missing_ok=True)
            raise DataError(
                f"{source} does not hold the original {info.name} file {stem} (MD5 mismatch): "
                f"it is corrupt or another data set. Replace it with a good copy."
            )
        os.replace(tmp, target)  # atomic: an interrupted copy never leaves a half file


def _verify_cached(info: DatasetInfo, raw: Path) -> None:
    for stem, md5 in info.md5.items():
        path = raw / stem
        if not _matches(path, md5):
            raise DataError(f"{path} is corrupt (MD5 mismatch). Delete it and load the data again.")


def _prepare(info: DatasetInfo, data_dir: str | os.PathLike | None, download: bool) -> Path:
    """Return a torchvision root where ``<root>/<folder>/raw`` holds the checked files."""
    root = cache_dir() / "data"
    raw = root / info.folder / "raw"
    mirror = data_dir if data_dir is not None else os.environ.get(info.env)
    if not mirror and info.system_dir and Path(info.system_dir).is_dir():
        mirror = info.system_dir
    if mirror:
        mirror = Path(mirror).expanduser()
        if not mirror.is_dir():
            raise DataError(
                f"The mirror folder {mirror} ({info.env} or data_dir) does not exist. "
                + _HELP.format(name=info.name, env=info.env)
            )
        _copy_from_mirror(mirror, info, raw)
        return root
    if all((raw / stem).is_file() for stem in info.md5):
        _verify_cached(info, raw)
        return root
    if not download:
        raise DataError(
            f"{info.name} is not in {raw} and download=False. "
            + _HELP.format(name=info.name, env=info.env)
        )
    try:
        info.torchvision_class(root, train=True, download=True)
        info.torchvision_class(root, train=False, download=True)
    except Exception as err:  # torchvision raises RuntimeError, URLError, OSError...
        raise DataError(
            f"Could not download {info.name} ({type(err).__name__}: {err}). "
            + _HELP.format(name=info.name, env=info.env)
        ) from err
    _verify_cached(info, raw)
    return root


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
    """The torchvision ``Dataset`` of one split, as in the PyTorch tutorial.

    Images are tensors of shape ``(1, 28, 28)``, scaled to [0, 1] then normalised
    with the training-set mean and standard deviation, unless ``transform`` is given.
    """
    info = _info(name)
    _check_split(split)
    root = _prepare(info, data_dir, download)
    if transform is None:
        transform = transforms.Compose([transforms.ToTensor(), normalization(name)])
    return info.torchvision_class(root, train=split == "train", transform=transform)


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
    root = _prepare(info, data_dir, download=True)
    ds = info.torchvision_class(root, train=split == "train")
    images, labels = ds.data[:limit], ds.targets[:limit]  # uint8 (n, 28, 28), int64 (n,)
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
