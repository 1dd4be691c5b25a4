"""The from-scratch cross-entropy and its gradient against torch, autograd and finite differences."""

import pytest
import torch
import torch.nn.functional as F

from mla_course import losses


def _data(batch=6, classes=5, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(batch, classes, generator=g, dtype=torch.float64)
    target = torch.randint(classes, (batch,), generator=g)
    return logits, target


def _finite_differences(f, x, eps=1e-6):
    """Central differences of the scalar ``f`` at ``x``, one coordinate at a time (float64)."""
    grad = torch.zeros_like(x)
    for idx in range(x.numel()):
        step = torch.zeros_like(x).view(-1)
        step[idx] = eps
        step = step.view_as(x)
        grad.view(-1)[idx] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


def test_softmax_and_log_softmax_match_torch():
    logits, _ = _data()
    torch.testing.assert_close(losses.softmax(logits), torch.softmax(logits, 1))
    torch.testing.assert_close(losses.log_softmax(logits), torch.log_softmax(logits, 1))
    torch.testing.assert_close(
        losses.log_softmax(logits, stable=False), torch.log_softmax(logits, 1)
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(reduction):
    logits, target = _data()
    expected = F.cross_entropy(logits, target, reduction=reduction)
    torch.testing.assert_close(losses.cross_entropy(logits, target, reduction), expected)


def test_cross_entropy_with_soft_targets_matches_torch():
    logits, _ = _data()
    probs = torch.softmax(torch.randn_like(logits), 1)
    torch.testing.assert_close(losses.cross_entropy(logits, probs), F.cross_entropy(logits, probs))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_grad_matches_autograd(reduction):
    logits, target = _data()
    x = logits.clone().requires_grad_()
    F.cross_entropy(x, target, reduction=reduction).backward()
    torch.testing.assert_close(losses.cross_entropy_grad(logits, target, reduction), x.grad)


def test_cross_entropy_grad_matches_finite_differences():
    logits, target = _data(batch=3, classes=4)
    numeric = _finite_differences(lambda o: losses.cross_entropy(o, target, "sum"), logits)
    torch.testing.assert_close(
        losses.cross_entropy_grad(logits, target), numeric, rtol=1e-6, atol=1e-8
    )


def test_cross_entropy_grad_is_softmax_minus_one_hot():
    logits, target = _data()
    grad = losses.cross_entropy_grad(logits, target)
    torch.testing.assert_close(grad.sum(1), torch.zeros(len(logits), dtype=torch.float64))
    assert torch.all(grad[torch.arange(len(target)), target] < 0)  # only the true class pulls up


def test_naive_log_softmax_fails_at_large_logits_and_stable_does_not():
    logits = torch.tensor([[1000.0, 0.0, -1000.0]])  # float32
    naive = losses.log_softmax(logits, stable=False)
    stable = losses.log_softmax(logits)
    assert not torch.isfinite(naive).all()
    torch.testing.assert_close(stable, torch.log_softmax(logits, 1))
    assert torch.isnan(losses.cross_entropy(logits, torch.tensor([0]), stable=False))
    torch.testing.assert_close(
        losses.cross_entropy(logits, torch.tensor([1])),
        F.cross_entropy(logits, torch.tensor([1])),
    )


def test_sigmoid_l2_and_its_gradient():
    logits, target = _data(batch=3, classes=4)
    y_star = F.one_hot(target, 4).double()
    expected = 0.5 * F.mse_loss(torch.sigmoid(logits), y_star, reduction="sum") / 3
    torch.testing.assert_close(losses.sigmoid_l2(logits, target), expected)
    numeric = _finite_differences(lambda o: losses.sigmoid_l2(o, target, "sum"), logits)
    torch.testing.assert_close(
        losses.sigmoid_l2_grad(logits, target), numeric, rtol=1e-6, atol=1e-8
    )
    x = logits.clone().requires_grad_()
    losses.sigmoid_l2(x, target).backward()
    torch.testing.assert_close(losses.sigmoid_l2_grad(logits, target, "mean"), x.grad)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: losses.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 3])), r"classes 0\.\.3"),
        (lambda: losses.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), "avg"), "reduction"),
        (lambda: losses.cross_entropy_grad(torch.zeros(3), torch.tensor([0])), "2-D tensor"),
        (lambda: losses.cross_entropy_grad(torch.zeros(2, 3), torch.zeros(2, 4)), r"\(batch, 3\)"),
        (lambda: losses.cross_entropy_grad(torch.zeros(2, 3), torch.tensor([0, 1]), "none"), "sum"),
    ],
)
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_smooth_labels_give_torch_label_smoothing(eps):
    torch.manual_seed(0)
    logits, y = torch.randn(8, 10, dtype=torch.float64), torch.randint(0, 10, (8,))
    target = losses.smooth_labels(y, 10, eps, torch.float64)
    assert torch.allclose(target.sum(1), torch.ones(8, dtype=torch.float64))
    ours = losses.cross_entropy(logits, target)
    theirs = torch.nn.functional.cross_entropy(logits, y, label_smoothing=eps)
    torch.testing.assert_close(ours, theirs)
    with pytest.raises(ValueError, match=r"eps=1\.0"):
        losses.smooth_labels(y, 10, 1.0)
