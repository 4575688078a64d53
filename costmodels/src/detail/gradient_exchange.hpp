// The executor's gradient all-reduce as data parallelism runs it
// (CalibrationOptions::in_run): traced steps of a plain data-parallel Program
// (2 replicas of one rank, GPipe with one micro-batch) of one fitted shape,
// at two gradient sizes.
#pragma once

#include <vector>

#include "detail/in_run_timing.hpp"
#include "plait/costmodels/profile.hpp"

namespace plait::costmodels::detail {

// Per gradient size, the time of its all-reduce from the later replica's
// arrival to the first replica's end (packing, exchange, sum, unpacking), over
// the runs. Throws plait::Error when a run fails or its trace has no all-reduce.
std::vector<MessageMeasurement> measure_gradient_allreduce(const InRunSetup& setup, const schedule::ModelDesc& shape);

}  // namespace plait::costmodels::detail
