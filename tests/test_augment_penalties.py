"""Batch transforms, norm penalties and early stopping."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mla_course.augment import CutMix, Cutout, GaussianNoise, Mixup, ShiftRotate, shift_rotate
from mla_course.models import MLP
from mla_course.penalties import l1_norm, l1_penalty, l2_penalty
from mla_course.train import EarlyStopping, fit

ALL = [ShiftRotate, GaussianNoise, Cutout, Mixup, CutMix]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("shape", [(6, 784), (6, 1, 28, 28)])
def test_transforms_keep_shapes_and_are_repeatable(cls, shape):
    x, y = torch.randn(shape), torch.arange(6) % 10
    x2, y2 = cls(generator=_gen())(x, y)
    assert x2.shape == x.shape
    assert not torch.equal(x2, x)
    assert torch.equal(cls(generator=_gen())(x, y)[0], x2)  # same seed, same batch
    if cls in (Mixup, CutMix):
        assert y2.shape == (6, 10)
        torch.testing.assert_close(y2.sum(1), torch.ones(6))  # soft labels sum to 1
    else:
        assert torch.equal(y2, y)
    assert cls.__name__ in repr(cls())


@pytest.mark.parametrize("shape", [(3, 784), (3, 28, 28), (3, 1, 28, 28)])
def test_shift_rotate_whole_pixels_and_quarter_turns(shape):
    torch.manual_seed(0)
    x = torch.zeros(3, 1, 28, 28)
    x[:, :, 6:22, 6:22] = torch.rand(3, 1, 16, 16)  # a zero border, so moves lose nothing
    zero = torch.zeros(3)
    # Whole-pixel shifts are exact: the same as torch.roll.
    dx, dy = torch.tensor([2.0, -3, 0]), torch.tensor([1.0, 0, -4])
    out = shift_rotate(x.reshape(shape), dx, dy, zero)
    assert out.shape == shape
    out = out.reshape(3, 1, 28, 28)
    for i, (sx, sy) in enumerate([(2, 1), (-3, 0), (0, -4)]):
        torch.testing.assert_close(out[i], torch.roll(x[i], (sy, sx), dims=(1, 2)))
    # A quarter turn counter-clockwise on screen is torch.rot90.
    out = shift_rotate(x, zero, zero, torch.full((3,), 90.0))
    torch.testing.assert_close(out, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5, rtol=0)


def test_noise_has_the_given_std():
    x = torch.zeros(100, 784)
    out, _ = GaussianNoise(std=0.3, generator=_gen())(x, torch.zeros(100))
    assert out.std().item() == pytest.approx(0.3, rel=0.02)


def test_cutout_blanks_a_clipped_square():
    x = torch.ones(50, 784)
    out, _ = Cutout(size=8, fill=0.0, generator=_gen())(x, torch.zeros(50))
    blanked = (out == 0).sum(1)
    assert blanked.max().item() == 64  # a full square inside the image
    assert blanked.min().item() >= 16  # at least a corner quarter when clipped


def test_mixup_of_identical_inputs_is_identity():
    x = torch.randn(1, 784).repeat(8, 1)
    y = torch.full((8,), 3)
    x2, y2 = Mixup(alpha=1.0, generator=_gen())(x, y)
    torch.testing.assert_close(x2, x)
    torch.testing.assert_close(y2, F.one_hot(y, 10).float())


def test_mixup_mixes_inputs_and_labels_in_the_same_ratio():
    x = torch.arange(4.0).reshape(4, 1) * torch.ones(4, 784)  # image i is constant i
    y = torch.arange(4)
    x2, y2 = Mixup(alpha=0.4, generator=_gen(5))(x, y)
    # value = lam * i + (1 - lam) * j, and the labels carry lam on i and 1 - lam on j.
    expected = (y2 * torch.arange(10.0)).sum(1)
    torch.testing.assert_close(x2[:, 0], expected)


@pytest.mark.parametrize("seed", range(5))
def test_cutmix_label_proportions_equal_pixel_proportions(seed):
    n = 6
    x = (torch.arange(n, dtype=torch.float32) + 1).reshape(n, 1, 1, 1).repeat(1, 1, 28, 28)
    y = torch.arange(n)  # image i has label i and every pixel equal to i + 1
    x2, y2 = CutMix(alpha=1.0, generator=_gen(seed))(x, y)
    for i in range(n):
        pixels = x2[i].flatten()
        share = torch.stack([(pixels == c + 1).float().mean() for c in range(10)])
        torch.testing.assert_close(y2[i], share)


def test_transform_bad_arguments():
    with pytest.raises(ValueError, match="alpha=0"):
        Mixup(alpha=0)
    with pytest.raises(ValueError, match="size=0"):
        Cutout(size=0)
    with pytest.raises(ValueError, match="std=-1"):
        GaussianNoise(std=-1)
    with pytest.raises(ValueError, match="square number of pixels"):
        ShiftRotate()(torch.zeros(2, 10), torch.zeros(2))


def test_l2_penalty_gradient_equals_sgd_weight_decay():
    torch.manual_seed(0)
    ours = MLP((20, 16, 3), activation="tanh")
    ref = MLP((20, 16, 3), activation="tanh")
    ref.load_state_dict(ours.state_dict())
    alpha, lr = 0.05, 0.1
    opt = torch.optim.SGD(ours.parameters(), lr=lr)
    weights = [p for n, p in ref.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in ref.named_parameters() if n.endswith("bias")]
    opt_ref = torch.optim.SGD(
        [{"params": weights, "weight_decay": alpha}, {"params": biases}], lr=lr
    )
    penalty = l2_penalty(ours, alpha)
    for _ in range(5):
        x, y = torch.randn(8, 20), torch.randint(0, 3, (8,))
        opt.zero_grad()
        (F.cross_entropy(ours(x), y) + penalty(ours)).backward()
        opt.step()
        opt_ref.zero_grad()
        F.cross_entropy(ref(x), y).backward()
        opt_ref.step()
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_penalties_skip_biases_and_batchnorm():
    model = MLP((4, 3, 2), batch_norm="before")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(2.0)
    n_weights = 4 * 3 + 3 * 2
    assert l1_penalty(alpha=0.5)(model).item() == pytest.approx(0.5 * 2 * n_weights)
    assert l2_penalty(alpha=0.5)(model).item() == pytest.approx(0.25 * 4 * n_weights)
    assert repr(l1_penalty(alpha=0.5)) == "l1_penalty(alpha=0.5)"
    with pytest.raises(ValueError, match="alpha=-1"):
        l2_penalty(alpha=-1)
    with pytest.raises(ValueError, match="no weight matrix"):
        l1_penalty(nn.ReLU())


def test_l1_penalty_gradient_is_sign():
    model = nn.Linear(5, 3)
    l1_penalty(alpha=0.3)(model).backward()
    torch.testing.assert_close(model.weight.grad, 0.3 * model.weight.detach().sign())
    assert model.bias.grad is None


def test_l1_norm_of_stacked_weights_is_the_norm_of_each_network():
    """The engine's L1 term is this same function on its stacked weights (M, n_in, n_out)."""
    from mla_course.engine import StackedMLP

    torch.manual_seed(0)
    models = [MLP((784, 8, 6, 10), activation=a) for a in ("relu", "prelu", "tanh")]
    stack = StackedMLP(models, "cpu")
    per_network = l1_norm(stack.weights, stacked=True)  # (3,)
    assert per_network.shape == (3,)
    expected = torch.stack([l1_penalty(alpha=1.0)(m) for m in models])  # PReLU slopes left out
    torch.testing.assert_close(per_network, expected)
    torch.testing.assert_close(l1_norm(stack.weights), expected.sum())


