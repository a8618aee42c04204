#!/usr/bin/env bash
# Trains the shipped model from scratch, deterministically: seeds a SQLite database with the
# default world's data (seed 42), then retrains on it exactly as an operator retrains on their
# own database (scripts/retrain: export with the serving code, LambdaRank, seal, replayed
# evaluation on the held-out renters), writing models/recommender.onnx and
# models/recommender.json. Ends with ml/evaluate.sh: the replay on three other data sets, whose
# verdict is the one sealed for the server's gate.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${RENTGRAPH_BIN:-}" ]; then
  cargo build --release --quiet --bin rentgraph
fi
bin=${RENTGRAPH_BIN:-./target/release/rentgraph}
mkdir -p ml/data
db=ml/data/train.db
rm -f "$db" "$db-wal" "$db-shm"
export RENTGRAPH__DATABASE__URL="sqlite://$db?mode=rwc"
sizes="--properties 40000 --users 8000 --interactions 800000 --seed 42"
RENTGRAPH__ML__ENABLED=false "$bin" seed $sizes
scripts/retrain models
unset RENTGRAPH__DATABASE__URL
# The honest number: serving replayed for users of data sets the model never saw.
ml/evaluate.sh
