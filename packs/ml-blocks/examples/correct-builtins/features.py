import torch
import torch.nn.functional as F


def min_max_normalise(x):
    lo, hi = x.aminmax(dim=0)
    # a constant column gives 0 / 0 = nan, which nan_to_num turns into 0
    return torch.nan_to_num((x - lo) / (hi - lo), nan=0.0)


def cosine_similarity(a, b):
    return F.cosine_similarity(a, b, dim=1)
