#!/usr/bin/env bash
# The layer-parallel paper's LP x DP figure (2601.09026, Fig. 9) as it was run,
# and what each piece of its stack does to it: plait sweep of
# experiments/lp-dp-paper.json, then the same sweep with the stack switched
# piece by piece to plait's own (a packed all-reduce, NCCL's ring, H100s on a
# fat tree), then, at 64 GPUs, each split's time broken down from a predicted
# trace. Prediction only (a few minutes on 2 cores). Writes OUT/summary.md.
# Usage: scripts/lp-dp-paper-study.sh OUT
set -euo pipefail
out=${1:?usage: scripts/lp-dp-paper-study.sh OUT}
root=$(cd "$(dirname "$0")/.." && pwd)
plait=$root/build/apps/plait
mkdir -p "$out/specs"
out=$(cd "$out" && pwd)

# The variants, cumulative: each switches one more piece to plait's own; then
# the paper's stack without the A100 fit's kernel and message overheads.
python3 - "$root" "$out" <<'PY'
import json, sys
root, out = sys.argv[1:]
paper = json.load(open(f"{root}/experiments/lp-dp-paper.json"))
paper["profile"] = f"{root}/docs/gpu/v100-from-a100-fit.json"
# H100s: the same A100 kernel fit on H100 peaks (as scripts/gpt-split-study.sh prices them).
fit = json.load(open(f"{root}/docs/gpu/a100-node-fitted.json"))
fit["device"].update(name="h100-sxm peaks, A100 kernel fit", peak_flops_fp32=67e12, peak_flops_bf16=989.4e12,
                     memory_bandwidth=3.35e12)
fit["shape_factors"] = []
json.dump(fit, open(f"{out}/specs/h100-from-a100-fit.json", "w"), indent=1)
variants = [
    ("paper", "the paper's stack: V100s, Omni-Path, per-tensor MPI all-reduces", {}),
    ("packed", "+ one packed all-reduce a rank, fp16 gradients (plait's default)", {"dp_allreduce": "packed"}),
    ("nccl", "+ NCCL's ring for every all-reduce", {"allreduce": "ring"}),
    ("h100", "+ H100s on a 400 Gb/s fat tree (h100x1024-fattree)", {"platform": "h100x1024-fattree"}),
    ("sheet", "+ the H100 sheet's roofline, no fitted kernel overheads (as experiments/lp-dp-gpt64.json prices)", {}),
]
base = dict(paper["base"])
for name, label, change in variants:
    base.update(change)
    spec = dict(paper, name=f"lp-dp-paper-{name}", description=label, base=dict(base))
    if name == "h100":
        spec["profile"] = f"{out}/specs/h100-from-a100-fit.json"
    if name == "sheet":
        del spec["profile"]
    json.dump(spec, open(f"{out}/specs/{name}.json", "w"), indent=1)
    print(name, label, sep="\t", file=open(f"{out}/specs/variants.tsv", "a" if name != "paper" else "w"))
# And one piece alone: the paper's stack without the fitted host overheads.
spec = dict(paper, name="lp-dp-paper-roofline", base=dict(paper["base"]))
del spec["profile"]
json.dump(spec, open(f"{out}/specs/roofline.json", "w"), indent=1)
print("roofline", "the paper's stack on the V100 sheet's roofline, no fitted kernel overheads", sep="\t",
      file=open(f"{out}/specs/variants.tsv", "a"))
PY

while IFS=$'\t' read -r name _; do
  "$plait" sweep "$out/specs/$name.json" -o "$out/$name" -j 2 --force > "$out/$name.log"
done < "$out/specs/variants.tsv"

