#!/usr/bin/env bash
# Load test against a running release server on PostgreSQL with the 100k/10k/1M data set.
# Usage: benches/load/run.sh [seconds] [connections]
#   Seeds database `rentgraph_load` on 127.0.0.1:5432 once (rentgraph seed), starts the server on
#   port 8099, runs each scenario with wrk, then stops the server. Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-15}"
conns="${2:-32}"
export RENTGRAPH__DATABASE__URL="${RENTGRAPH__DATABASE__URL:-postgres://postgres@127.0.0.1:5432/rentgraph_load}"
export RENTGRAPH__SERVER__PORT=8099
export RENTGRAPH__TELEMETRY__LOG_FILTER=error
export RENTGRAPH__DATABASE__SEED_IF_EMPTY=false
# Raw serving speed: budgets would throttle one load generator long before the server tires.
export RENTGRAPH__LIMITS__THROTTLE=false
scripts/fetch-ort
cargo build --release --quiet
if ! psql -h 127.0.0.1 -U postgres -lqt | cut -d'|' -f1 | grep -qw rentgraph_load; then
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE rentgraph_load"
  ./target/release/rentgraph seed --properties 100000 --users 10000 --interactions 1000000
fi
ids=$(mktemp)
psql -h 127.0.0.1 -U postgres -d rentgraph_load -Atc \
  "SELECT id FROM properties WHERE is_active ORDER BY md5(id::text)" > "$ids"
server=
start() {
  ./target/release/rentgraph serve &
  server=$!
  for _ in $(seq 1 50); do curl -sf localhost:8099/ready >/dev/null && break; sleep 0.2; done
}
stop() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; }
trap 'stop; rm -f "$ids"' EXIT
# A listing by id with owner and images, ids uniform and Zipf-like, entity cache off and on.
for cache in false true; do
  export RENTGRAPH__CACHE__ENABLED=$cache
  start
  for dist in uniform zipf; do
    echo "== listing by id, $dist ids, cache $cache ($conns connections, ${secs}s)"
    IDS_FILE="$ids" DIST=$dist wrk -t2 -c"$conns" -d"${secs}s" --latency \
      -s benches/load/listing.lua http://127.0.0.1:8099/graphql | grep -E "Requests/sec|Latency|50%|99%|errors"
  done
  curl -s localhost:8099/metrics | grep -E '^rentgraph_cache_requests_total\{.*kind="property"' || true
  stop
done
export RENTGRAPH__CACHE__ENABLED=true
start
user=$(psql -h 127.0.0.1 -U postgres -d rentgraph_load -Atc \
  "SELECT id FROM users WHERE role = 'USER' AND preferences::text <> '{}' ORDER BY email LIMIT 1")
export TOKEN
TOKEN=$(./target/release/rentgraph token --user "$user" --role USER)
for scenario in recommendations page_match_score nested; do
  echo "== $scenario ($conns connections, ${secs}s)"
  QUERY_FILE="benches/load/$scenario.graphql" wrk -t2 -c"$conns" -d"${secs}s" --latency \
    -s benches/load/query.lua http://127.0.0.1:8099/graphql | grep -E "Requests/sec|Latency|50%|99%|errors"
done
curl -s localhost:8099/metrics | grep -E "^rentgraph_batcher_batch_rows_(sum|count)|^rentgraph_batcher_rejected"
