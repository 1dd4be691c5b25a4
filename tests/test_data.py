import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
import urllib.error
from pathlib import Path

import pytest
import torch
from torchvision import datasets

from mla_course import data


@pytest.fixture
def no_download(monkeypatch):
    """Fail the test if anything tries to download."""

    def refuse(self, *args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(datasets.MNIST, "download", refuse)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_mirror_is_used_and_nothing_downloaded(mirror, fresh_cache, no_download):
    X, y = data.load_tensors("mnist", "test")
    assert X.shape == (10_000, 784) and X.dtype == torch.float32
    assert y.shape == (10_000,) and y.dtype == torch.int64
    assert sorted(y.unique().tolist()) == list(range(10))
    assert not fresh_cache.exists()  # read in place: nothing written, not even the folder


def test_training_split_is_normalised(mirror, no_download):
    X, _ = data.load_tensors("mnist", "train")
    assert X.shape == (60_000, 784)
    assert abs(X.mean().item()) < 1e-3 and abs(X.std().item() - 1) < 1e-3


def test_torchvision_layout_and_uncompressed_mirror(mirror, tmp_path, fresh_cache, no_download):
    raw = tmp_path / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in mirror.glob("*.gz"):
        with gzip.open(gz, "rb") as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    X, y = data.load_tensors("mnist", "test", data_dir=tmp_path / "tv", limit=100)
    X_ref, y_ref = data.load_tensors("mnist", "test", data_dir=mirror, limit=100)
    torch.testing.assert_close(X, X_ref)
    assert torch.equal(y, y_ref)


def test_no_mirror_and_no_network_gives_one_clear_message(monkeypatch, fresh_cache):
    monkeypatch.delenv("MLA_DATA_DIR", raising=False)

    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(datasets.MNIST, "download", offline)
    with pytest.raises(data.DataError, match="MLA_DATA_DIR") as err:
        data.load_dataset("mnist", "train")
    assert "train-images-idx3-ubyte.gz" in str(err.value)


def test_missing_mirror_folder(tmp_path, fresh_cache):
    with pytest.raises(data.DataError, match="does not exist"):
        data.load_tensors(data_dir=tmp_path / "nowhere")


def test_mirror_without_the_files(tmp_path, fresh_cache):
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte"):
        data.load_tensors(data_dir=tmp_path)


def test_truncated_file_is_named(mirror, tmp_path, fresh_cache):
    broken = tmp_path / "broken"
    shutil.copytree(mirror, broken)
    target = broken / "train-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:1000])
    with pytest.raises(data.DataError, match=r"train-labels-idx1-ubyte\.gz.*corrupt or truncated"):
        data.load_tensors(data_dir=broken)


def test_altered_file_is_named(mirror, tmp_path, fresh_cache):
    broken = tmp_path / "altered"
    shutil.copytree(mirror, broken)
    target = broken / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(target, "rb") as f:
        payload = bytearray(f.read())
    payload[-1] = (payload[-1] + 1) % 10  # one label changed: a valid gzip, wrong content
    with gzip.open(target, "wb") as f:
        f.write(bytes(payload))
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte\.gz.*MD5 mismatch"):
        data.load_tensors("mnist", "test", data_dir=broken)


@pytest.fixture
def offline_download(mirror, monkeypatch):
    """torchvision's download, but from the mirror: the .gz files and their extraction in
    <root>/MNIST/raw, as torchvision leaves them."""
    calls = []

    def download(self):
        calls.append(self.raw_folder)
        raw = Path(self.raw_folder)
        raw.mkdir(parents=True, exist_ok=True)
        for gz in mirror.glob("*.gz"):
            shutil.copy(gz, raw / gz.name)
            with gzip.open(gz, "rb") as src, open(raw / gz.stem, "wb") as dst:
                shutil.copyfileobj(src, dst)

    monkeypatch.delenv("MLA_DATA_DIR")
    monkeypatch.setattr(datasets.MNIST, "download", download)
    return calls


def test_without_a_mirror_torchvision_downloads_into_the_cache(offline_download, fresh_cache):
    _, y = data.load_tensors("mnist", "train", limit=10)
    assert y.tolist() == FIRST_TRAIN_LABELS
    assert offline_download == [str(fresh_cache / "data" / "MNIST" / "raw")]
    data.load_tensors("mnist", "test", limit=10)
    assert len(offline_download) == 1  # the files are there: no second download


def test_download_false_without_the_files(monkeypatch, fresh_cache, no_download):
    monkeypatch.delenv("MLA_DATA_DIR")
    with pytest.raises(data.DataError, match=r"download=False.*MLA_DATA_DIR"):
        data.load_dataset("mnist", "test", download=False)


def test_corrupt_cached_file_is_reported(offline_download, fresh_cache):
    data.load_tensors("mnist", "test", limit=10)
    cached = fresh_cache / "data" / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    cached.write_bytes(cached.read_bytes()[:-1])
    with pytest.raises(data.DataError, match="train-labels-idx1-ubyte is corrupt"):
        data.load_tensors("mnist", "train")


def test_fast_path_equals_dataloader_path(mirror, no_download):
    X, y = data.load_tensors("mnist", "train", limit=300)
    loader = data.make_loader(
        "mnist", "train", batch_size=64, limit=300, generator=torch.Generator().manual_seed(3)
    )
    fast = data.iterate_batches(X, y, 64, generator=torch.Generator().manual_seed(3))
    n = 0
    for (xa, ya), (xb, yb) in zip(loader, fast, strict=True):
        torch.testing.assert_close(xa.flatten(1), xb)
        assert torch.equal(ya, yb)
        n += len(ya)
    assert n == 300


def test_iterate_batches_covers_every_example_once():
    X, y = torch.arange(10.0)[:, None], torch.arange(10)
    seen = torch.cat([yb for _, yb in data.iterate_batches(X, y, 3, generator=torch.Generator())])
    assert sorted(seen.tolist()) == list(range(10))
    kept = list(data.iterate_batches(X, y, 3, shuffle=False, drop_last=True))
    assert [len(b[1]) for b in kept] == [3, 3, 3]


def test_fashion_mnist_is_selectable(tmp_path, monkeypatch, fresh_cache):
    folder = data.DATASETS["fashion-mnist"].system_dir
    if not (folder and (tmp_path / "x").parent.exists() and __import__("os").path.isdir(folder)):
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    X, y = data.load_tensors("fashion-mnist", "test", limit=50)
    assert X.shape == (50, 784)
    assert data.classes("fashion-mnist")[y[0]] == "Ankle boot"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "cifar"}, "name='cifar': expected one of"),
        ({"split": "valid"}, "split='valid': expected one of"),
        ({"limit": 0}, "limit=0: expected a positive integer"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.load_tensors(**kwargs)


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size=0"):
        next(data.iterate_batches(torch.zeros(3, 2), torch.zeros(3), 0))
    with pytest.raises(ValueError, match="X has 3 rows but y has 2"):
        next(data.iterate_batches(torch.zeros(3, 2), torch.zeros(2), 1))


# --------------------------------------------------------------------------- issue 14
FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # of the original MNIST training set


def test_a_legacy_processed_file_is_never_read(mirror, fresh_cache, no_download):
    """torchvision would load <cache>/data/MNIST/processed/training.pt in place of the
    checked raw files; here every label of the poisoned file is 7."""
    processed = fresh_cache / "data" / "MNIST" / "processed"
    processed.mkdir(parents=True)
    for name, n in (("training.pt", 60_000), ("test.pt", 10_000)):
        poison = (torch.zeros(n, 28, 28, dtype=torch.uint8), torch.full((n,), 7))
        torch.save(poison, processed / name)
    _, y = data.load_tensors("mnist", "train", limit=10)
    assert y.tolist() == FIRST_TRAIN_LABELS
    ds = data.load_dataset("mnist", "train")
    assert [ds[i][1] for i in range(10)] == FIRST_TRAIN_LABELS
    assert (
        isinstance(ds, datasets.VisionDataset) and len(data.load_dataset("mnist", "test")) == 10_000
    )


def test_an_unreadable_mirror_file_is_reported_as_such(mirror, fresh_cache, monkeypatch):
    real = gzip.open

    def denied(path, *args, **kwargs):
        if str(path).endswith("train-labels-idx1-ubyte.gz"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(gzip, "open", denied)
    with pytest.raises(
        data.DataError, match=r"train-labels-idx1-ubyte\.gz: permission denied"
    ) as e:
        data.load_tensors("mnist", "train", limit=5)
    assert "corrupt" not in str(e.value)


def test_a_mirror_folder_that_cannot_be_listed(mirror, fresh_cache, monkeypatch):
    real = Path.stat

    def denied(self, *args, **kwargs):
        if str(self).startswith(str(mirror) + os.sep):
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", denied)
    with pytest.raises(
        data.DataError, match=r"permission denied, cannot read this mirror folder.*MLA_DATA_DIR"
    ):
        data.load_tensors("mnist", "train", limit=5)


PERMISSIONS_SCRIPT = """
import json, warnings
from mla_course import cache, data
out = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for name, folder in (("file", "mirror"), ("folder", "locked")):
        try:
            data.load_tensors("mnist", "test", limit=5, data_dir=f"{root}/{folder}")
            out[name] = "no error"
        except data.DataError as err:
            out[name] = str(err)
    out["labels"] = data.load_tensors("mnist", "train", limit=10, data_dir=f"{root}/good")[1].tolist()
    out["value"] = cache.memoize({"a": 1}, lambda: {"v": 1})
out["warnings"] = [str(w.message) for w in caught]
print(json.dumps(out))
"""


def test_real_permissions(mirror, tmp_path):
    """Unreadable mirror files and folders, and a read-only cache, for real: as another user
    (nobody, through setpriv) when the tests run as root, who reads whatever the modes say."""
    as_other = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: file modes cannot be tested")
        as_other = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    root = Path(tempfile.mkdtemp(prefix="mla-permissions-"))  # reachable by nobody
    try:
        for folder in ("mirror", "locked", "good"):
            shutil.copytree(mirror, root / folder)
        (root / "mirror" / "t10k-images-idx3-ubyte.gz").chmod(0)
        (root / "locked").chmod(0)
        (root / "ro").mkdir()
        (root / "ro").chmod(0o555)
        root.chmod(0o777)
        env = {**os.environ, "MLA_CACHE_DIR": str(root / "ro"), "HOME": str(root)}
        env["PYTHONPATH"] = str(Path(data.__file__).parents[1])
        done = subprocess.run(
            [*as_other, sys.executable, "-c", f"root = {str(root)!r}\n" + PERMISSIONS_SCRIPT],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            timeout=600,
            check=False,
        )
    finally:
        (root / "locked").chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert "t10k-images-idx3-ubyte.gz: permission denied" in out["file"]
    assert "corrupt" not in out["file"]
    assert "locked: permission denied, cannot read this mirror folder" in out["folder"]
    assert out["labels"] == FIRST_TRAIN_LABELS and out["value"] == {"v": 1}
    assert len(out["warnings"]) == 1 and "MLA_CACHE_DIR=" in out["warnings"][0]


def test_an_unwritable_cache_folder_does_not_matter_with_a_mirror(mirror, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("MLA_CACHE_DIR", str(tmp_path / "file"))
    _, y = data.load_tensors("mnist", "train", limit=10)  # no warning: nothing to write
    assert y.tolist() == FIRST_TRAIN_LABELS


def test_nothing_is_written_when_reading_a_mirror(mirror, fresh_cache, no_download):
    for split in ("train", "test"):
        data.load_tensors("mnist", split, limit=5)
        next(iter(data.make_loader("mnist", split, batch_size=5, limit=5)))
    assert not fresh_cache.exists()


def _torchvision_root(mirror, root):
    """torchvision's own layout, uncompressed, for torchvision's own parser."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in mirror.glob("*.gz"):
        with gzip.open(gz, "rb") as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return root


def test_same_tensors_and_items_as_torchvision(mirror, tmp_path, no_download):
    root = _torchvision_root(mirror, tmp_path / "tv")
    transform = data.load_dataset("mnist", "test").transform
    for split in ("train", "test"):
        ref = datasets.MNIST(root, train=split == "train", transform=transform)
        ours = data.load_dataset("mnist", split)
        assert ours.data.dtype == ref.data.dtype == torch.uint8
        assert torch.equal(ours.data, ref.data) and torch.equal(ours.targets, ref.targets)
        for i in (0, 1, len(ref) - 1):
            (xa, ya), (xb, yb) = ours[i], ref[i]
            assert torch.equal(xa, xb) and ya == yb and type(ya) is type(yb)
        X, y = data.load_tensors("mnist", split, normalize=False, flatten=False)
        assert torch.equal(X, ref.data.unsqueeze(1).float() / 255) and torch.equal(y, ref.targets)


def _mirror_with(mirror, folder, name, payload: bytes | None = None):
    """A copy of the mirror (links) with the file ``name`` replaced."""
    folder.mkdir()
    for gz in mirror.glob("*.gz"):
        if gz.name != name:
            (folder / gz.name).symlink_to(gz)
    if payload is not None:
        (folder / name).write_bytes(payload)
    return folder


def test_a_gzip_bomb_is_read_only_to_the_known_size(mirror, tmp_path, fresh_cache):
    """1 GiB of zeros in a 1 MB gzip (1024 members of 1 MiB): the read stops at the
    uncompressed size of the original file plus one byte, with a clear error."""
    bomb = gzip.compress(bytes(1 << 20), compresslevel=9) * 1024
    folder = _mirror_with(mirror, tmp_path / "bomb", "t10k-images-idx3-ubyte.gz", bomb)
    tracemalloc.start()
    try:
        with pytest.raises(
            data.DataError, match=r"t10k-images-idx3-ubyte\.gz is corrupt.*more than"
        ):
            data.load_tensors("mnist", "test", data_dir=folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 7_840_016  # a few times the original's size, far below 1 GiB
    assert not fresh_cache.exists()


def test_an_oversized_uncompressed_file_is_not_read_whole(mirror, tmp_path, fresh_cache):
    folder = _mirror_with(mirror, tmp_path / "big", "t10k-labels-idx1-ubyte.gz")
    with open(folder / "t10k-labels-idx1-ubyte", "wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GiB that takes no disk
    tracemalloc.start()
    try:
        with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte is corrupt.*more than"):
            data.load_tensors("mnist", "test", data_dir=folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_a_directory_in_place_of_a_file(mirror, tmp_path, fresh_cache):
    folder = _mirror_with(mirror, tmp_path / "dir", "train-labels-idx1-ubyte.gz")
    (folder / "train-labels-idx1-ubyte.gz").mkdir()
    with pytest.raises(
        data.DataError, match=r"train-labels-idx1-ubyte\.gz \(data_dir\) is not a regular file"
    ):
        data.load_tensors("mnist", "train", data_dir=folder)


def test_a_missing_file_names_the_variable(mirror, tmp_path, fresh_cache, monkeypatch):
    folder = _mirror_with(mirror, tmp_path / "three", "t10k-images-idx3-ubyte.gz")
    monkeypatch.setenv("MLA_DATA_DIR", str(folder))
    with pytest.raises(data.DataError, match=r"t10k-images-idx3-ubyte\(\.gz\).*MLA_DATA_DIR"):
        data.load_tensors("mnist", "test")


def test_a_missing_folder_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MLA_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(data.DataError, match=r"MLA_DATA_DIR='.*nowhere'.*does not exist"):
        data.load_tensors("mnist", "test")
