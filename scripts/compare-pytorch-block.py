#!/usr/bin/python3
"""Times a serial training step over N of PyTorch's own TransformerEncoderLayer
(norm_first, GELU, no dropout) at a shape, to compare plait's block with it.

A comparison aid only (Debian's python3-torch); plait itself never uses Python.
Prints one JSON line: {"layers", "median_step_s", "min_step_s", "max_step_s", ...}.
Usage (Debian's python3, where python3-torch lives): scripts/compare-pytorch-block.py --layers 32 --d-model 128 --heads 4 --seq 64 --batch 8 [--mask causal|none]
"""
import argparse
import json
import statistics
import time

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--mlp-ratio", type=int, default=4)
    parser.add_argument("--mask", choices=["causal", "none"], default="none")
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    layers = torch.nn.ModuleList(
        torch.nn.TransformerEncoderLayer(args.d_model, args.heads, args.mlp_ratio * args.d_model, dropout=0.0,
                                         activation="gelu", norm_first=True)
        for _ in range(args.layers))
    layers.train()
    # torch 1.13: [seq, batch, d_model] (no batch_first in the C++-equal default).
    x = torch.randn(args.seq, args.batch, args.d_model)
    target = torch.randn_like(x)
    mask = None
    if args.mask == "causal":
        mask = torch.full((args.seq, args.seq), float("-inf")).triu(1)
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        layers.zero_grad(set_to_none=True)
        u = x
        for layer in layers:
            u = layer(u, src_mask=mask)
        loss = 0.5 * (u - target).pow(2).mean()
        loss.backward()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    print(json.dumps({"layers": args.layers, "d_model": args.d_model, "heads": args.heads, "seq": args.seq,
                      "batch": args.batch, "mask": args.mask, "steps": args.steps,
                      "median_step_s": statistics.median(times), "min_step_s": min(times),
                      "max_step_s": max(times), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
