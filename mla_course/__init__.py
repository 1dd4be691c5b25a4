"""mla-course: the code behind the course book "C5. Apprentissage des réseaux profonds".

Modules
-------
data
    MNIST and Fashion-MNIST: torchvision datasets and a device-resident fast path.
models
    Multi-layer perceptrons with a choice of activation.
train
    A plain training loop a student can read, and ``fit`` that records a history.
experiments
    Configurations run over several seeds, summarised as mean and standard deviation.
plots
    The figures of the book.
"""

__version__ = "0.1.0"
