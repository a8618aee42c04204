"""Trains rentgraph's recommender and exports it to ONNX.

Input: the CSV written by `rentgraph export-training-data` (features computed by the server's
own feature code). Output: models/recommender.onnx (input `features`: float32 [batch, F];
output `probabilities`: float32 [batch, 2], column 1 is the score) and models/recommender.json
(version, feature list, metrics against the popularity baseline).

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="ml/data/training.csv")
    ap.add_argument("--onnx", default="models/recommender.onnx")
    ap.add_argument("--info", default="models/recommender.json")
    ap.add_argument("--trained-on", default="")
    args = ap.parse_args()

    names, split, group, label, popularity, x = load(args.data)
    train, evaluation = split == "train", split == "eval"
    print(f"{train.sum()} training rows ({label[train].mean():.2f} positive), "
          f"{evaluation.sum()} evaluation rows, {len(names)} features", file=sys.stderr)

    model = lgb.LGBMClassifier(
        n_estimators=300,
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
    model.fit(x[train], label[train])
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
    outputs = [o.name for o in session.get_outputs()]
    prob_name = next(n for n in outputs if "prob" in n)
    onnx_scores = session.run([prob_name], {"features": x[evaluation]})[0][:, 1]
    lgb_scores = model.predict_proba(x[evaluation])[:, 1]
    max_diff = float(np.abs(onnx_scores - lgb_scores).max())
    mean_diff = float(np.abs(onnx_scores - lgb_scores).mean())
    print(f"ONNX vs LightGBM: max diff {max_diff:.2e}, mean diff {mean_diff:.2e}", file=sys.stderr)
    assert max_diff < 1e-4, f"ONNX and LightGBM disagree by {max_diff}" 

    g, y = group[evaluation], label[evaluation]
    model_ndcg, model_recall, users = ndcg_recall_at_k(g, y, onnx_scores.astype(np.float64))
    pop_ndcg, pop_recall, _ = ndcg_recall_at_k(g, y, popularity[evaluation])
    rng = np.random.default_rng(0)
    rand_ndcg, rand_recall, _ = ndcg_recall_at_k(g, y, rng.random(evaluation.sum()))
    best_baseline = max(pop_ndcg, rand_ndcg)
    if model_ndcg <= best_baseline:
        # A model no better than a baseline must not replace the shipped one.
        sys.exit(
            f"the model's NDCG@10 {model_ndcg:.4f} does not beat the best baseline "
            f"({best_baseline:.4f}); nothing written"
        )

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
        "output": prob_name,
        "model": "LightGBM binary classifier (300 trees, 31 leaves), exported with onnxmltools",
        "trained_on": args.trained_on,
        "training_rows": int(train.sum()),
        "metrics": {
            "evaluation": "held-out users' likes/saves/inquiries after the 85th percentile of "
                          "time among the candidates serving would have given them then, ranked "
                          "with 100 other candidates each (a check of the ranker alone; the "
                          "end-to-end numbers are under replay)",
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
    if model_ndcg <= pop_ndcg * 1.1:
        print("the model does not beat popularity by a clear margin", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
