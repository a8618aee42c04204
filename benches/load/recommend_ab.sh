#!/usr/bin/env bash
# Serving cost of recommendations, two builds side by side in one sitting: for each
# (name, binary, directory it runs in), start it on the 100k/10k/1M PostgreSQL data set with the
# caches off and wrk `recommendations(first: 10)` as 2,000 signed-in users at 64 connections and
# at 1, then report throughput (CPU per recommendation = 2 cores / req/s on this machine),
# latency and the listing index's memory.
# Usage: benches/load/recommend_ab.sh SECONDS NAME BIN DIR [NAME BIN DIR ...]
#   e.g. benches/load/recommend_ab.sh 8 before /tmp/old/target/release/rentgraph /tmp/old \
#          after target/release/rentgraph .
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=$1; shift
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
export RENTGRAPH_ENV=development   # on PostgreSQL, development must be named (serve refuses it implied)
export RENTGRAPH__DATABASE__URL="${RENTGRAPH__DATABASE__URL:-postgres://postgres@127.0.0.1:5432/rentgraph_load}"
export RENTGRAPH__SERVER__PORT=8099 RENTGRAPH__TELEMETRY__LOG_FILTER=error
export RENTGRAPH__DATABASE__SEED_IF_EMPTY=false RENTGRAPH__LIMITS__THROTTLE=false
export RENTGRAPH__CACHE__ENABLED=false RENTGRAPH__ML__RESULTS_TTL_SECS=0
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$PWD/.ort/libonnxruntime.so.1.31.1}"
here=$PWD
out=target/load; mkdir -p "$out"
if ! psql -h 127.0.0.1 -U postgres -lqt | cut -d'|' -f1 | grep -qw rentgraph_load; then
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE rentgraph_load"
  ./target/release/rentgraph seed --properties 100000 --users 10000 --interactions 1000000
fi
psql -h 127.0.0.1 -U postgres -d rentgraph_load -Atc \
  "SELECT id FROM users WHERE role = 'USER' ORDER BY md5(id::text) LIMIT 2000" > "$out/users.txt"
./target/release/rentgraph token --users-file "$out/users.txt" --role USER > "$out/tokens.txt"
while [ $# -ge 3 ]; do
  name=$1 bin=$2 dir=$3; shift 3
  (cd "$dir" && exec "$bin" serve) &
  pid=$!
  for _ in $(seq 1 300); do curl -sf localhost:8099/ready >/dev/null && break; sleep 0.2; done
  for c in 64 1; do
    text=$(cd "$here" && QUERY_FILE=benches/load/recommendations.graphql TOKENS_FILE="$out/tokens.txt" \
      wrk -t"$((c < 2 ? 1 : 2))" -c"$c" -d"${secs}s" --latency -s benches/load/query.lua \
      "http://127.0.0.1:8099/graphql")
    read -r _ rps p50 p99 errors <<<"$(grep '^RESULT' <<<"$text" | head -1)"
    printf "%-8s %3s conns  %9s req/s  p50 %7s ms  p99 %7s ms  errors %s\n" "$name" "$c" "$rps" "$p50" "$p99" "$errors"
  done
  curl -s localhost:8099/metrics | grep -E "^rentgraph_listing_index_bytes|^process_resident_memory_bytes" | sed "s/^/$name /"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
