// MPI point-to-point and allreduce timing: what `plait-exec pingpong` runs.
// Output is the "plait.pingpong" JSON that plait calibrate reads
// (read_pingpong_results in plait/costmodels/measurements.hpp).
#pragma once

#include <cstdint>

#include <mpi.h>
#include <nlohmann/json.hpp>

namespace plait::costmodels {

struct PingpongOptions {
  std::int64_t min_bytes = 8;
  std::int64_t max_bytes = std::int64_t{64} << 20;  // sizes: powers of two in between
  int repetitions = 15;            // timed batches per size (mean, median, min, stddev)
  double batch_seconds = 0.5e-3;   // each batch repeats round trips for about this long
};

// Collective over `comm` (at least 2 ranks): ranks 0 and 1 ping-pong every size
// (one-way time = round trip / 2), then all ranks allreduce 8 B, 64 KiB and 4 MiB
// (time of one allreduce, the slowest rank's). Rank 0 returns the JSON, others {}.
nlohmann::json measure_pingpong(MPI_Comm comm, const PingpongOptions& options = {});

// `plait-exec pingpong [--output FILE] [--min-bytes N] [--max-bytes N]
// [--repetitions N]`: initialises MPI unless already done, measures, and rank 0
// writes the JSON to FILE (or stdout). argv[0] is skipped, and argv[1] too when it
// is "pingpong". Returns the process exit code (0, or 1 with a message on stderr).
int run_pingpong_main(int argc, char** argv);

}  // namespace plait::costmodels
