"""Correct submission, "functional" style."""

import torch
import torch.nn.functional as F


def train_two_layer(x, y, w1, w2, learning_rate, steps):
    losses = []
    for _ in range(steps):
        y_pred = torch.mm(F.relu(torch.mm(x, w1)), w2)
        loss = torch.sum(torch.pow(y_pred - y, 2))
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            for w in [w1, w2]:
                w -= learning_rate * w.grad
        for w in [w1, w2]:
            w.grad.zero_()
    return losses


def sgd_update(params, lr):
    with torch.no_grad():
        for p in params:
            g = p.grad
            if g is None:
                continue
            p.sub_(torch.mul(g, lr))
            g.zero_()


def train(model, inputs, targets, criterion, optimizer, epochs):
    losses = []
    for _ in range(epochs):
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach().item())
    return losses


def train_batches(model, loader, criterion, optimizer, epochs, device):
    model.to(device)
    losses = []
    for _ in range(epochs):
        total = torch.zeros((), dtype=torch.float64)
        n = 0
        for x, y in loader:
            x = x.to(device)
            y = y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.detach().double().cpu() * x.size(0)
            n += x.size(0)
        losses.append(float(total / n))
    return losses


@torch.no_grad()
def evaluate(model, loader, device):
    model.to(device)
    model.train(False)
    correct = 0
    total = 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        correct += int(torch.sum(torch.argmax(model(x), 1) == y))
        total += int(y.size(0))
    return correct / total
