#!/usr/bin/env bash
# Load test against a running release server on PostgreSQL with the 100k/10k/1M data set, the
# load generator (wrk) on the same machine.
# Usage: benches/load/run.sh [seconds] [connections] [sweep]
#   Seeds database `rentgraph_load` on 127.0.0.1:5432 once (rentgraph seed). Starts the bare
#   reference server (examples/reference_server.rs) on port 8098, then rentgraph on 8099 with
#   the cache off and then on, and runs every scenario against each:
#   - listing by id with owner and images, ids uniform and Zipf-like (also against the
#     reference server);
#   - a page of 50 listings with owner, images, stats and amenities;
#   - recommendations(first: 10) as 2,000 signed-in users drawn Zipf-like, at 2x connections
#     (with the cache off, result caching is off too);
#   - a page of 50 listings with matchScore, as the same users.
#   With sweep = 1 (the default), the main scenarios run again at 1..64 connections with the
#   cache on, and docs/load.svg plots throughput and p99 against concurrency.
#   Results: target/load/results.csv (scenario,cache,connections,req_s,p50_ms,p99_ms,errors).
#   Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "the load test needs wrk: apt-get install wrk" >&2; exit 1; }
secs="${1:-10}"
conns="${2:-32}"
sweep="${3:-1}"
db="${RENTGRAPH__DATABASE__URL:-postgres://postgres@127.0.0.1:5432/rentgraph_load}"
export RENTGRAPH_ENV=development   # on PostgreSQL, development must be named (serve refuses it implied)
export RENTGRAPH__DATABASE__URL="$db"
export RENTGRAPH__SERVER__PORT=8099
export RENTGRAPH__TELEMETRY__LOG_FILTER=error
export RENTGRAPH__DATABASE__SEED_IF_EMPTY=false
# Raw serving speed: budgets would throttle one load generator long before the server tires.
export RENTGRAPH__LIMITS__THROTTLE=false
scripts/fetch-ort
cargo build --release --quiet --bin rentgraph --example reference_server
if ! psql -h 127.0.0.1 -U postgres -lqt | cut -d'|' -f1 | grep -qw rentgraph_load; then
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE rentgraph_load"
  ./target/release/rentgraph seed --properties 100000 --users 10000 --interactions 1000000
fi
out=target/load
mkdir -p "$out"
results="$out/results.csv"
echo "scenario,cache,connections,req_s,p50_ms,p99_ms,errors" > "$results"
ids="$out/ids.txt"
users="$out/users.txt"
tokens="$out/tokens.txt"
psql -h 127.0.0.1 -U postgres -d rentgraph_load -Atc \
  "SELECT id FROM properties WHERE is_active ORDER BY md5(id::text)" > "$ids"
# 2,000 signed-in users in a fixed random order (the first are the most active in
# the Zipf draw).
psql -h 127.0.0.1 -U postgres -d rentgraph_load -Atc \
  "SELECT id FROM users WHERE role = 'USER' ORDER BY md5(id::text) LIMIT 2000" > "$users"
./target/release/rentgraph token --users-file "$users" --role USER > "$tokens"

server=
reference=
rss_max=0
start() {
  ./target/release/rentgraph serve &
  server=$!
  for _ in $(seq 1 300); do curl -sf localhost:8099/ready >/dev/null && return; sleep 0.2; done
  echo "rentgraph did not become ready" >&2
  exit 1
}
stop() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=; }
trap 'stop; [ -n "$reference" ] && kill "$reference" 2>/dev/null; true' EXIT
rss() {
  local r
  r=$(curl -s localhost:8099/metrics | awk '/^process_resident_memory_bytes/ {print int($2)}')
  [ -n "$r" ] && [ "$r" -gt "$rss_max" ] && rss_max=$r
  true
}
# run NAME CACHE CONNECTIONS PORT SCRIPT [ENV=VALUE...]
run() {
  local name=$1 cache=$2 c=$3 port=$4 script=$5
  shift 5
  local text
  text=$(env "$@" wrk -t"$((c < 2 ? 1 : 2))" -c"$c" -d"${secs}s" --latency -s "benches/load/$script" \
    "http://127.0.0.1:$port/graphql")
  local line
  line=$(grep '^RESULT' <<<"$text" | head -1)
  read -r _ rps p50 p99 errors <<<"$line"
  printf "%-32s cache %-5s %3s conns  %9s req/s  p50 %7s ms  p99 %7s ms  errors %s\n" \
    "$name" "$cache" "$c" "$rps" "$p50" "$p99" "$errors"
  echo "$name,$cache,$c,$rps,$p50,$p99,$errors" >> "$results"
  [ "$port" = 8099 ] && rss
  true
}

