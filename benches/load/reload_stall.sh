#!/usr/bin/env bash
# Recommendations while the listing index reloads and listings keep changing: the server
# reloads the index every 3 s (1.7 s per 100k listings), an owner changes a listing every
# 200 ms, and wrk asks for recommendations as 2,000 users on 8 connections for 20 s, with
# the entity cache and result caching off.
# Usage: benches/load/reload_stall.sh [binary]   (default target/release/rentgraph)
# Needs the data set and tokens benches/load/run.sh prepares (rentgraph_load on
# 127.0.0.1:5432, target/load/tokens.txt) and wrk.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-target/release/rentgraph}"
export RENTGRAPH_ENV=development   # on PostgreSQL, development must be named (serve refuses it implied)
export RENTGRAPH__DATABASE__URL="${RENTGRAPH__DATABASE__URL:-postgres://postgres@127.0.0.1:5432/rentgraph_load}"
export RENTGRAPH__SERVER__PORT=8099 RENTGRAPH__DATABASE__SEED_IF_EMPTY=false
export RENTGRAPH__TELEMETRY__LOG_FILTER=error RENTGRAPH__LIMITS__THROTTLE=false
export RENTGRAPH__CACHE__ENABLED=false RENTGRAPH__ML__RESULTS_TTL_SECS=0
export RENTGRAPH__ML__INDEX_REFRESH_SECS=3
"$bin" serve >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -s -o /dev/null -H 'content-type: application/json' -d '{"query":"{__typename}"}' \
    http://127.0.0.1:8099/graphql && break
  sleep 1
done
read -r owner listing <<<"$(psql "$RENTGRAPH__DATABASE__URL" -Atc \
  "SELECT owner_id, id FROM properties WHERE is_active ORDER BY id LIMIT 1" | tr '|' ' ')"
token=$("$bin" token --user "$owner" --role OWNER 2>/dev/null | tail -1)
(
  end=$((SECONDS + 22)); price=900
  while [ $SECONDS -lt $end ]; do
    price=$((price + 1))
    curl -s -o /dev/null http://127.0.0.1:8099/graphql -H 'content-type: application/json' \
      -H "authorization: Bearer $token" \
      -d "{\"query\":\"mutation { updateProperty(id: \\\"$listing\\\", input: { monthlyPrice: $price }) { id } }\"}"
    sleep 0.2
  done
) &
changes=$!
QUERY_FILE=benches/load/recommendations.graphql TOKENS_FILE=target/load/tokens.txt \
  wrk -t2 -c8 -d20s --latency -s benches/load/query.lua http://127.0.0.1:8099/graphql 2>&1 |
  grep -E "Requests/sec|50%|99%|timeout|errors"
wait $changes
