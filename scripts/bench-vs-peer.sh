#!/usr/bin/env bash
# Time the two speed anchors and sagasim in one run, so the ratios compare
# figures taken on the same machine at the same time:
#   1. ../shared/peers/peer-bench.sh (the turmoil peer's seeds/s on
#      saga-bench, the bare event loop's events/s), printed as JSON;
#   2. sagasim bench --peer that JSON.
# Usage: scripts/bench-vs-peer.sh [PEER_SEEDS] [-- sagasim bench arguments]
# The anchors live outside this repository (SAGASIM_PEERS, default
# ../shared/peers); the project builds and tests without them, and this
# script says so and stops when they are missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${SAGASIM_PEERS:-$here/../shared/peers}
seeds=200
if [[ $# -gt 0 && $1 != -- ]]; then seeds=$1; shift; fi
[[ ${1:-} == -- ]] && shift
if [[ ! -x $peers/peer-bench.sh ]]; then
  echo "error: no anchors at $peers (set SAGASIM_PEERS to the folder holding peer-bench.sh)" >&2
  exit 2
fi
out=$here/target/anchors.json
mkdir -p "$here/target"
"$peers/peer-bench.sh" "$seeds" > "$out"
echo "anchors timed: $out" >&2
cd "$here"
cargo run --release --quiet -- bench --scenario default,saga-bench --peer "$out" "$@"
