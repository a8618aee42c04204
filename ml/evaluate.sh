#!/usr/bin/env bash
# Replays serving (rentgraph evaluate) on three data sets the shipped model was not trained on
# (generator seeds 7, 8 and 9; training uses 42, so every evaluated user is held out), then
# summarises them into models/recommender.json ("replay") and fails when the model does not
# beat the best baseline. About two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-ort >/dev/null
cargo build --release --quiet --bin rentgraph
mkdir -p ml/data
reports=()
for seed in 7 8 9; do
  db=ml/data/eval-$seed.db
  rm -f "$db" "$db-wal" "$db-shm"
  export RENTGRAPH__DATABASE__URL="sqlite://$db?mode=rwc"
  ./target/release/rentgraph seed --properties 20000 --users 4000 --interactions 400000 \
    --seed "$seed" >/dev/null
  ./target/release/rentgraph evaluate --users 1000 --seed "$seed" > "ml/data/eval-$seed.json"
  reports+=("ml/data/eval-$seed.json")
done
python3 ml/replay_summary.py --info models/recommender.json "${reports[@]}"
