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

# The heatmap's default address range is the biggest of the target's three
# regions; zoom into the workload's own memory, which the truth file locates.
range=$(.venv/bin/python -c '
import json, sys
regions = json.loads(open(sys.argv[1]).readline())["regions"]
print(min(r["start"] for r in regions), max(r["end"] for r in regions))' "$out/zigzag.truth.jsonl")
echo "== damo report heats --address_range $range --heatmap stdout (the workload's 200 MiB)" >&2
"$damo" report heats -i "$out/zigzag.data" --address_range $range --heatmap stdout
"$damo" report heats -i "$out/zigzag.data" --address_range $range --heatmap "$out/zigzag.png"
echo "== heatmap image: $out/zigzag.png" >&2
