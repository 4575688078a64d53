// Run under mpiexec -n 2: measures ping-pong, fits the message model, and
// checks it is within 10% of the measured time at every size.
#include <cstdio>

#include <mpi.h>

#include "plait/costmodels/measurements.hpp"
#include "plait/costmodels/message_fit.hpp"
#include "plait/costmodels/pingpong.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  plait::costmodels::PingpongOptions options;
  options.max_bytes = std::int64_t{16} << 20;
  const nlohmann::json result = plait::costmodels::measure_pingpong(MPI_COMM_WORLD, options);
  int failures = 0;
  if (rank == 0) {
    const auto network = plait::costmodels::read_pingpong_results(result.dump(), "pingpong");
    std::vector<plait::costmodels::MessageSample> samples;
    for (const auto& message : network.pingpong) {
      samples.push_back({message.bytes, message.time.min_s});
    }
    for (const auto& segment : network.model.segments) {
      std::printf("segment <= %lld B: latency %.3g us, bandwidth %.3g GB/s\n",
                  static_cast<long long>(segment.max_bytes), segment.latency_s * 1e6,
                  segment.seconds_per_byte > 0 ? 1e-9 / segment.seconds_per_byte : 0.0);
    }
    for (const auto& error : plait::costmodels::message_model_errors(network.model, samples)) {
      std::printf("%10lld B  measured %10.3f us  model %10.3f us  error %5.1f%%\n",
                  static_cast<long long>(error.bytes), error.measured_s * 1e6,
                  error.predicted_s * 1e6, error.relative_error * 100);
      if (error.relative_error > 0.10) ++failures;
    }
    if (network.allreduce.empty() || network.pingpong.size() != 22) ++failures;
    std::printf("%s: %d sizes off by more than 10%%\n", failures ? "FAILED" : "PASSED", failures);
  }
  MPI_Bcast(&failures, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Finalize();
  return failures == 0 ? 0 : 1;
}
