"""Part 1 - metrics: how far predictions are from the truth.

A metric turns a whole batch of predictions into one number. Each function here
works on any batch size, never modifies its inputs, and computes on the device of
its inputs.
"""

import torch


def mean_squared_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean of the squared differences between `prediction` and `target`.

    Both tensors have the same shape (any number of axes) and a floating dtype.
    Square every difference `prediction - target`, then average over *all* the
    elements. Return a 0-d tensor with the inputs' dtype and device (not a Python
    float: a loss stays a tensor so that autograd can differentiate it).

    >>> mean_squared_error(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 0.0, 1.0]))
    tensor(4.3333)

    Pitfalls: `(prediction - target).abs()` is the mean *absolute* error, and
    `.mean(dim=0)` averages only the first axis.
    """
    return ((prediction - target) ** 2).mean()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of rows whose highest logit is at the true label.

    `logits` is (N, C): one row of class scores per example. `labels` is (N,)
    int64, each in [0, C). Row i is correct when the index of its largest score,
    `logits[i].argmax()`, equals `labels[i]`. Return the fraction of correct rows
    as a Python float between 0.0 and 1.0 (`.item()` turns a 0-d tensor into one).

    >>> accuracy(torch.tensor([[0.1, 2.0], [3.0, -1.0], [0.0, 5.0]]), torch.tensor([1, 1, 1]))
    0.6666666865348816

    Pitfalls: the class axis is dim=1, not dim=0; and `correct // n` is a floor
    division that gives 0 for anything short of a perfect score.
    """
    correct = logits.argmax(dim=1) == labels
    return correct.float().mean().item()
