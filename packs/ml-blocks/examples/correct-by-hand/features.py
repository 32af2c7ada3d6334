import torch


def min_max_normalise(x):
    columns = []
    for j in range(x.shape[1]):
        column = x[:, j]
        lo, hi = column.min(), column.max()
        if hi > lo:
            columns.append((column - lo) / (hi - lo))
        else:
            columns.append(torch.zeros_like(column))
    return torch.stack(columns, dim=1)


def cosine_similarity(a, b):
    values = []
    for u, v in zip(a, b):
        values.append(torch.dot(u, v) / (torch.sqrt(torch.dot(u, u)) * torch.sqrt(torch.dot(v, v))))
    return torch.stack(values)
