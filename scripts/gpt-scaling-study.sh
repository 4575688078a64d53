#!/bin/bash
# The best pipeline / tensor / data split against the best MGRIT split of a
# 256-layer GPT at GPT-2 small and medium width on 8 to 1024 H100s:
# scripts/gpt-split-study.sh at each size, and one summary table (OUT/summary.md).
# Hours at 1024 GPUs on this 2-core machine: run it again to resume.
# Usage: scripts/gpt-scaling-study.sh OUT [NODES...]   (default nodes: 1 8 64 128)
set -euo pipefail
out=${1:?usage: scripts/gpt-scaling-study.sh OUT [NODES...]}
shift
node_counts=("$@")
((${#node_counts[@]})) || node_counts=(1 8 64 128)
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
for width in small medium; do
  for nodes in "${node_counts[@]}"; do
    dir=$out/$width-$((nodes * 8))
    # A size whose table is complete is not run again (an interrupted study resumes).
    grep -qs "best MGRIT split" "$dir/splits.md" && continue
    "$here/gpt-split-study.sh" "$dir" "$nodes" "$width" > /dev/null
  done
done
python3 - "$out" "${node_counts[@]}" > "$out/summary.md" <<'PY'
import csv, sys
out, nodes = sys.argv[1], [int(n) for n in sys.argv[2:]]
print("256 layers, sequence 1024, global batch = GPUs, fp16, Adam; H100s priced by the A100 kernel fit on H100 peaks.")
print("Pipelines: 1F1B with full activation checkpointing; MGRIT: 2 levels, cf 4, 2 forward and 1 adjoint iterations")
print("(its gradients are MGRIT's approximation). Peak memory a rank includes weights, gradients, fp32 master weights")
print("and Adam moments, and the activations alive at the peak.")
print()
print("| width | GPUs | best pipeline / tensor / data split | step | memory | best MGRIT split | step | memory | MGRIT / pipeline |")
print("|---|---:|---|---:|---:|---|---:|---:|---:|")
for width in ("small", "medium"):
    for n in nodes:
        rows = list(csv.DictReader(open(f"{out}/{width}-{n * 8}/splits.csv")))
        best = {}
        for kind in ("1f1b", "mgrit"):
            candidates = [r for r in rows if r["kind"] == kind]
            best[kind] = min(candidates, key=lambda r: float(r["predicted_s"])) if candidates else None
        cells = []
        for kind in ("1f1b", "mgrit"):
            r = best[kind]
            cells += [r["split"], f"{float(r['predicted_s']):.3f} s", f"{float(r['peak_memory_gib']):.1f} GiB"] if r else ["none fits", "", ""]
        ratio = f"{float(best['mgrit']['predicted_s']) / float(best['1f1b']['predicted_s']):.2f}" if best["1f1b"] and best["mgrit"] else ""
        print(f"| {width} | {n * 8} | " + " | ".join(cells) + f" | {ratio} |")
PY
cat "$out/summary.md"