# Breakdown at 64 GPUs: each split simulated again with its predicted trace.
mkdir -p "$out/traces"
for program in "$out"/paper/points/*/program.json; do
  point=$(basename "$(dirname "$program")")
  # --ignore-memory: a split over the V100's 32 GB in plait's estimate is still timed (and marked).
  "$plait" simulate "$program" --platform jean-zay-v100 --grow-nodes --profile "$root/docs/gpu/v100-from-a100-fit.json" \
    --ignore-memory --trace "$out/traces/$point.json" --json > "$out/traces/$point.prediction.json"
done

python3 - "$out" > "$out/summary.md" <<'PY'
import csv, glob, json, os, sys
out = sys.argv[1]
variants = [line.rstrip("\n").split("\t") for line in open(f"{out}/specs/variants.tsv")]

# Splits refused for memory, timed anyway (paper variant): (gpus, dp) -> seconds.
over_memory = {}
for path in glob.glob(f"{out}/traces/*.prediction.json"):
    point = os.path.basename(path)[: -len(".prediction.json")]
    program = json.load(open(f"{out}/paper/points/{point}/program.json"))
    over_memory[(program["ranks"], program["replicas"])] = json.load(open(path))["predicted_time_s"]

def curves(name):
    by_budget, refused = {}, set()
    for r in csv.DictReader(open(f"{out}/{name}/results.csv")):
        gpus, dp = int(r["ranks"]) * int(r["dp"]), int(r["dp"])
        if r["predicted_time_s"]:
            by_budget.setdefault(gpus, {})[dp] = float(r["predicted_time_s"])
        elif name == "paper" and "memory" in r["error"]:
            by_budget.setdefault(gpus, {})[dp] = over_memory[(gpus, dp)]
            refused.add((gpus, dp))
    return by_budget, refused

print("# The layer-parallel paper's LP x DP figure, predicted\n")
print("Time per batch (s) against the data-parallel degree D (layer-parallel ranks = GPUs / D), one sample a GPU.\n")
for name, label in variants:
    by_budget, refused = curves(name)
    print(f"## {name}: {label}\n")
    degrees = sorted({d for budget in by_budget.values() for d in budget})
    print("| GPUs | " + " | ".join(f"D={d}" for d in degrees) + " | minimum at | shape |")
    print("|---:|" + "---:|" * len(degrees) + "---|---|")
    for gpus in sorted(by_budget):
        times = by_budget[gpus]
        best = min(times, key=times.get)
        shape = "monotone, pure DP fastest" if best == max(times) else "monotone, pure LP fastest" if best == min(times) else "U-shaped"
        cells = [(f"{times[d]:.3f}" + ("*" if (gpus, d) in refused else "")) if d in times else "" for d in degrees]
        print(f"| {gpus} | " + " | ".join(cells) + f" | D={best} | {shape} |")
    if refused:
        print("\n\\* over the V100's 32 GB in plait's memory estimate (refused by the sweep; timed with --ignore-memory).")
    print()

def breakdown(trace_path):
    trace = json.load(open(trace_path))
    ranks = trace["ranks"]
    span = max(e["end"] for e in trace["events"]) - min(e["start"] for e in trace["events"])
    compute = [0.0] * ranks; allreduce = [0.0] * ranks; waits = [0.0] * ranks
    for e in trace["events"]:
        d = e["end"] - e["start"]
        if e["cost_key"] == "comm.grad_allreduce": allreduce[e["rank"]] += d
        elif e["cost_key"].startswith("comm."): waits[e["rank"]] += d
        else: compute[e["rank"]] += d
    # Rank 0 (the ends, the first forward block): its time is the step.
    idle = span - compute[0] - allreduce[0] - waits[0]
    return span, compute[0], waits[0] + idle, allreduce[0]

print("## 64 GPUs, where the time goes (rank 0 of a replica: it holds the ends)\n")
print("compute: its ops (blocks, embedding, head, buffers, optimizer); waiting: for the serial forward's and the")
print("adjoint's messages (the pipeline and the coarse grid) and idle; all-reduce: its gradient all-reduces.\n")
print("| split | step (s) | compute | waiting | all-reduce |")
print("|---|---:|---:|---:|---:|")
rows = []
for path in glob.glob(f"{out}/traces/*.prediction.json"):
    point = os.path.basename(path)[: -len(".prediction.json")]
    program = json.load(open(f"{out}/paper/points/{point}/program.json"))
    if program["ranks"] != 64: continue
    rows.append((program["replicas"], point))
for replicas, point in sorted(rows):
    span, compute, waiting, allreduce = breakdown(f"{out}/traces/{point}.json")
    print(f"| D={replicas} x LP={64 // replicas} | {span:.3f} | {compute:.3f} | {waiting:.3f} | {allreduce:.3f} |")
PY
cat "$out/summary.md"
