"""The identities behind the final exercise's explanation of the first-layer figures.

The page (gallery/03_regularisation/plot_15_final_exercise.py) measures how each
optimiser changes the first layer; its explanation rests on facts of the update
rules that are constructions, not findings, so they are tested here:

* plain SGD's change to the first layer is a combination of the batch's images;
* with batch norm before the activation, a pixel that is the same in every image
  of a batch gets no gradient (up to rounding);
* Adam's first step has the same size on every coordinate, whatever the size of
  its gradient;
* the page's roughness descriptor is 0 for a flat image and about 1 for white noise.
"""

import torch
import torch.nn.functional as F

from mla_course.models import MLP
from mla_course.optim import SGD, Adam


def batch(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 784, generator=g)
    x[:, :100] = -0.4242  # pixels blank in every image (MNIST's normalised background)
    return x, torch.randint(0, 10, (n,), generator=g)


def first_layer_gradient(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return model.linears[0].weight.grad.clone()  # (120, 784)


def test_an_sgd_step_changes_the_first_layer_by_a_combination_of_the_batch_images():
    torch.manual_seed(0)
    model, (x, y) = MLP([784, 120, 80, 10], "relu"), batch()
    w0 = model.linears[0].weight.detach().clone()
    first_layer_gradient(model, x, y)
    SGD(model.parameters(), lr=0.1).step()
    change = (model.linears[0].weight.detach() - w0).double()  # (120, 784)
    # Each row lies in the span of the 64 images: least squares leaves nothing over.
    coef = torch.linalg.lstsq(x.double().T, change.T).solution  # (64, 120)
    residual = change.T - x.double().T @ coef
    assert residual.norm() < 1e-4 * change.norm()


def test_batch_norm_before_the_activation_gives_no_gradient_to_a_pixel_blank_in_the_batch():
    torch.manual_seed(0)
    x, y = batch()
    bn = MLP([784, 120, 80, 10], "relu", batch_norm="before")
    grad = first_layer_gradient(bn, x, y)
    assert grad[:, :100].abs().max() < 1e-6 * grad[:, 100:].abs().max()
    plain = MLP([784, 120, 80, 10], "relu")  # without it, the blank pixels do get one
    grad = first_layer_gradient(plain, x, y)
    assert grad[:, :100].abs().max() > 1e-3 * grad[:, 100:].abs().max()


def test_adams_first_step_has_the_same_size_on_every_coordinate():
    p = torch.zeros(5, requires_grad=True)
    p.grad = torch.tensor([1e-4, -1e-2, 1.0, -10.0, 3e3])  # gradients 8 decades apart
    Adam([p], lr=0.01).step()
    torch.testing.assert_close(p.detach(), -0.01 * p.grad.sign(), rtol=1e-3, atol=0)
    q = torch.zeros(5, requires_grad=True)
    q.grad = p.grad.clone()
    SGD([q], lr=0.01).step()  # SGD's steps keep the gradients' ratios
    torch.testing.assert_close(q.detach(), -0.01 * p.grad)


def roughness(dw):
    """The page's descriptor: mean squared step between neighbours over twice the mean square."""
    image = dw.reshape(-1, 28, 28)
    steps = [image.diff(dim=d).flatten(1) for d in (1, 2)]
    return ((torch.cat(steps, 1) ** 2).mean() / (2 * (image**2).mean())).item()


def test_roughness_is_zero_for_a_flat_image_and_about_one_for_white_noise():
    assert roughness(torch.full((3, 784), 0.7)) == 0.0
    noise = torch.randn(200, 784, generator=torch.Generator().manual_seed(0))
    assert abs(roughness(noise) - 1.0) < 0.02
    smooth = torch.linspace(-1, 1, 28).outer(torch.ones(28)).reshape(1, 784)
    assert roughness(smooth) < 0.01
