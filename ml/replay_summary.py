"""Summarises `rentgraph evaluate` reports (one per data set) into the model's info file: the
pooled table under "replay" and the verdict the server's gate reads under "gate". Prints a
table. Standard library only.

Pooling: each report keeps every method's NDCG@10 on listings new to the user per evaluated
user (the same users in the same order for every method). The users of all reports are pooled,
each method's mean is taken over them, and the model's ratio to the best baseline (the
baseline with the highest pooled mean) comes with a paired bootstrap 95% interval: users are
resampled with replacement, the model's and the baseline's values together.

The gate passes when that interval's lower end is above 1. `serve_baseline` names the best
baseline the server can serve (recommend::baseline), which answers when the gate does not pass.

Exit status: 0 when the summary was written. With --require-win, 1 when the model does not pass
(ml/evaluate.sh uses it for the shipped model; scripts/retrain does not: an operator's model
that loses is still sealed, and the server serves the baseline instead).

Usage: python3 ml/replay_summary.py --info DIR/recommender.json [--require-win] eval-*.json
"""
import argparse
import json
import math
import random
import sys

# The methods that are not baselines; every other method in a report is one.
NOT_BASELINES = {"model"}
# What the server can serve in place of the model (recommend::baseline::Baseline::name).
SERVABLE = [
    "model_off",
    "popularity_stated_area",
    "recent_popularity_stated_area",
    "popularity_inferred_area",
    "recent_popularity_inferred_area",
    "decayed_popularity_stated_area",
    "decayed_popularity_inferred_area",
    "item_knn_co_engagement",
]
# The goal: at least this times the best baseline with the paired interval above 1.
GOAL_RATIO = 1.25
BOOTSTRAP = 2000


def mean(v):
    return sum(v) / len(v) if v else 0.0


def paired_ratio(a, b, seed=7):
    n = min(len(a), len(b))
    if n == 0:
        return {"ratio": 0.0, "ci95": [0.0, 0.0]}
    rng = random.Random(seed)
    draws = []
    for _ in range(BOOTSTRAP):
        sa = sb = 0.0
        for _ in range(n):
            i = rng.randrange(n)
            sa += a[i]
            sb += b[i]
        draws.append(sa / sb if sb > 0 else float("inf"))
    draws.sort()
    q = lambda p: draws[round((BOOTSTRAP - 1) * p)]
    point = mean(a[:n]) / mean(b[:n]) if mean(b[:n]) > 0 else float("inf")
    # JSON has no infinity: a ratio over a baseline that scored nothing is null.
    finite = lambda v: round(v, 4) if math.isfinite(v) else None
    return {"ratio": finite(point), "ci95": [finite(q(0.025)), finite(q(0.975))]}


def summarise(reports):
    methods = sorted(reports[0]["new_to_user_ndcg_per_user"])
    pooled = {m: [v for r in reports for v in r["new_to_user_ndcg_per_user"][m]] for m in methods}
    baselines = [m for m in methods if m not in NOT_BASELINES]
    best = max(baselines, key=lambda m: (mean(pooled[m]), m))
    servable = [m for m in baselines if m in SERVABLE]
    serve = max(servable, key=lambda m: (mean(pooled[m]), m)) if servable else "model_off"
    model = pooled["model"]
    table = {}
    for m in methods:
        row = {"ndcg@10": round(mean(pooled[m]), 4)}
        if m != "model":
            row["model_vs_this"] = paired_ratio(model, pooled[m])
        row["ndcg@10_all_targets_per_report"] = [r["methods"][m]["all"]["ndcg"]["mean"]
                                                 for r in reports]
        row["ndcg@10_new_per_report"] = [r["methods"][m]["new_to_user"]["ndcg"]["mean"]
                                         for r in reports]
        table[m] = row
    vs = paired_ratio(model, pooled[best])
    gate = {
        "metric": "ndcg@10, listings new to the user",
        "users": len(model),
        "model": round(mean(model), 4),
        "best_baseline": best,
        "best_baseline_ndcg": round(mean(pooled[best]), 4),
        "vs_best_baseline": vs,
        "serve_baseline": serve,
        # A lower end of null means the best baseline scored nothing: any model beats it.
        "passed": vs["ci95"][0] is None or vs["ci95"][0] > 1.0,
        "goal_1_25x_met": (vs["ci95"][0] is None or vs["ci95"][0] > 1.0)
        and (vs["ratio"] is None or vs["ratio"] >= GOAL_RATIO),
    }
    retrieval = [r["retrieval_recall"]["new_to_user"]["recall"]["mean"] for r in reports]
    return {
        "reports": len(reports),
        "users_per_report": [r["users"] for r in reports],
        "first": reports[0]["first"],
        "candidates": reports[0]["candidates"],
        "retrieval_recall_new_per_report": retrieval,
        "new_to_user": table,
    }, gate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--info", required=True)
    ap.add_argument("--protocol", default="")
    ap.add_argument("--require-win", action="store_true")
    ap.add_argument("reports", nargs="+")
    args = ap.parse_args()
    reports = [json.load(open(p)) for p in args.reports]
    summary, gate = summarise(reports)
    summary["protocol"] = args.protocol or (
        "rentgraph evaluate: serving rebuilt at the 85th percentile of interaction time (the "
        "listings on the market then with counters up to then, each user's state up to then); "
        "the real retrieval, features, model and ranking produce the top 10; targets are the "
        "user's later likes, saves and inquiries on listings on the market at the cutoff that "
        "they had not touched before; every baseline on the same users and exclusions; users "
        "of all reports pooled; paired bootstrap intervals")
    rows = sorted(summary["new_to_user"].items(), key=lambda kv: -kv[1]["ndcg@10"])
    print(f"NDCG@10 on listings new to the user, {gate['users']} users "
          f"from {len(reports)} report(s):")
    for m, row in rows:
        vs = row.get("model_vs_this")
        fmt = lambda v: "inf" if v is None else f"{v:.3f}"
        extra = f"   model / this {fmt(vs['ratio'])} [{fmt(vs['ci95'][0])}, {fmt(vs['ci95'][1])}]" \
            if vs else ""
        print(f"  {m:36} {row['ndcg@10']:.4f}{extra}")
    v = gate["vs_best_baseline"]
    fmt = lambda x: "inf" if x is None else f"{x:.3f}"
    print(f"gate: model {gate['model']:.4f} vs {gate['best_baseline']} "
          f"{gate['best_baseline_ndcg']:.4f}: {fmt(v['ratio'])}x [{fmt(v['ci95'][0])}, "
          f"{fmt(v['ci95'][1])}] -> {'PASSED' if gate['passed'] else 'NOT PASSED'}; "
          f"served instead when not passed: {gate['serve_baseline']}")
    with open(args.info) as f:
        info = json.load(f)
    info["replay"] = summary
    info["gate"] = gate
    with open(args.info, "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    if args.require_win and not gate["passed"]:
        sys.exit("the model does not beat the best baseline (paired 95% interval not above 1)")


if __name__ == "__main__":
    main()
