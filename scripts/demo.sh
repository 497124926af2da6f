#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then records the bundled zigzag workload for about
# 15 s with the BPF sampler and shows what damo saw: the working set size
# distribution beside the RSS, the hottest ranges, a heatmap in the terminal and
# one as a PNG.  With a C compiler, it also records examples/hotcold.c, whose
# hot ranges the reports name by symbol.  Output goes to demo-output/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${1:-demo-output}
mkdir -p "$out"
damo=.venv/bin/damo

echo "== recording 'damo workload examples/workloads/zigzag.toml' for 15 s" >&2
"$damo" record --duration 15 -o "$out/zigzag.data" \
    "$damo workload examples/workloads/zigzag.toml --truth $out/zigzag.truth.jsonl"

echo "== damo report wss --footprints" >&2
"$damo" report wss -i "$out/zigzag.data" --footprints
echo "== damo report hot" >&2
"$damo" report hot -i "$out/zigzag.data"
# The heatmaps pick the monitored area that holds the accesses by themselves.
echo "== damo report heats --heatmap stdout" >&2
"$damo" report heats -i "$out/zigzag.data" --heatmap stdout
"$damo" report heats -i "$out/zigzag.data" --heatmap "$out/zigzag.png"
echo "== heatmap image: $out/zigzag.png" >&2

if command -v cc > /dev/null; then
    cc -O1 -o "$out/hotcold" examples/hotcold.c
    echo "== recording examples/hotcold.c (global arrays, a heap buffer) for 20 s" >&2
    "$damo" record -o "$out/hotcold.data" "$out/hotcold 20"
    echo "== damo report hot" >&2
    "$damo" report hot -i "$out/hotcold.data"
    "$damo" report heats -i "$out/hotcold.data" --heatmap "$out/hotcold.png"
    echo "== heatmap image: $out/hotcold.png" >&2
fi
