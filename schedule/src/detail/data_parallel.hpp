// Data parallelism over any builder (build_data_parallel.cpp).
#pragma once

#include "plait/schedule/build.hpp"

namespace plait::schedule::detail {

// spec.replicas copies of build_one_replica(spec with batch / replicas), on
// consecutive blocks of ranks, their gradients summed by a grad_allreduce per
// rank at the end. Throws plait::Error when the replicas and micro-batches do
// not divide the batch or the model has no batch.
Program data_parallel(const BuildSpec& spec, Program (*build_one_replica)(const BuildSpec&));

}  // namespace plait::schedule::detail
