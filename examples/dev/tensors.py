"""Correct submission, "einsum" style: products written with torch.einsum, index tricks elsewhere."""

import numpy as np
import torch


def from_nested(data):
    return torch.tensor(data, dtype=None)


def share_numpy(array):
    return torch.asarray(array)


def like(x):
    return (
        torch.ones(x.shape, dtype=x.dtype, device=x.device),
        torch.zeros(x.shape, dtype=x.dtype, device=x.device),
        torch.rand_like(x, dtype=torch.float32),
    )


def zero_column(t, j):
    keep = torch.ones(t.shape[1], dtype=torch.bool, device=t.device)
    keep[j] = False
    zero = torch.zeros((), dtype=t.dtype, device=t.device)
    return torch.where(keep, t, zero)


def concat(tensors, dim):
    return torch.concatenate(tuple(tensors), dim)


def products(a, b):
    elementwise = torch.einsum("...,...->...", a, b) if a.shape == b.shape else a * b
    if a.dim() == 2 and b.dim() == 2:
        matrix = torch.einsum("ij,jk->ik", a, b)
    else:
        matrix = matmul_broadcast(a, b)
    return elementwise, matrix


def add_in_place(t, value):
    torch.add(t, value, out=t)
    return t


def flatten_per_sample(x):
    return x.reshape(len(x), -1)


def add_axis(x, dim):
    position = dim if dim >= 0 else dim + x.dim() + 1
    if not 0 <= position <= x.dim():
        raise IndexError(f"dim {dim} out of range")
    return x[(slice(None),) * position + (None,)]


def drop_unit_axes(x):
    return x.reshape([size for size in x.shape if size != 1])


def matmul_broadcast(a, b):
    if a.dim() == 1 and b.dim() == 1:
        return torch.einsum("i,i->", a, b)
    if a.dim() == 1:
        return torch.einsum("k,...kn->...n", a, b)
    if b.dim() == 1:
        return torch.einsum("...mk,k->...m", a, b)
    return torch.einsum("...mk,...kn->...mn", a, b)


def dot(u, v):
    if u.dim() != 1 or v.dim() != 1:
        raise RuntimeError("dot expects 1-D tensors")
    return torch.einsum("i,i->", u, v)


def softmax(x, dim):
    if x.numel() == 0:
        return x.clone()
    shifted = x - torch.amax(x, dim=dim, keepdim=True)
    return torch.exp(shifted - torch.logsumexp(shifted, dim=dim, keepdim=True))


def select_rows(x, idx):
    return x[idx]


def pick_per_row(A, idx):
    rows = torch.arange(A.shape[0], device=A.device)
    return A[rows, idx]


def count_elements(x):
    return int(np.prod(x.shape, dtype=np.int64))


def split(x, chunks, dim):
    return x.chunk(chunks, dim=dim)


def swap(x, d0, d1):
    return torch.swapaxes(x, d0, d1)


def one_hot(labels, num_classes):
    classes = torch.arange(num_classes, device=labels.device)
    return (labels[:, None] == classes[None, :]).to(torch.float32)


def pick_device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
