"""Summarises `rentgraph evaluate` reports (one per data set seed) into the model's info file
under "replay", prints a table, checks the goal, and exits non-zero when the model's NDCG@10
does not beat the best baseline's (on all targets or on listings new to the user). Standard
library only.

Each report holds, per method, the mean over its users and the half-width of a 95% normal
interval. Seeds are pooled: the mean over every evaluated user, with the interval of that
pooled mean (the seeds' variances weighted by their share of users).

Usage: python3 ml/replay_summary.py --info models/recommender.json eval-7.json eval-8.json ...
"""
import argparse
import json
import math
import sys

BASELINES = [
    "recent_popularity_in_cities_and_budget",
    "popularity_in_cities_and_budget",
    "popularity",
    "random",
]
# The goal: on listings new to the user, at least this times the best baseline, with
# intervals apart.
GOAL_RATIO = 1.25


def pooled(estimates):
    """estimates: (users, mean, ci95) per seed -> (mean, ci95) over all users."""
    total = sum(n for n, _, _ in estimates)
    if total == 0:
        return 0.0, 0.0
    mean = sum(n * m for n, m, _ in estimates) / total
    var = sum((n / total) ** 2 * (c / 1.96) ** 2 for n, _, c in estimates)
    return mean, 1.96 * math.sqrt(var)


def summarise(reports):
    out = {"seeds": len(reports), "users_per_seed": [r["users"] for r in reports],
           "first": reports[0]["first"], "candidates": reports[0]["candidates"]}
    for part in ["all", "new_to_user"]:
        block = {}
        for m in ["model"] + BASELINES:
            scores = [r["methods"][m][part] for r in reports]
            nm, nc = pooled([(s["users"], s["ndcg"]["mean"], s["ndcg"]["ci95"]) for s in scores])
            rm, rc = pooled([(s["users"], s["recall"]["mean"], s["recall"]["ci95"]) for s in scores])
            block[m] = {
                "users": sum(s["users"] for s in scores),
                "ndcg@10": round(nm, 4), "ndcg@10_ci95": round(nc, 4),
                "recall@10": round(rm, 4), "recall@10_ci95": round(rc, 4),
                "ndcg@10_per_seed": [s["ndcg"]["mean"] for s in scores],
            }
        rec = [(r["retrieval_recall"][part]["users"], r["retrieval_recall"][part]["recall"]["mean"],
                r["retrieval_recall"][part]["recall"]["ci95"]) for r in reports]
        block["retrieval_recall_at_candidates"] = round(pooled(rec)[0], 4)
        out[part] = block
    return out


def goal(summary):
    new = summary["new_to_user"]
    best = max(BASELINES, key=lambda b: new[b]["ndcg@10"])
    model, base = new["model"], new[best]
    ratio = model["ndcg@10"] / base["ndcg@10"] if base["ndcg@10"] > 0 else float("inf")
    apart = model["ndcg@10"] - model["ndcg@10_ci95"] > base["ndcg@10"] + base["ndcg@10_ci95"]
    return {"best_baseline": best, "ratio": round(ratio, 3), "intervals_apart": apart,
            "met": ratio >= GOAL_RATIO and apart}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--info", required=True)
    ap.add_argument("reports", nargs="+")
    args = ap.parse_args()
    reports = [json.load(open(p)) for p in args.reports]
    summary = summarise(reports)
    summary["protocol"] = (
        "rentgraph evaluate on data sets generated with other seeds than the training set "
        "(all users held out): serving rebuilt at the 85th percentile of interaction time "
        "(the listings on the market then with counters up to then, each user's state up to "
        "then), the real retrieval, features, model and ranking produce the top 10; targets are "
        "the user's later likes, saves and inquiries on listings on the market at the cutoff; "
        "baselines on the same protocol, popularity ties broken at random; mean over all "
        "evaluated users of all seeds with a 95% normal interval")
    summary["goal_new_to_user"] = goal(summary)
    for part in ["all", "new_to_user"]:
        print(f"{part}:")
        for m in ["model"] + BASELINES:
            b = summary[part][m]
            print(f"  {m:40} NDCG@10 {b['ndcg@10']:.4f} ± {b['ndcg@10_ci95']:.4f}   "
                  f"recall@10 {b['recall@10']:.4f}")
        print(f"  retrieval reaches {summary[part]['retrieval_recall_at_candidates']:.1%} "
              f"of targets with {summary['candidates']} candidates")
    g = summary["goal_new_to_user"]
    print(f"goal (new to the user, >= {GOAL_RATIO}x {g['best_baseline']}, intervals apart): "
          f"{g['ratio']}x, intervals {'apart' if g['intervals_apart'] else 'overlap'}: "
          f"{'met' if g['met'] else 'NOT met'}")
    with open(args.info) as f:
        info = json.load(f)
    info["replay"] = summary
    with open(args.info, "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    for part in ["all", "new_to_user"]:
        model = summary[part]["model"]["ndcg@10"]
        best = max(summary[part][b]["ndcg@10"] for b in BASELINES)
        if model <= best:
            sys.exit(f"the model's replayed NDCG@10 on {part} targets {model:.4f} does not beat "
                     f"the best baseline ({best:.4f})")


if __name__ == "__main__":
    main()