def test_early_stopping_restores_best_weights():
    torch.manual_seed(0)
    X, y = torch.randn(64, 10), torch.randint(0, 2, (64,))
    Xv, yv = torch.randn(64, 10), torch.randint(0, 2, (64,))  # noise: val loss soon rises
    model = MLP((10, 64, 2), activation="relu")
    stopper = EarlyStopping(patience=2)
    snapshots = []

    def record(history, m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return stopper(history, m)

    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    h = fit(model, opt, (X, y), (Xv, yv), epochs=50, batch_size=16, on_epoch_end=record)
    assert stopper.stopped_epoch == h.epochs < 50
    best = min(range(h.epochs), key=lambda i: h.test_loss[i])
    assert stopper.best_epoch == best + 1
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, snapshots[best][k])
    with pytest.raises(ValueError, match="patience=0"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="monitor='val'"):
        EarlyStopping(monitor="val")


@pytest.mark.parametrize("cls", [Mixup, CutMix])
def test_mixing_transforms_check_their_arguments_and_show_them(cls):
    with pytest.raises(ValueError, match="alpha=-1"):
        cls(alpha=-1)
    with pytest.raises(ValueError, match="num_classes=1: expected an integer >= 2"):
        cls(num_classes=1)
    assert repr(cls(alpha=0.5, num_classes=3)) == f"{cls.__name__}(alpha=0.5, num_classes=3)"
    x, y = torch.randn(4, 784), torch.tensor([0, 1, 2, 2])
    assert cls(num_classes=3, generator=_gen())(x, y)[1].shape == (4, 3)
