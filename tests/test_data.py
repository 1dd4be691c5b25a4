import gzip
import shutil
import urllib.error

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
    assert (fresh_cache / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()


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


def test_corrupt_cached_file_is_reported(mirror, fresh_cache, monkeypatch):
    data.load_tensors("mnist", "test", limit=10)
    monkeypatch.delenv("MLA_DATA_DIR")
    cached = fresh_cache / "data" / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    cached.write_bytes(cached.read_bytes()[:-1])
    with pytest.raises(data.DataError, match="train-labels-idx1-ubyte is corrupt"):
        data.load_tensors("mnist", "test")


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
