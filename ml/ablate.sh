#!/usr/bin/env bash
# Ablations on one database: scripts/retrain with everything, then without each feature group
# (held at 0 in training, so the model cannot use it) and without the co-engagement candidate
# source (ml.co_engagement_candidates = 0, in the training rows and in the replay), printing the
# model's NDCG@10 on listings new to the held-out renters, its ratio to the best baseline, and
# retrieval's recall on those listings.
#
#   RENTGRAPH__DATABASE__URL=sqlite://... ml/ablate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RENTGRAPH__DATABASE__URL:?the database to retrain on}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '| variant | model NDCG@10 new | best baseline | model / best, paired 95%% | retrieval recall, new |\n|---|---|---|---|---|\n'
for variant in all no_co_engagement_features no_decayed_popularity_feature no_popularity_features no_history_features no_co_engagement_candidates; do
  drop=""; cands=""
  case $variant in
    no_co_engagement_features) drop=co_engagement ;;
    no_decayed_popularity_feature) drop=pop_decayed ;;
    no_popularity_features) drop=pop_ ;;
    no_history_features) drop=hist_ ;;
    no_co_engagement_candidates) cands=0 ;;
  esac
  env RETRAIN_DROP="$drop" RETRAIN_REPORT="$out/$variant.json" \
    ${cands:+RENTGRAPH__ML__CO_ENGAGEMENT_CANDIDATES=$cands} \
    scripts/retrain "$out/$variant" > "$out/$variant.log" 2>&1
  python3 - "$out/$variant/recommender.json" "$out/$variant.json" "$variant" <<'PY'
import json, sys
info, report, name = sys.argv[1:]
g = json.load(open(info))["gate"]
r = json.load(open(report))
v = g["vs_best_baseline"]
rec = r["retrieval_recall"]["new_to_user"]["recall"]["mean"]
print(f"| {name} | {g['model']:.4f} | {g['best_baseline']} {g['best_baseline_ndcg']:.4f} "
      f"| {v['ratio']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}] | {rec:.1%} |")
PY
done
