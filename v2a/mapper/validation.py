"""How close predicted audio embeddings are to the true ones: MSE, cosine, retrieval recall."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def embedding_metrics(pred: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...] = (1, 10),
                      chunk: int = 4096) -> dict[str, float]:
    """Metrics of (N, D) predictions against their (N, D) targets, both L2-normalised here.

    mse: mean squared error per element; cosine: mean cosine to the own target;
    r{k}: fraction of rows whose own target is among the k most similar of all N targets
    (ties counted in the row's favour). Similarities are computed in row chunks so a
    15k x 15k matrix never has to exist at once.
    """
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError("pred and target must be the same (N, D) shape, "
                         f"got {tuple(pred.shape)} and {tuple(target.shape)}")
    pred = F.normalize(pred.float(), dim=-1)
    target = F.normalize(target.float(), dim=-1)
    n = pred.shape[0]
    own = (pred * target).sum(-1)
    ranks = torch.empty(n, dtype=torch.long, device=pred.device)
    for i in range(0, n, chunk):
        sims = pred[i:i + chunk] @ target.T
        ranks[i:i + chunk] = (sims > own[i:i + chunk, None]).sum(-1)
    out = {
        "mse": float(((pred - target) ** 2).mean()),
        "cosine": float(own.mean()),
    }
    for k in ks:
        out[f"r{k}"] = float((ranks < k).float().mean())
    return out
