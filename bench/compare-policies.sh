#!/usr/bin/env bash
# Side by side: the same open-loop load (infaas bench) against `infaas up` run with each selection
# policy in turn (docs/query.md, "Baseline policies"), then charts of all runs (bench/charts.ts).
# Prints each run's summary; the JSON of each run and the charts are left in $OUT (default /tmp/compare-policies).
# Usage: bash bench/compare-policies.sh [policies...]   (default: infaas fixed clipper fastest cheapest)
# Load: SHAPE (flat|steady|fluctuating|diurnal, default fluctuating) x RATE_SCALE (default 5), or RATE=q/s for a flat Poisson load.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/compare-policies}; mkdir -p "$OUT"
SHAPE=${SHAPE:-fluctuating}; RATE_SCALE=${RATE_SCALE:-5}; RATE=${RATE:-}
LATENCY=${LATENCY:-15}; ACCURACY=${ACCURACY:-0.9}; DURATION=${DURATION:-60}; PORT=${PORT:-14444}
POLICIES=${*:-infaas fixed clipper fastest cheapest}
if [ -n "$RATE" ]; then LOAD=(--rate "$RATE"); LOADTEXT="Poisson at $RATE q/s"; else LOAD=(--shape "$SHAPE" --rate-scale "$RATE_SCALE"); LOADTEXT="shape $SHAPE x$RATE_SCALE"; fi
echo "Method: for each policy a fresh infaas up --quick (mlp-small, cnn-small, cnn-wide; its own data dir, port $PORT),"
echo "then infaas bench ($LOADTEXT) --duration $DURATION --warmup 3 --window 2 --latency $LATENCY --min-accuracy $ACCURACY, client in its own process."
CHARTS=()
for P in $POLICIES; do
  D=$(mktemp -d)
  INFAAS_DATA_DIR=$D node bin/infaas.js up --quick --models mlp-small,cnn-small,cnn-wide --policy "$P" -p "$PORT" > "$OUT/up-$P.log" 2>&1 &
  UP=$!
  for _ in $(seq 1 150); do grep -q "Ctrl-C" "$OUT/up-$P.log" && break; sleep 2; done
  INFAAS_DATA_DIR=$D node bin/infaas.js bench -s "nats://127.0.0.1:$PORT" "${LOAD[@]}" --duration "$DURATION" --warmup 3 --window 2 \
    --latency "$LATENCY" --min-accuracy "$ACCURACY" --json "$OUT/bench-$P.json" > "$OUT/bench-$P.txt" 2>/dev/null
  kill -INT $UP; wait $UP
  rm -rf "$D"
  echo "== policy $P"; grep -A4 "^overall (" "$OUT/bench-$P.txt"
  CHARTS+=("--policy" "$P=$OUT/bench-$P.json")
done
npx tsx bench/charts-cli.ts --out "$OUT/charts" --title "live, $LOADTEXT, ${LATENCY} ms" "${CHARTS[@]}"
echo "charts in $OUT/charts"
