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

import atexit
import gzip
import hashlib
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset
from torchvision import datasets, transforms

from .utils import CacheDirError, cache_dir, file_mode, get_device, warn_unwritable

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: unique temporary names still keep it safe
    fcntl = None

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


def _denied(path: Path, what: str, info: DatasetInfo) -> DataError:
    return DataError(
        f"{path}: permission denied, cannot read this {what} ({info.env} or data_dir). "
        f"Make it readable (chmod) or copy the files to a folder of yours."
    )


def _find_in_mirror(mirror: Path, info: DatasetInfo, stem: str) -> Path:
    for folder in (mirror, mirror / info.folder / "raw", mirror / "raw"):
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            try:
                if candidate.is_file():
                    return candidate
            except PermissionError:
                raise _denied(folder, "mirror folder", info) from None
    raise DataError(
        f"{info.name}: {stem}(.gz) is not in the mirror folder {mirror} "
        f"({info.env} or data_dir). " + _HELP.format(name=info.name, env=info.env)
    )


class _Unwritable(Exception):
    """The cache folder cannot be written (read-only, a file, disk full)."""


def _good(path: Path, md5: str) -> bool:
    """Whether ``path`` is a file with the MD5 ``md5``."""
    try:
        return path.is_file() and _matches(path, md5)
    except FileNotFoundError:  # replaced by another process meanwhile
        return False


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (a ``.lock`` file in it) between processes.

    Raises :class:`_Unwritable` if the folder or its lock file cannot be written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise _Unwritable(err) from err
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed
        yield
    finally:
        os.close(fd)


def _copy_checked(source: Path, target: Path, md5: str, info: DatasetInfo) -> None:
    """Copy (and gunzip) ``source`` to ``target`` through a temporary file of this process,
    checked against ``md5`` before it is renamed into place."""
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-", suffix=".tmp")
    except OSError as err:
        raise _Unwritable(err) from err
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as dst:
            try:
                opener = gzip.open if source.suffix == ".gz" else open
                src = opener(source, "rb")
            except PermissionError:
                raise _denied(source, "mirror file", info) from None
            with src:
                while True:
                    try:
                        block = src.read(1 << 20)
                    except PermissionError:
                        raise _denied(source, "mirror file", info) from None
                    except (OSError, EOFError, zlib.error) as err:
                        raise DataError(
                            f"{source} is corrupt or truncated ({err}). Replace it with a good "
                            f"copy of {source.name}."
                        ) from err
                    if not block:
                        break
                    try:
                        dst.write(block)
                    except OSError as err:
                        raise _Unwritable(err) from err
            os.fchmod(dst.fileno(), file_mode())  # mkstemp makes 0600: usual rights
        if _md5(tmp) != md5:
            raise DataError(
                f"{source} does not hold the original {info.name} file {target.name} "
                f"(MD5 mismatch): it is corrupt or another data set. Replace it with a good copy."
            )
        os.replace(tmp, target)  # atomic: readers see no file or the whole checked file
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _copy_from_mirror(mirror: Path, info: DatasetInfo, raw: Path) -> None:
    """Materialise the mirror's files, uncompressed and checked, in torchvision's layout.

    Safe with any number of processes at once: each copies through a temporary
    file of its own, under a lock, and renames it into place atomically.
    """
    if all(_good(raw / stem, md5) for stem, md5 in info.md5.items()):
        return  # nothing to write: also works in a read-only cache
    with _locked(raw.parent):
        for stem, md5 in info.md5.items():
            target = raw / stem
            if not _good(target, md5):  # another process may have copied it meanwhile
                raw.mkdir(parents=True, exist_ok=True)
                _copy_checked(_find_in_mirror(mirror, info, stem), target, md5, info)


def _verify_cached(info: DatasetInfo, raw: Path) -> None:
    for stem, md5 in info.md5.items():
        path = raw / stem
        if not _matches(path, md5):
            raise DataError(f"{path} is corrupt (MD5 mismatch). Delete it and load the data again.")


class _Checked:
    """torchvision's classes, reading only the MD5-checked raw files.

    torchvision still loads a legacy ``<root>/<folder>/processed/training.pt`` if
    one is there, in place of the raw files and unchecked. These subclasses (same
    names, so same folders) never do.
    """

    class MNIST(datasets.MNIST):
        def _check_legacy_exist(self) -> bool:
            return False

    class FashionMNIST(datasets.FashionMNIST):
        def _check_legacy_exist(self) -> bool:
            return False


def _checked_class(info: DatasetInfo) -> type:
    return getattr(_Checked, info.torchvision_class.__name__)


_scratch: Path | None = None


def _scratch_root() -> Path:
    """A private temporary folder for the data when the cache folder cannot be written."""
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="mla_course-data-"))
        atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
    return _scratch


def _prepare(info: DatasetInfo, data_dir: str | os.PathLike | None, download: bool) -> Path:
    """Return a torchvision root where ``<root>/<folder>/raw`` holds the checked files.

    If the cache folder cannot be written, warn once (naming ``MLA_CACHE_DIR``)
    and prepare the files in a temporary folder of this process instead.
    """
    try:
        root = cache_dir() / "data"
    except CacheDirError as err:
        warn_unwritable(err, "the data cache")
        root = None
    if root is not None:
        try:
            return _prepare_in(root, info, data_dir, download)
        except _Unwritable as err:
            warn_unwritable(err.__cause__ or err, "the data cache")
    try:
        return _prepare_in(_scratch_root(), info, data_dir, download)
    except _Unwritable as err:
        raise DataError(
            f"Neither the cache folder (MLA_CACHE_DIR) nor a temporary folder can be written "
            f"({err.__cause__ or err}): cannot prepare {info.name}."
        ) from err


def _prepare_in(
    root: Path, info: DatasetInfo, data_dir: str | os.PathLike | None, download: bool
) -> Path:
    raw = root / info.folder / "raw"
    mirror = data_dir if data_dir is not None else os.environ.get(info.env)
    if not mirror and info.system_dir and Path(info.system_dir).is_dir():
        mirror = info.system_dir
    if mirror:
        mirror = Path(mirror).expanduser()
        try:
            exists = mirror.is_dir()
        except PermissionError:
            raise _denied(mirror, "mirror folder", info) from None
        if not exists:
            raise DataError(
                f"The mirror folder {mirror} ({info.env} or data_dir) does not exist. "
                + _HELP.format(name=info.name, env=info.env)
            )
        if not os.access(mirror, os.R_OK | os.X_OK):
            raise _denied(mirror, "mirror folder", info)
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
    with _locked(root / info.folder):
        try:
            if not all((raw / stem).is_file() for stem in info.md5):
                _checked_class(info)(root, train=True, download=True)
                _checked_class(info)(root, train=False, download=True)
        except PermissionError as err:
            raise _Unwritable(err) from err
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
    return _checked_class(info)(root, train=split == "train", transform=transform)


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
    ds = _checked_class(info)(root, train=split == "train")
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
