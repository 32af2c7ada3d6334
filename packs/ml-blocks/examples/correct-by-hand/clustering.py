def kmeans_assign(points, centroids):
    # |p - c|^2 = |p|^2 - 2 p.c + |c|^2, for every point and centroid at once
    squared = ((points ** 2).sum(dim=1, keepdim=True) - 2 * points @ centroids.T
               + (centroids ** 2).sum(dim=1))
    return squared.argmin(dim=1)
