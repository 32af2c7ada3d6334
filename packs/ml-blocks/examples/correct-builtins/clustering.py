def kmeans_assign(points, centroids):
    differences = points[:, None, :] - centroids[None, :, :]
    return (differences ** 2).sum(dim=-1).argmin(dim=1)
