#!/usr/bin/env bash
# Replays serving (rentgraph evaluate) on data sets the model was not trained on and seals the
# verdict into its info file ("replay", and "gate", which the server reads), failing when the
# model does not beat the best baseline with its paired interval above 1; then asks a server
# with that model for the same users' recommendations through the API (ml/api_replay.py).
#
#   ml/evaluate.sh                       the shipped model on the default world, seeds 701-703
#   EVAL_WORLD=latent EVAL_SEEDS="301 302" ml/evaluate.sh
#   EVAL_PARAMS="--world-param taste_dims=3" ...   a parameter of the world (the sweep)
#   RENTGRAPH__ML__MODEL_PATH / RENTGRAPH__ML__INFO_PATH   another model (scripts/retrain's)
#   RENTGRAPH_BIN=path   a built rentgraph instead of cargo build
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-ort >/dev/null
if [ -z "${RENTGRAPH_BIN:-}" ]; then
  cargo build --release --quiet --bin rentgraph
fi
bin=${RENTGRAPH_BIN:-./target/release/rentgraph}
world="${EVAL_WORLD:-default}"
seeds="${EVAL_SEEDS:-701 702 703}"
info="${RENTGRAPH__ML__INFO_PATH:-models/recommender.json}"
mkdir -p ml/data
reports=()
pairs=()
for seed in $seeds; do
  db=ml/data/eval-$world-$seed.db
  rm -f "$db" "$db-wal" "$db-shm"
  export RENTGRAPH__DATABASE__URL="sqlite://$db?mode=rwc"
  RENTGRAPH__ML__ENABLED=false "$bin" seed --properties 20000 --users 4000 \
    --interactions 400000 --seed "$seed" --world "$world" ${EVAL_PARAMS:-} >/dev/null
  "$bin" evaluate --users 1000 --seed "$seed" > "ml/data/eval-$world-$seed.json"
  reports+=("ml/data/eval-$world-$seed.json")
  pairs+=(--pair "$db" "ml/data/eval-$world-$seed.json")
done
python3 ml/replay_summary.py --info "$info" --require-win \
  --protocol "ml/evaluate.sh: rentgraph evaluate on $world-world data sets seeded $seeds ${EVAL_PARAMS:-} (20k listings, 4k users, 400k interactions each; no user or listing of them was trained on), serving replayed at the 85th percentile of interaction time" \
  "${reports[@]}"
# The same users' recommendations through the public API of a server on each data set rewound
# to its cutoff, with this model and the gate just sealed (RENTGRAPH__ML__* as above).
python3 ml/api_replay.py --bin "$bin" --out "ml/data/api-$world.json" "${pairs[@]}"
