// Run under mpiexec -n 2: measures ping-pong 8 B .. 64 MiB, fits the message
// model on all sizes, and checks it is within 10% of the measured (fastest-batch)
// time at every size up to 4 MiB; larger sizes are printed, not asserted: their
// round trips take milliseconds, and on a shared 2-core machine every one of the
// 15 batches is stalled by other processes (plait calibrate reports them).
// Up to 3 measurements are tried; if none fits while other processes keep the
// cores busy (1-minute load above half the cores), the test reports itself
// skipped (exit 77), since its timings then measure the neighbours.
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include <mpi.h>

#include "plait/costmodels/measurements.hpp"
#include "plait/costmodels/message_fit.hpp"
#include "plait/costmodels/pingpong.hpp"

namespace {

// Rank 0: sizes off by more than 10% (or -1 for malformed results); others 0.
int measure_and_fit(int rank) {
  plait::costmodels::PingpongOptions options;
  const nlohmann::json result = plait::costmodels::measure_pingpong(MPI_COMM_WORLD, options);
  if (rank != 0) return 0;
  const auto network = plait::costmodels::read_pingpong_results(result.dump(), "pingpong");
  if (network.allreduce.size() != 3 || network.pingpong.size() != 24) return -1;
  std::vector<plait::costmodels::MessageSample> samples;
  for (const auto& message : network.pingpong) samples.push_back({message.bytes, message.time.min_s});
  for (const auto& segment : network.model.segments) {
    std::printf("segment <= %lld B: latency %.3g us, bandwidth %.3g GB/s\n",
                static_cast<long long>(segment.max_bytes), segment.latency_s * 1e6,
                segment.seconds_per_byte > 0 ? 1e-9 / segment.seconds_per_byte : 0.0);
  }
  int off = 0;
  for (const auto& error : plait::costmodels::message_model_errors(network.model, samples)) {
    std::printf("%10lld B  measured %10.3f us  model %10.3f us  error %5.1f%%\n",
                static_cast<long long>(error.bytes), error.measured_s * 1e6,
                error.predicted_s * 1e6, error.relative_error * 100);
    if (error.relative_error > 0.10 && error.bytes <= (std::int64_t{4} << 20)) ++off;
  }
  return off;
}

double load_average() {
  std::ifstream file("/proc/loadavg");
  double load = 0;
  file >> load;
  return load;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int off = 1;
  for (int attempt = 1; attempt <= 3 && off != 0; ++attempt) {
    off = measure_and_fit(rank);
    MPI_Bcast(&off, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
      std::printf("attempt %d: %s\n", attempt,
                  off < 0 ? "malformed results"
                          : (std::to_string(off) + " sizes up to 4 MiB off by more than 10%").c_str());
    }
    if (off < 0) break;
  }
  // Our two ranks count for about 2 of the load.
  const double others = load_average() - 2;
  const double cores = std::thread::hardware_concurrency();
  const bool busy = off > 0 && others > cores / 2;
  if (rank == 0) {
    std::printf("%s\n", off == 0 ? "PASSED"
                                  : busy ? "SKIPPED: the machine is busy (load of other processes "
                                           "above half the cores)"
                                         : "FAILED");
  }
  MPI_Finalize();
  return off == 0 ? 0 : busy ? 77 : 1;
}
