#!/usr/bin/env bash
# The operator's path, measured on markets the pipeline was not designed on: for each world
# (and each point of the latent world's parameter sweep) and each seed, seeds a fresh SQLite
# database of an operator's size (15k listings, 4k renters, 450k interactions), retrains on it
# with scripts/retrain, and prints the sealed verdict of the replay on that database's held-out
# renters: the model's NDCG@10 on listings new to the user against the best of every baseline,
# with the paired bootstrap interval. Reports land in ml/data/worlds/.
#
#   ml/worlds.sh                          the seeds and sweep docs/RECOMMENDER.md reports
#   WORLDS_SEEDS="701 702" ml/worlds.sh   other seeds
#   RENTGRAPH_BIN=path                    a built rentgraph instead of cargo build
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${RENTGRAPH_BIN:-}" ]; then
  cargo build --release --quiet --bin rentgraph
  export RENTGRAPH_BIN=./target/release/rentgraph
fi
seeds="${WORLDS_SEEDS:-601 602 603}"
sweep_seed="${WORLDS_SWEEP_SEED:-611}"
out=ml/data/worlds
mkdir -p "$out"
runs=()
for s in $seeds; do runs+=("default||$s" "latent||$s"); done
for p in taste_dims=2 taste_dims=12 stated_share=0.15 stated_share=0.9 position_bias=0.5 position_bias=2; do
  runs+=("latent|$p|$sweep_seed")
done
printf '| world | parameter | seed | users | model (replay) | best baseline | its NDCG@10 | model / best, paired 95%% | gate | served through the API / best | retrain s |\n|---|---|---|---|---|---|---|---|---|---|---|\n'
for run in "${runs[@]}"; do
  IFS='|' read -r world param seed <<<"$run"
  name="$world${param:+-$param}-$seed"
  db="$out/$name.db"
  rm -f "$db" "$db-wal" "$db-shm"
  export RENTGRAPH__DATABASE__URL="sqlite://$db?mode=rwc"
  RENTGRAPH__ML__ENABLED=false "$RENTGRAPH_BIN" seed --properties 15000 --users 4000 \
    --interactions 450000 --seed "$seed" --world "$world" ${param:+--world-param $param} \
    >/dev/null 2>&1
  started=$(date +%s)
  scripts/retrain "$out/$name" > "$out/$name.log" 2>&1
  took=$(( $(date +%s) - started ))
  # The same held-out renters through the API of a server on the database rewound to the
  # cutoff, serving what the gate decided.
  RENTGRAPH__ML__MODEL_PATH="$out/$name/recommender.onnx" RENTGRAPH__ML__INFO_PATH="$out/$name/recommender.json" \
    "$RENTGRAPH_BIN" evaluate --users 100000 --held-out-share 0.3 --held-out-seed 42 --seed 42 \
    > "$out/$name.eval.json" 2>/dev/null
  python3 ml/api_replay.py --bin "$RENTGRAPH_BIN" --model "$out/$name" --out "$out/$name.api.json" \
    --pair "$db" "$out/$name.eval.json" >> "$out/$name.log" 2>&1
  python3 - "$out/$name/recommender.json" "$out/$name.api.json" "$world" "$param" "$seed" "$took" <<'PY'
import json, sys
info, api, world, param, seed, took = sys.argv[1:]
g = json.load(open(info))["gate"]
a = json.load(open(api))
v, w = g["vs_best_baseline"], a["served_vs_best_baseline"]
f = lambda x: "inf" if x is None else f"{x:.3f}"
print(f"| {world} | {param or '-'} | {seed} | {g['users']} | {g['model']:.4f} | {g['best_baseline']} "
      f"| {g['best_baseline_ndcg']:.4f} | {f(v['ratio'])} [{f(v['ci95'][0])}, {f(v['ci95'][1])}] "
      f"| {'passed' if g['passed'] else 'NOT passed'} "
      f"| {'/'.join(a['served_sources'])} {a['served_ndcg@10_new']:.4f}: {f(w['ratio'])} "
      f"[{f(w['ci95'][0])}, {f(w['ci95'][1])}] | {took} |")
PY
  rm -f "$db" "$db-wal" "$db-shm"
done
