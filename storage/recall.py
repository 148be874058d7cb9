"""How well an approximate search agrees with the exact one."""

from __future__ import annotations

import numpy as np


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean fraction of each query's exact top-k ids that the approximate top-k also found.

    Both arrays are ``(n_queries, k)`` (a single query may be given as ``(k,)``); ``-1``
    entries (FAISS's "no result") never count as found.
    """
    approx = np.atleast_2d(np.asarray(approx_ids))
    exact = np.atleast_2d(np.asarray(exact_ids))
    if approx.shape[0] != exact.shape[0]:
        raise ValueError(f"{approx.shape[0]} approximate rows vs {exact.shape[0]} exact rows")
    if exact.size == 0:
        return 1.0
    hits = []
    for a, e in zip(approx, exact):
        wanted = set(e[e >= 0].tolist())
        hits.append(len(wanted & set(a[a >= 0].tolist())) / len(wanted) if wanted else 1.0)
    return float(np.mean(hits))
