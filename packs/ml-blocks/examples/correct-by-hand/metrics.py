def mean_squared_error(prediction, target):
    difference = prediction - target
    return (difference * difference).sum() / difference.numel()


def accuracy(logits, labels):
    correct = 0
    for row, label in zip(logits, labels):
        if int(row.argmax()) == int(label):
            correct += 1
    return correct / len(labels)
