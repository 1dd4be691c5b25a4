import pytest
import torch

from mla_course import utils


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("yes", True), ("0", False), ("", False)]
)
def test_quick_flag(monkeypatch, value, expected):
    monkeypatch.setenv("MLA_QUICK", value)
    assert utils.quick() is expected
    assert utils.pick(full=10, quick_value=1) == (1 if expected else 10)


def test_bad_quick_flag(monkeypatch):
    monkeypatch.setenv("MLA_QUICK", "maybe")
    with pytest.raises(ValueError, match="MLA_QUICK='maybe'"):
        utils.quick()


def test_device(monkeypatch):
    monkeypatch.setenv("MLA_DEVICE", "cpu")
    assert utils.get_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda': CUDA is not available"):
            utils.get_device("cuda")


def test_seed_everything_repeats_draws():
    g = utils.seed_everything(5)
    a = torch.rand(3), torch.randperm(10, generator=g)
    g = utils.seed_everything(5)
    b = torch.rand(3), torch.randperm(10, generator=g)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="seed=-1"):
        utils.seed_everything(-1)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MLA_CACHE_DIR", str(tmp_path / "c"))
    assert utils.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
