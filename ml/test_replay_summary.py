"""The summary's arithmetic: the paired ratio and the gate's choice of baselines."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from replay_summary import paired_ratio, summarise  # noqa: E402


def report(per_user, users=None):
    methods = {m: {"all": {"ndcg": {"mean": 0.0}}, "new_to_user": {"ndcg": {"mean": 0.0}}}
               for m in per_user}
    return {"users": len(next(iter(per_user.values()))), "first": 10, "candidates": 300,
            "methods": methods, "new_to_user_ndcg_per_user": per_user,
            "retrieval_recall": {"new_to_user": {"recall": {"mean": 0.5}}}}


class PairedRatio(unittest.TestCase):
    def test_identical_and_proportional_values_have_exact_intervals(self):
        b = [i % 5 / 10 for i in range(100)]
        self.assertEqual(paired_ratio(b, b), {"ratio": 1.0, "ci95": [1.0, 1.0]})
        twice = [2 * x for x in b]
        self.assertEqual(paired_ratio(twice, b), {"ratio": 2.0, "ci95": [2.0, 2.0]})

    def test_a_baseline_that_scored_nothing_gives_null_not_infinity(self):
        r = paired_ratio([0.1, 0.2], [0.0, 0.0])
        self.assertIsNone(r["ratio"])


class Gate(unittest.TestCase):
    def test_the_best_baseline_is_compared_and_the_best_servable_one_served(self):
        per_user = {
            "model": [0.4, 0.5, 0.3, 0.6] * 25,
            "als_matrix_factorisation": [0.3, 0.3, 0.2, 0.3] * 25,
            "item_knn_co_engagement": [0.2, 0.2, 0.1, 0.2] * 25,
            "random": [0.0] * 100,
        }
        # Two reports pool their users.
        summary, gate = summarise([report(per_user), report(per_user)])
        self.assertEqual(gate["users"], 200)
        self.assertEqual(gate["best_baseline"], "als_matrix_factorisation")
        self.assertEqual(gate["serve_baseline"], "item_knn_co_engagement")
        self.assertTrue(gate["passed"])
        self.assertAlmostEqual(gate["vs_best_baseline"]["ratio"], 1.8 / 1.1, places=3)

    def test_a_model_no_better_than_a_baseline_does_not_pass(self):
        per_user = {"model": [0.1, 0.3] * 50, "model_off": [0.3, 0.1] * 50}
        _, gate = summarise([report(per_user)])
        self.assertFalse(gate["passed"])
        self.assertEqual(gate["serve_baseline"], "model_off")


if __name__ == "__main__":
    unittest.main()
