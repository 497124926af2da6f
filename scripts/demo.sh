#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then records the bundled zigzag workload for about
# 15 s with the BPF sampler and shows what damo saw: the working set size
# distribution, a heatmap in the terminal and one as a PNG.
# Output goes to demo-output/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${1:-demo-output}
mkdir -p "$out"
damo=.venv/bin/damo

echo "== recording 'damo workload examples/workloads/zigzag.toml' for 15 s" >&2
"$damo" record --duration 15 -o "$out/zigzag.data" \
    "$damo workload examples/workloads/zigzag.toml --truth $out/zigzag.truth.jsonl"

echo "== damo report wss" >&2
"$damo" report wss -i "$out/zigzag.data"

echo "== damo report heats --heatmap stdout (the workload's 200 MiB)" >&2
"$damo" report heats -i "$out/zigzag.data" --heatmap stdout
"$damo" report heats -i "$out/zigzag.data" --heatmap "$out/zigzag.png"
echo "== heatmap image: $out/zigzag.png" >&2
