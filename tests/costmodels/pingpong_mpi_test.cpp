// Run under mpiexec -n 2: measures ping-pong 8 B .. 64 MiB and an allreduce on
// real MPI, reads the results back as plait calibrate does, fits the piecewise
// message model and checks the result is well formed: every size and allreduce
// present, positive times, a model that prices every size. The fit's error per
// size is printed, not asserted: timings on a shared machine are noise, and the
// accuracy is reported by plait calibrate (and the fit itself is tested on
// synthetic data in message_fit_test).
#include <cstdio>

#include <mpi.h>

#include "plait/costmodels/measurements.hpp"
#include "plait/costmodels/message_fit.hpp"
#include "plait/costmodels/pingpong.hpp"

namespace {

// Rank 0: the number of problems found; others 0.
int measure_and_fit(int rank) {
  plait::costmodels::PingpongOptions options;
  const nlohmann::json result = plait::costmodels::measure_pingpong(MPI_COMM_WORLD, options);
  if (rank != 0) return 0;
  const auto network = plait::costmodels::read_pingpong_results(result.dump(), "pingpong");
  int problems = 0;
  if (network.allreduce.size() != 3 || network.pingpong.size() != 24) {
    std::printf("expected 24 ping-pong sizes and 3 allreduce sizes, got %zu and %zu\n", network.pingpong.size(),
                network.allreduce.size());
    ++problems;
  }
  if (network.model.segments.empty()) {
    std::printf("the fitted model has no segments\n");
    ++problems;
  }
  std::vector<plait::costmodels::MessageSample> samples;
  for (const auto& message : network.pingpong) samples.push_back({message.bytes, message.time.min_s});
  for (const auto& segment : network.model.segments) {
    std::printf("segment <= %lld B: latency %.3g us, bandwidth %.3g GB/s\n",
                static_cast<long long>(segment.max_bytes), segment.latency_s * 1e6,
                segment.seconds_per_byte > 0 ? 1e-9 / segment.seconds_per_byte : 0.0);
  }
  for (const auto& error : plait::costmodels::message_model_errors(network.model, samples)) {
    std::printf("%10lld B  measured %10.3f us  model %10.3f us  error %5.1f%%\n",
                static_cast<long long>(error.bytes), error.measured_s * 1e6,
                error.predicted_s * 1e6, error.relative_error * 100);
    if (!(error.measured_s > 0) || !(error.predicted_s > 0)) ++problems;
  }
  return problems;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int problems = measure_and_fit(rank);
  MPI_Bcast(&problems, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (rank == 0) std::printf("%s\n", problems == 0 ? "PASSED" : "FAILED");
  MPI_Finalize();
  return problems == 0 ? 0 : 1;
}
