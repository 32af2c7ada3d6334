"""Correct submission, "functional" style: torch.* functions rather than Tensor methods."""

import math

import torch


def from_nested(data):
    return torch.as_tensor(data)


def share_numpy(array):
    return torch.from_numpy(array)


def like(x):
    ones = torch.full_like(x, 1)
    zeros = torch.zeros_like(x)
    rand = torch.rand(tuple(x.shape), generator=None, dtype=torch.float32, device=x.device)
    return ones, zeros, rand


def zero_column(t, j):
    columns = t.shape[1]
    index = torch.tensor([j % columns if columns else j], device=t.device)
    return torch.index_fill(t, 1, index, 0)


def concat(tensors, dim):
    return torch.concat(list(tensors), dim=dim)


def products(a, b):
    return torch.mul(a, b), torch.matmul(a, b)


def add_in_place(t, value):
    return t.add_(value)


def flatten_per_sample(x):
    return torch.reshape(x, (x.shape[0], math.prod(x.shape[1:])))


def add_axis(x, dim):
    return torch.unsqueeze(x, dim)


def drop_unit_axes(x):
    return torch.squeeze(x)


def matmul_broadcast(a, b):
    return torch.matmul(a, b)


def dot(u, v):
    return torch.inner(u, v) if u.dim() == 1 and v.dim() == 1 else torch.dot(u, v)


def softmax(x, dim):
    if x.numel() == 0:
        return torch.clone(x)
    numerator = torch.exp(torch.sub(x, torch.amax(x, dim=dim, keepdim=True)))
    return torch.div(numerator, torch.sum(numerator, dim=dim, keepdim=True))


def select_rows(x, idx):
    return torch.index_select(x, 0, idx)


def pick_per_row(A, idx):
    return torch.squeeze(torch.gather(A, 1, torch.unsqueeze(idx, 1)), 1)


def count_elements(x):
    return torch.numel(x)


def split(x, chunks, dim):
    return tuple(torch.chunk(x, chunks, dim=dim))


def swap(x, d0, d1):
    return torch.transpose(x, d0, d1)


def one_hot(labels, num_classes):
    encoded = torch.zeros(labels.shape[0], num_classes, device=labels.device)
    return torch.scatter(encoded, 1, torch.unsqueeze(labels, 1), 1.0)


def pick_device():
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