./target/release/examples/reference_server &
reference=$!
for _ in $(seq 1 50); do
  curl -sf -XPOST -H 'content-type: application/json' -d '{"query":"{__typename}"}' \
    localhost:8098/graphql >/dev/null && break
  sleep 0.2
done

for cache in false true; do
  export RENTGRAPH__CACHE__ENABLED=$cache
  if [ "$cache" = true ]; then export RENTGRAPH__ML__RESULTS_TTL_SECS=30; else export RENTGRAPH__ML__RESULTS_TTL_SECS=0; fi
  start
  rss
  for dist in uniform zipf; do
    if [ "$cache" = false ]; then
      run "reference listing $dist" - "$conns" 8098 listing.lua IDS_FILE="$ids" DIST=$dist
    fi
    run "listing $dist" "$cache" "$conns" 8099 listing.lua IDS_FILE="$ids" DIST=$dist
  done
  run "page of 50" "$cache" "$conns" 8099 query.lua QUERY_FILE=benches/load/nested.graphql
  run "recommendations" "$cache" $((conns * 2)) 8099 query.lua \
    QUERY_FILE=benches/load/recommendations.graphql TOKENS_FILE="$tokens"
  # One at a time: the latency of a single request.
  run "recommendations, 1 connection" "$cache" 1 8099 query.lua \
    QUERY_FILE=benches/load/recommendations.graphql TOKENS_FILE="$tokens"
  run "page match scores" "$cache" "$conns" 8099 query.lua \
    QUERY_FILE=benches/load/page_match_score.graphql TOKENS_FILE="$tokens"
  metrics=$(curl -s localhost:8099/metrics)
  if [ "$cache" = true ]; then
    # Entity cache hit ratio (L1 or L2) over the whole run.
    awk '/^rentgraph_cache_requests_total/ && /level="l1"/ {
           if ($0 ~ /result="hit"/) h += $NF; else if ($0 ~ /result="miss"/) m += $NF }
         END { if (h + m > 0) printf "entity cache L1 hit ratio: %.1f%% (%d of %d)\n", 100 * h / (h + m), h, h + m }' <<<"$metrics"
  fi
  grep -E "^rentgraph_batcher_batch_rows_(sum|count)|^rentgraph_listing_index_(listings|bytes)" <<<"$metrics" || true
  stop
done

if [ "$sweep" = 1 ]; then
  export RENTGRAPH__CACHE__ENABLED=true RENTGRAPH__ML__RESULTS_TTL_SECS=30
  start
  for c in 1 4 16 32 64; do
    run "sweep listing zipf" true "$c" 8099 listing.lua IDS_FILE="$ids" DIST=zipf
    run "sweep page of 50" true "$c" 8099 query.lua QUERY_FILE=benches/load/nested.graphql
    run "sweep recommendations" true "$c" 8099 query.lua \
      QUERY_FILE=benches/load/recommendations.graphql TOKENS_FILE="$tokens"
  done
  stop
  python3 benches/load/plot.py "$results" docs/load.svg
fi
echo "server RSS at most: $((rss_max / 1048576)) MiB"
echo "results: $results"
