"""Ranking metrics for the recommender's offline evaluation (numpy only, so they can be tested
without the training stack)."""
import numpy as np


def ndcg_recall_at_k(group, label, score, k=10, seed=0):
    """Mean NDCG@k and recall@k over groups (one group = one user's candidates).

    Ties are broken at random (seeded), never by position: evaluation rows are written with the
    positives first, so a position tie-break would let a constant score rank every positive on
    top and earn a perfect NDCG.
    """
    rng = np.random.default_rng(seed)
    ndcgs, recalls = [], []
    order = np.argsort(group, kind="stable")
    g, y, s = group[order], label[order], score[order]
    bounds = np.flatnonzero(np.diff(g)) + 1
    for idx in np.split(np.arange(len(g)), bounds):
        yy, ss = y[idx], s[idx]
        positives = yy.sum()
        if positives == 0:
            continue
        tiebreak = rng.random(len(ss))
        ranking = np.lexsort((tiebreak, -ss))[:k]
        gains = yy[ranking] / np.log2(np.arange(2, len(ranking) + 2))
        ideal = (1.0 / np.log2(np.arange(2, min(positives, k) + 2))).sum()
        ndcgs.append(gains.sum() / ideal)
        recalls.append(yy[ranking].sum() / positives)
    return float(np.mean(ndcgs)), float(np.mean(recalls)), len(ndcgs)
