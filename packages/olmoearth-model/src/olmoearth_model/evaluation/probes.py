"""Linear and kNN probes on frozen embeddings, and their scores.

The linear probe is a single ``Linear(D, K)`` on standardised features, zero-initialised and trained
full-batch with Adam for a fixed number of steps: no random number is drawn, so a probe's score is
a function of the features alone (and the global RNG is never touched). Classes: cross-entropy;
regression: MSE on the standardised target (RMSE reported in the target's units); multilabel:
per-category BCE (micro F1 at 0.5). The kNN probe votes among the ``k`` most cosine-similar
reference embeddings (ties: the nearest's class).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from olmoearth_model.evaluation.labels import Kind


def fit_linear_probe(
    *, features: np.ndarray, targets: np.ndarray, kind: Kind, steps: int, lr: float = 0.05
) -> tuple[torch.nn.Linear, tuple[np.ndarray, np.ndarray], tuple[float, float]]:
    """Train the probe head.

    Args:
        features: float32 ``[N, D]``.
        targets: ``[N]`` int64 class indices 0..K−1 (classes, binary), float ``[N]`` (regression) or
            ``[N, C]`` 0/1 (multilabel).
        kind: the task kind.
        steps: full-batch Adam steps.
        lr: Adam's learning rate.

    Returns:
        The head, the feature (mean, std) and the target (mean, std) (regression; else (0, 1)).
    """
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    x = torch.from_numpy((features - mean) / std).float()
    if kind == "regression":
        t_mean, t_std = float(targets.mean()), float(targets.std() + 1e-6)
        y = torch.from_numpy((targets - t_mean) / t_std).float()[:, None]
        out_dim = 1
    elif kind == "multilabel":
        t_mean, t_std = 0.0, 1.0
        y = torch.from_numpy(targets).float()
        out_dim = y.shape[1]
    else:
        t_mean, t_std = 0.0, 1.0
        y = torch.from_numpy(targets).long()
        out_dim = int(targets.max()) + 1
    # skip_init: nn.Linear's own init would draw from the global RNG (the trainer's stream)
    head = torch.nn.utils.skip_init(torch.nn.Linear, x.shape[1], out_dim)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            out = head(x)
            if kind == "regression":
                loss = F.mse_loss(out, y)
            elif kind == "multilabel":
                loss = F.binary_cross_entropy_with_logits(out, y)
            else:
                loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
    return head.eval(), (mean, std), (t_mean, t_std)


@torch.no_grad()
def predict_linear_probe(
    *,
    head: torch.nn.Linear,
    feature_norm: tuple[np.ndarray, np.ndarray],
    target_norm: tuple[float, float],
    features: np.ndarray,
    kind: Kind,
) -> np.ndarray:
    """Predictions ``[N]`` (class index or value in target units) or ``[N, C]`` 0/1 (multilabel)."""
    x = torch.from_numpy((features - feature_norm[0]) / feature_norm[1]).float()
    out = head(x)
    if kind == "regression":
        return (out[:, 0] * target_norm[1] + target_norm[0]).numpy()
    if kind == "multilabel":
        return (out > 0).numpy().astype(np.int8)
    return out.argmax(dim=1).numpy()


def classification_scores(*, truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """``acc`` and ``miou`` (mean IoU over the classes present in ``truth``) of int ``[N]`` labels."""
    acc = float((truth == predicted).mean())
    ious = []
    for c in np.unique(truth):
        tp = np.sum((truth == c) & (predicted == c))
        union = np.sum((truth == c) | (predicted == c))
        ious.append(tp / union)
    return {"acc": acc, "miou": float(np.mean(ious))}


def f1_score(*, truth: np.ndarray, predicted: np.ndarray) -> float:
    """Micro F1 of 0/1 labels (any shape); 0 when there is no positive in either."""
    tp = float(np.sum((truth == 1) & (predicted == 1)))
    denom = float(np.sum(truth == 1) + np.sum(predicted == 1))
    return 2 * tp / denom if denom else 0.0


def knn_accuracy(
    *,
    reference: np.ndarray,
    reference_labels: np.ndarray,
    query: np.ndarray,
    query_labels: np.ndarray,
    k: int,
) -> float:
    """Accuracy of a cosine kNN vote: ``reference`` ``[R, D]``, int labels ``[R]``; ``query`` ``[Q, D]``."""
    ref = reference / np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    qry = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    sim = qry @ ref.T  # [Q, R]
    k = max(1, min(k, len(ref)))
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    correct = 0
    for q, nearest in enumerate(order):
        votes = reference_labels[nearest]
        values, counts = np.unique(votes, return_counts=True)
        best = values[counts == counts.max()]
        vote = votes[0] if len(best) > 1 and votes[0] in best else best[0]
        correct += int(vote == query_labels[q])
    return correct / max(len(query), 1)
