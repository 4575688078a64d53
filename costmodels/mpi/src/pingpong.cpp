#include "plait/costmodels/pingpong.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "plait/schedule/files.hpp"

namespace plait::costmodels {
namespace {

struct Stats {
  double mean = 0, median = 0, min = 0, stddev = 0;
};

Stats stats_of(const std::vector<double>& values) {
  Stats stats;
  for (double value : values) stats.mean += value;
  stats.mean /= static_cast<double>(values.size());
  double squares = 0;
  for (double value : values) squares += (value - stats.mean) * (value - stats.mean);
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  stats.median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  stats.min = sorted.front();
  if (values.size() > 1) stats.stddev = std::sqrt(squares / double(values.size() - 1));
  return stats;
}

nlohmann::json entry(std::int64_t bytes, const std::vector<double>& seconds) {
  const Stats stats = stats_of(seconds);
  return {{"bytes", bytes}, {"mean_s", stats.mean}, {"median_s", stats.median},
          {"min_s", stats.min}, {"stddev_s", stats.stddev},
          {"repetitions", static_cast<int>(seconds.size())}};
}

// Round trips between ranks 0 and 1; returns the one-way time (rank 0's clock).
double round_trips(MPI_Comm comm, int rank, std::vector<char>& buffer, int bytes, int count) {
  const double start = MPI_Wtime();
  for (int i = 0; i < count; ++i) {
    if (rank == 0) {
      MPI_Send(buffer.data(), bytes, MPI_BYTE, 1, 0, comm);
      MPI_Recv(buffer.data(), bytes, MPI_BYTE, 1, 0, comm, MPI_STATUS_IGNORE);
    } else if (rank == 1) {
      MPI_Recv(buffer.data(), bytes, MPI_BYTE, 0, 0, comm, MPI_STATUS_IGNORE);
      MPI_Send(buffer.data(), bytes, MPI_BYTE, 0, 0, comm);
    }
  }
  return (MPI_Wtime() - start) / (2.0 * count);
}

// How many repetitions of an action lasting `seconds` fill one batch (agreed by all ranks).
int batch_count(MPI_Comm comm, double seconds, double batch_seconds) {
  int count = static_cast<int>(std::clamp(batch_seconds / std::max(seconds, 1e-9), 1.0, 20000.0));
  MPI_Bcast(&count, 1, MPI_INT, 0, comm);
  return count;
}

}  // namespace

nlohmann::json measure_pingpong(MPI_Comm comm, const PingpongOptions& options) {
  int rank = 0, size = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  if (size < 2) throw std::runtime_error("pingpong needs at least 2 ranks, got " + std::to_string(size));
  std::vector<char> buffer(static_cast<std::size_t>(options.max_bytes), 1);
  nlohmann::json pingpong = nlohmann::json::array();
  for (std::int64_t bytes = options.min_bytes; bytes <= options.max_bytes; bytes *= 2) {
    const int n = static_cast<int>(bytes);
    round_trips(comm, rank, buffer, n, 3);  // warm up (connection, registration)
    const double trial = round_trips(comm, rank, buffer, n, 3);
    const int count = batch_count(comm, 2 * trial, options.batch_seconds);
    std::vector<double> seconds;
    for (int r = 0; r < options.repetitions; ++r) {
      seconds.push_back(round_trips(comm, rank, buffer, n, count));
    }
    if (rank == 0) pingpong.push_back(entry(bytes, seconds));
  }
  nlohmann::json allreduce = nlohmann::json::array();
  for (std::int64_t bytes : {std::int64_t{8}, std::int64_t{64} << 10, std::int64_t{4} << 20}) {
    const int doubles = static_cast<int>(bytes / 8);
    std::vector<double> in(doubles, 1.0), out(doubles);
    const auto timed = [&](int count) {
      MPI_Barrier(comm);
      const double start = MPI_Wtime();
      for (int i = 0; i < count; ++i) {
        MPI_Allreduce(in.data(), out.data(), doubles, MPI_DOUBLE, MPI_SUM, comm);
      }
      double local = (MPI_Wtime() - start) / count, slowest = 0;
      MPI_Allreduce(&local, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm);
      return slowest;
    };
    timed(3);
    const int count = batch_count(comm, timed(3), options.batch_seconds);
    std::vector<double> seconds;
    for (int r = 0; r < options.repetitions; ++r) seconds.push_back(timed(count));
    if (rank == 0) allreduce.push_back(entry(bytes, seconds));
  }
  if (rank != 0) return nlohmann::json::object();
  return {{"format", "plait.pingpong"}, {"version", 1}, {"ranks", size},
          {"pingpong", pingpong}, {"allreduce", allreduce}};
}

int run_pingpong_main(int argc, char** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int status = 0;
  try {
    PingpongOptions options;
    std::string output;
    int first = (argc > 1 && std::string(argv[1]) == "pingpong") ? 2 : 1;
    for (int i = first; i < argc; ++i) {
      const std::string arg = argv[i];
      const auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--output") output = value();
      else if (arg == "--min-bytes") options.min_bytes = std::stoll(value());
      else if (arg == "--max-bytes") options.max_bytes = std::stoll(value());
      else if (arg == "--repetitions") options.repetitions = std::stoi(value());
      else throw std::runtime_error("unknown option " + arg);
    }
    if (options.min_bytes < 1 || options.max_bytes < options.min_bytes ||
        options.max_bytes > (std::int64_t{1} << 30) || options.repetitions < 1) {
      throw std::runtime_error("need 1 <= --min-bytes <= --max-bytes <= 1 GiB, --repetitions >= 1");
    }
    const nlohmann::json result = measure_pingpong(MPI_COMM_WORLD, options);
    if (rank == 0) {
      if (output.empty()) {
        std::printf("%s\n", result.dump(2).c_str());
      } else {
        write_text_file(output, result.dump(2) + "\n");
      }
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "plait-exec pingpong: rank %d: %s\n", rank, error.what());
    status = 1;
  }
  if (!initialized) MPI_Finalize();
  return status;
}

}  // namespace plait::costmodels
