// The executor's gradient all-reduce, timed in runs (detail/gradient_exchange.hpp).
#include "detail/gradient_exchange.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <tuple>

#include "detail/temporary_file.hpp"
#include "plait/costmodels/message_fit.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/cost_keys.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/schedule/memory.hpp"
#include "plait/traces/trace.hpp"

namespace plait::costmodels::detail {
namespace {

constexpr int repeats = 5;
// Gradients of about 4 and 16 MiB: on this VM the cost per byte changes
// across its cache (~1.4 GB/s at 3 MB, ~1.0 GB/s at 13 MB), and data-parallel
// steps of the main job's shapes sit between the two.
constexpr std::array<std::int64_t, 2> target_bytes{std::int64_t{4} << 20, std::int64_t{16} << 20};

schedule::Program data_parallel_program(const schedule::ModelDesc& shape, std::int64_t bytes) {
  schedule::BuildSpec spec;
  spec.model = shape;
  spec.model.batch = 2 * shape.batch;  // each replica runs the fitted shape
  spec.replicas = 2;
  spec.ranks = 1;
  const double block_bytes = double(schedule::gradient_bytes(shape, 1));
  spec.layers = std::max(1, static_cast<int>(std::lround(double(bytes) / block_bytes)));
  return schedule::build_gpipe(spec);
}

// One traced step of `program`: per all-reduce, its bytes and the time from
// the later replica's start to the earlier one's end.
std::vector<MessageSample> run_traced(const InRunSetup& setup, const std::string& program, const std::string& what) {
  const TracedRun run = run_exec_traced(setup, program, 2, {"--steps", "2", "--warmup", "1", "--no-serial"}, what);
  struct Span {
    std::int64_t bytes = 0;
    double latest_start = 0, earliest_end = 0;
  };
  std::map<std::tuple<int, int, int>, Span> by_op;  // the same op of each replica
  for (const traces::Event& event : run.events) {
    if (event.cost_key != schedule::cost_keys::grad_allreduce) continue;
    Span& span = by_op.try_emplace({event.section, event.repetition, event.op}, Span{event.bytes, event.start, event.end})
                     .first->second;
    span.latest_start = std::max(span.latest_start, event.start);
    span.earliest_end = std::min(span.earliest_end, event.end);
  }
  if (by_op.empty()) throw Error(what, "the trace has no gradient all-reduce");
  std::vector<MessageSample> samples;
  for (const auto& [op, span] : by_op) samples.push_back({span.bytes, std::max(0.0, span.earliest_end - span.latest_start)});
  return samples;
}

}  // namespace

std::vector<MessageMeasurement> measure_gradient_allreduce(const InRunSetup& setup, const schedule::ModelDesc& shape) {
  std::map<std::int64_t, TemporaryFile> programs;  // by target size
  for (std::int64_t bytes : target_bytes) {
    programs.emplace(bytes, TemporaryFile{temporary_path("gradient-program-" + std::to_string(bytes))});
    schedule::save_program(data_parallel_program(shape, bytes), programs.at(bytes).path);
  }
  std::map<std::int64_t, std::vector<double>> seconds;  // by measured size
  int done = 0;
  for (int run = 0; run < repeats; ++run)
    for (std::int64_t bytes : target_bytes) {  // interleaved: a drift in the machine's speed hits both
      setup.on_progress(done++, repeats * int(target_bytes.size()));
      for (const MessageSample& sample :
           run_traced(setup, programs.at(bytes).path, "gradient all-reduce of " + shape_name(shape)))
        seconds[sample.bytes].push_back(sample.seconds);
    }
  setup.on_progress(done, done);
  std::vector<MessageMeasurement> measured;
  for (auto& [bytes, list] : seconds) measured.push_back({bytes, timing_of(std::move(list))});
  return measured;
}

}  // namespace plait::costmodels::detail
