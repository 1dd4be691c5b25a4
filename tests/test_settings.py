import pytest
import torch

from mla_course import settings


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("yes", True), ("0", False), ("", False)]
)
def test_quick_flag(monkeypatch, value, expected):
    monkeypatch.setenv("MLA_QUICK", value)
    assert settings.quick() is expected
    assert settings.pick(full=10, quick_value=1) == (1 if expected else 10)


def test_bad_quick_flag(monkeypatch):
    monkeypatch.setenv("MLA_QUICK", "maybe")
    with pytest.raises(ValueError, match="MLA_QUICK='maybe'"):
        settings.quick()


def test_device(monkeypatch):
    monkeypatch.setenv("MLA_DEVICE", "cpu")
    assert settings.get_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda': CUDA is not available"):
            settings.get_device("cuda")


def test_seed_everything_repeats_draws():
    g = settings.seed_everything(5)
    a = torch.rand(3), torch.randperm(10, generator=g)
    g = settings.seed_everything(5)
    b = torch.rand(3), torch.randperm(10, generator=g)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="seed=-1"):
        settings.seed_everything(-1)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MLA_CACHE_DIR", str(tmp_path / "c"))
    assert settings.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


# --------------------------------------------------------------------------- issue 14, item 7
@pytest.mark.parametrize("value", ["gpu", "mps", "cuda:x", "cpu:0:1", "tpu"])
def test_a_bad_mla_device_is_refused_by_name_at_first_use(monkeypatch, value):
    monkeypatch.setenv("MLA_DEVICE", value)
    with pytest.raises(
        ValueError, match=rf"MLA_DEVICE='{value}': expected 'cpu', 'cuda' or 'cuda:N'"
    ):
        settings.get_device()


def test_device_argument_forms(monkeypatch):
    monkeypatch.delenv("MLA_DEVICE", raising=False)
    assert settings.get_device("CPU") == torch.device("cpu")
    assert settings.get_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="device='mps': expected 'cpu', 'cuda' or 'cuda:N'"):
        settings.get_device("mps")
    with pytest.raises(TypeError, match="device=3"):
        settings.get_device(3)
    if not torch.cuda.is_available():
        monkeypatch.setenv("MLA_DEVICE", "cuda:1")
        with pytest.raises(ValueError, match="MLA_DEVICE='cuda:1': CUDA is not available"):
            settings.get_device()


@pytest.mark.parametrize("name", ["MLA_QUICK", "MLA_NO_CACHE"])
def test_a_bad_flag_names_the_variable_and_the_allowed_values(monkeypatch, name):
    monkeypatch.setenv(name, "2")
    with pytest.raises(ValueError, match=rf"{name}='2': expected one of 1, true, yes, on .* 0"):
        settings._flag(name)
    monkeypatch.setenv(name, " True ")
    assert settings._flag(name) is True


def test_a_cache_dir_that_cannot_be_made_names_the_variable(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("MLA_CACHE_DIR", str(tmp_path / "file"))
    with pytest.raises(OSError, match=r"MLA_CACHE_DIR=.*file.*it is a file"):
        settings.cache_dir()
    monkeypatch.setenv("MLA_CACHE_DIR", str(tmp_path / "file" / "below"))
    with pytest.raises(OSError, match=r"MLA_CACHE_DIR=.*below.*cannot create the folder"):
        settings.cache_dir()


def test_a_huge_seed_is_refused_by_name():
    with pytest.raises(
        ValueError, match=r"seed=1180591620717411303424: expected an integer in \[0, 2\*\*64 - 1\]"
    ):
        settings.seed_everything(2**70)
    for bad in (True, 1.5, "3"):
        with pytest.raises(ValueError, match=f"seed={bad!r}"):
            settings.seed_everything(bad)
    settings.seed_everything(2**64 - 1)  # the largest seed torch takes


def test_the_seed_offset_shifts_every_seed(monkeypatch):
    monkeypatch.delenv("MLA_SEED_OFFSET", raising=False)
    assert settings.seed_offset() == 0 and settings.shifted_seed(5) == 5
    base = torch.randperm(10, generator=settings.seed_everything(12))
    monkeypatch.setenv("MLA_SEED_OFFSET", "7")
    assert settings.seed_offset() == 7 and settings.shifted_seed(5) == 12
    assert torch.equal(torch.randperm(10, generator=settings.seed_everything(5)), base)
    with pytest.raises(ValueError, match=r"seed=.* \+ MLA_SEED_OFFSET=7 .* past"):
        settings.seed_everything(2**64 - 1)
    for bad in ("x", "1.5", "-1"):
        monkeypatch.setenv("MLA_SEED_OFFSET", bad)
        with pytest.raises(ValueError, match=rf"MLA_SEED_OFFSET='{bad}': expected an integer"):
            settings.seed_offset()


# --------------------------------------------------------------------------- issue 13, part A
def test_choosing_a_device_pins_full_ieee_float32(monkeypatch):
    monkeypatch.setenv("MLA_DEVICE", "cpu")
    torch.set_float32_matmul_precision("high")  # what a GPU image may switch on
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    torch.backends.cudnn.conv.fp32_precision = "tf32"
    try:
        assert settings.float32_matmul_precision().startswith("tf32 allowed (matmul=tf32")
        settings.get_device()
        assert settings.float32_matmul_precision() == "ieee"
        assert torch.get_float32_matmul_precision() == "highest"
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"
        assert torch.backends.cudnn.conv.fp32_precision == "ieee"
        monkeypatch.setenv("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "1")
        assert settings.float32_matmul_precision().startswith("tf32 forced")
    finally:
        settings.get_device("cpu")
