#!/bin/bash
# The best split of each kind of a 256-layer GPT at GPT-2 small and medium width on
# 8 to 1024 H100s (global batch = GPUs): scripts/gpt-split-study.sh (a `plait plan`)
# at each size, and one summary table (OUT/summary.md) from their plan.csv files,
# with the fitted 65 us per-kernel host overhead and with 5 us (report.md's lean host).
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
    [[ -s $dir/report.md ]] && continue  # a size already planned is not planned again
    "$here/gpt-split-study.sh" "$dir" "$nodes" "$width" > /dev/null
  done
done
python3 - "$out" "${node_counts[@]}" > "$out/summary.md" <<'PY'
import csv, sys
out, nodes = sys.argv[1], [int(n) for n in sys.argv[2:]]
print("256 layers, sequence 1024, global batch = GPUs, fp16, Adam; H100s priced by the A100 kernel fit on H100 peaks;")
print("`plait plan` over every kind (MGRIT within a 1e-2 relative gradient error). Step: SimGrid's where simulated.")
print()
print("| width | GPUs | best pipeline split | step | memory | best MGRIT split | step | memory | grad error | MGRIT / pipeline |")
print("|---|---:|---|---:|---:|---|---:|---:|---:|---:|")
def step(r): return float(r["simulated_s"] or r["estimated_s"])
def label(r):
    if r["kind"] == "mgrit":
        return f"MGRIT TP{r['tp']} P{r['pp']} DP{r['dp']} mb{r['micro_batch']} L{r['levels']} cf{r['cf']} it{r['fwd_iters']}/{r['bwd_iters']}"
    v = f" v{r['virtual_stages']}" if r["virtual_stages"] != "1" else ""
    return f"{r['kind']} TP{r['tp']} PP{r['pp']} DP{r['dp']} mb{r['micro_batch']}{v}" + (" rc" if r["recompute"] == "1" else "")
for width in ("small", "medium"):
    for n in nodes:
        rows = [r for r in csv.DictReader(open(f"{out}/{width}-{n * 8}/plan.csv")) if not r["refused"]]
        pipes = [r for r in rows if r["kind"] != "mgrit"]
        mgrits = [r for r in rows if r["kind"] == "mgrit"]
        cells, best = [], {}
        for name, group in (("pipe", pipes), ("mgrit", mgrits)):
            r = min(group, key=step) if group else None
            best[name] = r
            cells += [label(r), f"{step(r):.3f} s", f"{int(r['memory_bytes']) / 2**30:.1f} GiB"] if r else ["none kept", "", ""]
        cells.append(f"{float(best['mgrit']['grad_error']):.1e}" if best["mgrit"] else "")
        ratio = f"{step(best['mgrit']) / step(best['pipe']):.2f}" if best["pipe"] and best["mgrit"] else ""
        print(f"| {width} | {n * 8} | " + " | ".join(cells) + f" | {ratio} |")
PY
cat "$out/summary.md"
