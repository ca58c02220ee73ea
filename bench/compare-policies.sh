#!/usr/bin/env bash
# Side by side: the same open-loop load (infaas bench) against `infaas up` run with each selection
# policy in turn (docs/query.md, "Baseline policies"). Prints each run's overall line; the JSON of
# each run is left in $OUT (default /tmp).
# Usage: bash bench/compare-policies.sh [policies...]   (default: infaas fixed fastest cheapest)
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp}
RATE=${RATE:-400}; LATENCY=${LATENCY:-15}; ACCURACY=${ACCURACY:-0.9}; DURATION=${DURATION:-15}; PORT=${PORT:-14444}
POLICIES=${*:-infaas fixed fastest cheapest}
echo "Method: for each policy a fresh infaas up --quick (mlp-small, cnn-small, cnn-wide; its own data dir, port $PORT),"
echo "then infaas bench --rate $RATE (Poisson) --duration $DURATION --warmup 3 --latency $LATENCY --min-accuracy $ACCURACY, client in its own process."
for P in $POLICIES; do
  D=$(mktemp -d)
  INFAAS_DATA_DIR=$D node bin/infaas.js up --quick --models mlp-small,cnn-small,cnn-wide --policy "$P" -p "$PORT" > "$OUT/up-$P.log" 2>&1 &
  UP=$!
  for _ in $(seq 1 150); do grep -q "Ctrl-C" "$OUT/up-$P.log" && break; sleep 2; done
  INFAAS_DATA_DIR=$D node bin/infaas.js bench -s "nats://127.0.0.1:$PORT" --rate "$RATE" --duration "$DURATION" --warmup 3 \
    --latency "$LATENCY" --min-accuracy "$ACCURACY" --json "$OUT/bench-$P.json" > "$OUT/bench-$P.txt" 2>/dev/null
  kill -INT $UP; wait $UP
  rm -rf "$D"
  echo "== policy $P"; tail -2 "$OUT/bench-$P.txt"
done
