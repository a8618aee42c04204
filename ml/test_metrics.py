"""python3 -m unittest ml/test_metrics.py (scripts/test runs it)."""
import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from metrics import ndcg_recall_at_k  # noqa: E402


def groups(users=300, per_user=50, positives=3):
    """Rows as the export writes them: each user's positives first, then negatives."""
    g = np.repeat(np.arange(users), per_user)
    y = np.tile(np.r_[np.ones(positives), np.zeros(per_user - positives)], users)
    return g, y


class TieBreaking(unittest.TestCase):
    def test_a_constant_scorer_earns_no_more_than_random(self):
        g, y = groups()
        constant, _, _ = ndcg_recall_at_k(g, y, np.zeros(len(g)))
        rng = np.random.default_rng(7)
        random = np.mean([ndcg_recall_at_k(g, y, rng.random(len(g)), seed=i)[0] for i in range(20)])
        self.assertLess(constant, random + 0.03, (constant, random))
        self.assertLess(constant, 0.5)

    def test_a_perfect_scorer_earns_one(self):
        g, y = groups()
        ndcg, recall, users = ndcg_recall_at_k(g, y, y.astype(float))
        self.assertAlmostEqual(ndcg, 1.0)
        self.assertEqual(users, 300)
        self.assertLessEqual(recall, 1.0)


if __name__ == "__main__":
    unittest.main()
