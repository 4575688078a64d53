// Data parallelism over any builder (build_data_parallel.cpp).
#pragma once

#include "plait/schedule/build.hpp"

namespace plait::schedule::detail {

// spec.replicas copies of build_one_replica(spec with batch / replicas), on
// consecutive blocks of ranks, their gradients summed by a grad_allreduce per
// rank at the end. Throws plait::Error when the replicas and micro-batches do
// not divide the batch or the model has no batch.
Program data_parallel(const BuildSpec& spec, Program (*build_one_replica)(const BuildSpec&));

// spec.zero_stage (1-3) applied to a finished data-parallel Program (tensor
// parallelism and a step's ends included): gradient sums, optimizer step and
// block steps rewritten as ZeRO / FSDP run them (build_sharded.cpp). Nothing
// for stage 0; plait::Error for another stage, one replica, or prefetch below stage 3.
void shard_data_parallel(Program& program, const BuildSpec& spec);
// build(spec without sharding; stage 3: gradients summed a block at a time),
// then shard_data_parallel: what every builder runs for spec.zero_stage > 0.
Program sharded(const BuildSpec& spec, Program (*build)(const BuildSpec&));

}  // namespace plait::schedule::detail
