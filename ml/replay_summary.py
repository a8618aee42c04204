"""Summarises `rentgraph evaluate` reports (one per data set seed) into the model's info file
under "replay", prints a table, and exits non-zero when the model's NDCG@10 does not beat the
best baseline's (on all targets, averaged over the seeds). Standard library only.

Usage: python3 ml/replay_summary.py --info models/recommender.json eval-7.json eval-8.json ...
"""
import argparse
import json
import math
import sys

BASELINES = ["popularity_in_cities_and_budget", "popularity", "random"]


def mean_ci(values):
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, 0.0
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    # Student's t for 95% with n - 1 degrees of freedom (n is the number of seeds).
    t = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57}.get(n - 1, 1.96)
    return m, t * sd / math.sqrt(n)


def summarise(reports):
    out = {"seeds": len(reports), "users_per_seed": [r["users"] for r in reports],
           "first": reports[0]["first"], "candidates": reports[0]["candidates"]}
    methods = ["model"] + BASELINES
    for part in ["all", "new_to_user"]:
        block = {}
        for m in methods:
            ndcg = [r["methods"][m][part]["ndcg"]["mean"] for r in reports]
            recall = [r["methods"][m][part]["recall"]["mean"] for r in reports]
            (nm, nc), (rm, rc) = mean_ci(ndcg), mean_ci(recall)
            block[m] = {
                "ndcg@10": round(nm, 4), "ndcg@10_ci95": round(nc, 4),
                "recall@10": round(rm, 4), "recall@10_ci95": round(rc, 4),
                "ndcg@10_per_seed": ndcg,
                "ndcg@10_ci95_per_seed": [r["methods"][m][part]["ndcg"]["ci95"] for r in reports],
            }
        rec = [r["retrieval_recall"][part]["recall"]["mean"] for r in reports]
        block["retrieval_recall_at_candidates"] = round(mean_ci(rec)[0], 4)
        out[part] = block
    return out


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
        "(listing index with counters up to then, each user's state up to then), the real "
        "retrieval, features, model and ranking produce the top 10; targets are the user's "
        "later likes, saves and inquiries; baselines on the same protocol, popularity ties "
        "broken at random; mean over seeds with a 95% t interval")
    for part in ["all", "new_to_user"]:
        print(f"{part}:")
        for m in ["model"] + BASELINES:
            b = summary[part][m]
            print(f"  {m:34} NDCG@10 {b['ndcg@10']:.4f} ± {b['ndcg@10_ci95']:.4f}   "
                  f"recall@10 {b['recall@10']:.4f}")
        print(f"  retrieval reaches {summary[part]['retrieval_recall_at_candidates']:.1%} "
              f"of targets with {summary['candidates']} candidates")
    with open(args.info) as f:
        info = json.load(f)
    info["replay"] = summary
    with open(args.info, "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    model = summary["all"]["model"]["ndcg@10"]
    best = max(summary["all"][b]["ndcg@10"] for b in BASELINES)
    if model <= best:
        sys.exit(f"the model's replayed NDCG@10 {model:.4f} does not beat the best baseline "
                 f"({best:.4f})")


if __name__ == "__main__":
    main()
