import torch
import torch.nn.functional as F


def mean_squared_error(prediction, target):
    return F.mse_loss(prediction, target)


def accuracy(logits, labels):
    predicted = logits.max(dim=1).indices
    return torch.sum(predicted == labels).item() / len(labels)
