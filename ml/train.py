"""Trains rentgraph's recommender and exports it to ONNX.

Input: the CSV written by `rentgraph export-training-data` (features computed by the server's
own feature code; one group of rows per user and training window, the candidates serving's
retrieval gave that user then, labelled by what they did next). The model is a LightGBM
LambdaRank ranker: it learns to order each group, the way the served list is ordered. The
number of trees is chosen by early stopping on the "valid" split (the last training window, by
time; never the evaluation users), then the model is refitted on train + valid with that many.

Output: models/recommender.onnx (input `features`: float32 [batch, F]; output: float32
[batch, 1], a ranking score that the server maps through a logistic function to 0-1, as
`score_transform` in the info file says) and models/recommender.json (version, feature list,
the check on the held-out users' rows).

Deterministic: fixed seeds, single-threaded, deterministic LightGBM.
"""
import argparse
import csv
import hashlib
import json
import sys

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
from metrics import ndcg_recall_at_k
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType


def load(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    names = header[5:]
    split = np.array([r[0] for r in rows])
    # Groups are written contiguously; LightGBM's rankers take their sizes in row order.
    group = np.array([int(r[1]) for r in rows])
    label = np.array([int(r[3]) for r in rows], dtype=np.int32)
    popularity = np.array([float(r[4]) for r in rows], dtype=np.float64)
    x = np.array([[float(v) for v in r[5:]] for r in rows], dtype=np.float32)
    return names, split, group, label, popularity, x


def snap_thresholds_to_float32(model):
    """Moves every split threshold down to the largest float32 not above it.

    LightGBM keeps thresholds as doubles; ONNX trees store float32, rounded to nearest, which
    can land exactly on a feature value and send it the other way. For float32 inputs (all the
    server ever sends) `x <= t` and `x <= down(t)` are the same test, so after this the
    exported model decides exactly like the trained one.
    """
    lines = []
    for line in model.booster_.model_to_string().splitlines():
        if line.startswith("tree_sizes="):
            continue  # byte offsets of the trees, which no longer hold; optional when parsing
        if line.startswith("threshold="):
            snapped = []
            for t in line[len("threshold="):].split(" "):
                d = float(t)
                f = np.float32(d)
                if float(f) > d:
                    f = np.nextafter(f, np.float32(-np.inf))
                snapped.append(repr(float(f)))
            line = "threshold=" + " ".join(snapped)
        lines.append(line)
    model._Booster = lgb.Booster(model_str="\n".join(lines) + "\n")


# Trees at most, and rounds without improvement on the validation split before stopping.
MAX_TREES = 600
EARLY_STOPPING = 50


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="ml/data/training.csv")
    ap.add_argument("--onnx", default="models/recommender.onnx")
    ap.add_argument("--info", default="models/recommender.json")
    ap.add_argument("--trained-on", default="")
    ap.add_argument("--drop", action="append", default=[],
                    help="ablation: features whose names start with this are held constant, so "
                         "the model cannot use them (repeatable)")
    args = ap.parse_args()

    names, split, group, label, popularity, x = load(args.data)
    # Rows come positives first within a group; LightGBM's NDCG breaks ties by row order, so
    # an untrained model would score perfectly and early stopping would stop at once. Shuffle
    # within groups (seeded), keeping groups contiguous and in order.
    order = np.lexsort((np.random.default_rng(42).random(len(group)), group))
    split, group, label, popularity, x = split[order], group[order], label[order], \
        popularity[order], x[order]
    for prefix in args.drop:
        dropped = [i for i, n in enumerate(names) if n.startswith(prefix)]
        x[:, dropped] = 0.0
        print(f"ablation: {[names[i] for i in dropped]} held at 0", file=sys.stderr)
    train, valid, evaluation = split == "train", split == "valid", split == "eval"
    if not valid.any():
        # An export without a validation window (too little data): validate on the last tenth
        # of the training groups, by time (groups are numbered in time order).
        cut = np.quantile(group[train], 0.9)
        valid = train & (group > cut)
        train = train & ~valid
    print(f"{train.sum()} training rows ({label[train].mean():.2f} positive), "
          f"{valid.sum()} validation rows, {evaluation.sum()} evaluation rows, "
          f"{len(names)} features", file=sys.stderr)

    def sizes(mask):
        _, first, counts = np.unique(group[mask], return_index=True, return_counts=True)
        return counts[np.argsort(first)]

    params = dict(
        objective="lambdarank",
        learning_rate=0.05,
        num_leaves=31,
        min_child_samples=40,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=42,
        deterministic=True,
        force_row_wise=True,
        # No special missing-value routing: ONNX TreeEnsemble cannot express all of it.
        use_missing=False,
        n_jobs=1,
        verbose=-1,
    )
    probe = lgb.LGBMRanker(n_estimators=MAX_TREES, **params)
    probe.fit(x[train], label[train], group=sizes(train),
              eval_set=[(x[valid], label[valid])], eval_group=[sizes(valid)], eval_at=[10],
              callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)])
    trees = max(int(probe.best_iteration_ or MAX_TREES), 20)
    print(f"validation NDCG@10 {probe.best_score_['valid_0']['ndcg@10']:.4f} at {trees} trees",
          file=sys.stderr)
    fit = train | valid
    model = lgb.LGBMRanker(n_estimators=trees, **params)
    model.fit(x[fit], label[fit], group=sizes(fit))
    snap_thresholds_to_float32(model)

    onnx_model = convert_lightgbm(
        model,
        # A fixed name: the converter would otherwise pick a random one, and the same model
        # would get a new file (and version) on every run.
        name="rentgraph_recommender",
        initial_types=[("features", FloatTensorType([None, len(names)]))],
        zipmap=False,
        target_opset=15,
    )
    onnx_bytes = onnx_model.SerializeToString()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    out_name = session.get_outputs()[0].name
    onnx_scores = session.run([out_name], {"features": x[evaluation]})[0].reshape(-1)
    lgb_scores = model.predict(x[evaluation])
    max_diff = float(np.abs(onnx_scores - lgb_scores).max())
    mean_diff = float(np.abs(onnx_scores - lgb_scores).mean())
    print(f"ONNX vs LightGBM: max diff {max_diff:.2e}, mean diff {mean_diff:.2e}", file=sys.stderr)
    assert max_diff < 1e-4, f"ONNX and LightGBM disagree by {max_diff}"

    g, y = group[evaluation], label[evaluation]
    model_ndcg, model_recall, users = ndcg_recall_at_k(g, y, onnx_scores.astype(np.float64))
    pop_ndcg, pop_recall, _ = ndcg_recall_at_k(g, y, popularity[evaluation])
    rng = np.random.default_rng(0)
    rand_ndcg, rand_recall, _ = ndcg_recall_at_k(g, y, rng.random(evaluation.sum()))
    with open(args.onnx, "wb") as f:
        f.write(onnx_bytes)
    digest = hashlib.sha256(onnx_bytes).hexdigest()[:12]
    importance = sorted(
        zip(names, model.booster_.feature_importance(importance_type="gain").tolist()),
        key=lambda t: -t[1],
    )
    info = {
        "version": f"lgbm-{digest}",
        "features": names,
        "input": "features",
        "output": out_name,
        "score_transform": "sigmoid",
        "model": f"LightGBM LambdaRank ({trees} trees, 31 leaves), exported with onnxmltools",
        "trained_on": args.trained_on,
        "training_rows": int(fit.sum()),
        "metrics": {
            "evaluation": "held-out users' likes/saves/inquiries after the 85th percentile of "
                          "time among the candidates serving would have given them then, ranked "
                          "with 100 other candidates each (a check of the ranker alone, not "
                          "evidence: the end-to-end numbers and the gate are under replay and "
                          "gate)",
            "validation_ndcg@10": round(float(probe.best_score_["valid_0"]["ndcg@10"]), 4),
            "users": users,
            "model": {"ndcg@10": round(model_ndcg, 4), "recall@10": round(model_recall, 4)},
            "popularity": {"ndcg@10": round(pop_ndcg, 4), "recall@10": round(pop_recall, 4)},
            "random": {"ndcg@10": round(rand_ndcg, 4), "recall@10": round(rand_recall, 4)},
        },
        "feature_importance_gain": {n: round(v, 1) for n, v in importance},
    }
    with open(args.info, "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    print(json.dumps(info["metrics"], indent=2))


if __name__ == "__main__":
    main()
