#!/usr/bin/python3
"""Record a 2-rank CPU training job over gloo with the PyTorch profiler.

Writes one Kineto JSON per rank (OUT/rank-R.json) and OUT/steps.json: each
profiled step's wall time as the job itself measured it, from one
profiler.step() to the next (the ProfilerStep#N span), per rank and the max
over ranks: the figure a replay of the imported trace is checked against.

Each step: a barrier, forward and backward of a small MLP, then every gradient
all-reduced with torch.distributed (blocking), then SGD. Rank 1 has twice the
batch, so rank 0 waits for it in the first all-reduce; with --balanced both
have the same (what `plait replay --rank-compute-scale 1=0.5` predicts).  Debian's
python3-torch (CPU) is enough: python3 scripts/record-gloo-trace.py OUT [--balanced]
"""
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WIDTH, DEPTH, BATCH, WARMUP, ACTIVE = 256, 4, 64, 2, 3


def run(rank, world, out, balanced):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29533")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    torch.manual_seed(rank)
    layers = []
    for _ in range(DEPTH):
        layers += [torch.nn.Linear(WIDTH, WIDTH), torch.nn.Tanh()]
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    data = torch.randn(BATCH * (1 if balanced else 1 + rank), WIDTH)  # rank 1 twice as long: a straggler

    def step():
        dist.barrier()
        optimizer.zero_grad()
        model(data).square().mean().backward()
        for parameter in model.parameters():
            dist.all_reduce(parameter.grad)
        optimizer.step()

    schedule = torch.profiler.schedule(wait=0, warmup=WARMUP, active=ACTIVE, repeat=1)
    before, after = [], []  # around each profiler.step(): the last one also stops the profiler
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], schedule=schedule) as profiler:
        for _ in range(WARMUP + ACTIVE):
            step()
            before.append(time.perf_counter())
            profiler.step()
            after.append(time.perf_counter())
    profiler.export_chrome_trace(os.path.join(out, f"rank-{rank}.json"))
    walls = [b - a for a, b in zip(after, before[1:])]
    gathered = [None] * world
    dist.all_gather_object(gathered, walls[WARMUP - 1:])
    if rank == 0:
        steps = [max(per_rank[k] for per_rank in gathered) for k in range(ACTIVE)]
        with open(os.path.join(out, "steps.json"), "w") as f:
            json.dump({"ranks": world, "step_wall_s": steps, "per_rank_step_wall_s": gathered}, f, indent=1)
    dist.destroy_process_group()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--balanced"]
    out = args[0] if args else "gloo-trace"
    os.makedirs(out, exist_ok=True)
    mp.spawn(run, args=(2, out, "--balanced" in sys.argv), nprocs=2)
