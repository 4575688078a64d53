#include "plait/executor/exec.hpp"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>

#include <sys/resource.h>

#include "detail/host_load.hpp"
#include "plait/executor/serial_baseline.hpp"
#include "plait/executor/torch_backend.hpp"
#include "plait/executor/trace.hpp"
#include "plait/schedule/cost_keys.hpp"
#include "plait/schedule/files.hpp"

namespace plait::executor {

using schedule::OpKind;
using schedule::Program;

namespace {

// High-water mark of this process's resident memory (CPU tensors, kept graphs).
double peak_resident_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) * 1024.0;  // Linux reports KiB
}

// Agreement step: every rank passes its own error (or none); if any rank has
// one, every rank throws, and the lowest failing rank is the one that prints.
void agree(World& world, const std::optional<Error>& mine) {
  const int reporter = world.first_failed(mine.has_value());
  if (reporter < 0) return;
  throw AgreedError(mine ? *mine : Error("rank " + std::to_string(reporter), "failed"), reporter);
}

// The inputs of a rank's loss ops, by micro-batch: the network output (none
// on ranks without a loss op).
std::vector<schedule::Buffer> network_outputs(const Program& program, int rank) {
  std::map<std::int32_t, schedule::Buffer> by_micro;
  for (const auto& section : program.rank_programs.at(rank).sections)
    for (const auto& op : section.ops)
      if (op.kind == OpKind::loss) by_micro.emplace(op.a.micro, op.a);
  std::vector<schedule::Buffer> outputs;
  for (const auto& [micro, buffer] : by_micro) outputs.push_back(buffer);
  return outputs;
}

// [block, count, values...] per block, so a gather carries a map.
std::vector<double> pack_gradients(const TorchBackend& backend) {
  std::vector<double> packed;
  for (int block : backend.gradient_blocks()) {
    const auto g = backend.gradient(block);
    packed.push_back(block);
    packed.push_back(double(g.size()));
    packed.insert(packed.end(), g.begin(), g.end());
  }
  return packed;
}

void unpack_gradients(const std::vector<double>& packed, std::map<int, std::vector<double>>& into) {
  for (std::size_t i = 0; i + 1 < packed.size();) {
    const int block = int(packed[i]);
    const auto count = std::size_t(packed[i + 1]);
    std::vector<double> g(packed.begin() + long(i + 2), packed.begin() + long(i + 2 + count));
    auto& sum = into[block];  // a block split over ranks adds up
    if (sum.empty()) sum = std::move(g);
    else
      for (std::size_t k = 0; k < count; ++k) sum[k] += g[k];
    i += 2 + count;
  }
}

struct StepTimer {
  World& world;
  double start = 0;
  void begin() {
    world.barrier();
    start = now_seconds();
  }
  double end() {
    world.barrier();
    return now_seconds() - start;
  }
};

schedule::RunResult run_program_step(World& world, const Program& program, TorchBackend& backend,
                                     schedule::OpListener* listener) {
  backend.zero_gradients();
  schedule::RunResult result;
  {
    auto comm = world.make_comm();
    result = schedule::interpret(program, world.rank(), backend, *comm, listener);
  }  // the comm waits for its sends here
  backend.synchronize();
  return result;
}

void record_trace(World& world, const Program& program, TorchBackend& backend, const std::string& path) {
  if (path.empty()) return;  // the same on every rank
  // Sampled before and after the step, so that drift between the two is corrected.
  const ClockSample before = world.sample_clock_offset();
  TraceRecorder timed([&backend] { backend.synchronize(); });
  world.barrier();
  char origin_text[48];
  std::snprintf(origin_text, sizeof origin_text, "%.9f", now_seconds());
  const double origin = std::stod(world.broadcast(origin_text));  // rank 0's clock
  run_program_step(world, program, backend, &timed);
  const ClockSample after = world.sample_clock_offset();
  const auto all = world.gather(pack_records(timed.records(), ClockMap(before, after), origin));
  if (world.rank() == 0) traces::save_trace(make_trace(program, all), path);
}

// Rank 0 times the serial baseline (and keeps its results); the others wait.
// With the speed probe, rank 0 probes its speed between the serial steps and
// after the last, alone as they run, on the serial baseline's own blocks, and
// reports the mean: the serial steps come seconds after the Program's, maybe
// on the other core (ranks are not bound), and this VM's cores change speed
// on their own within a fraction of a second (a 2-rank run's serial step ran
// 0.6x-1.8x its price at rank 0's probe of the Program's steps; probes only
// before and after the serial steps still left single runs +-20 % off).
void run_serial(World& world, const Program& program, const ExecOptions& options, ExecReport& report) {
  detail::HostWindow host(world);
  if (world.rank() == 0) {
    SerialBaseline serial(program.model, program.layers, options.device);
    for (int i = 0; i < options.warmup; ++i) serial.run_step_async();
    serial.synchronize();
    // Timed step by step when probes run between them.
    const int batches = options.speed_probe ? options.steps : 1;
    double wall = 0, cpu = 0, probes = 0;
    for (int batch = 0; batch < batches; ++batch) {
      if (options.speed_probe) probes += serial.time_forward_cycle(0);  // a few cycles
      const double start = now_seconds(), cpu_start = cpu_seconds();
      for (int i = 0; i < options.steps / batches; ++i) serial.run_step_async();
      serial.synchronize();
      wall += now_seconds() - start;
      cpu += cpu_seconds() - cpu_start;
    }
    report.serial_time_per_step_s = wall / options.steps;
    report.serial_cpu_time_per_step_s = cpu / options.steps;
    if (options.speed_probe)
      report.serial_speed_probe_s = (probes + serial.time_forward_cycle(0)) / (options.steps + 1);
    report.serial_loss = serial.run_step();
    if (options.check_serial) {
      report.max_rel_err_output = relative_error(report.output, serial.output());
      double worst = 0;
      std::vector<int> compared;
      for (int block = program.frozen_blocks; block < program.layers; ++block) compared.push_back(block);  // frozen ones have none
      if (program.model.vocab > 0)  // frozen first blocks freeze the embeddings too
        compared.insert(compared.end(), program.frozen_blocks > 0 ? std::initializer_list<int>{final_norm_gradient_id}
                                                                  : std::initializer_list<int>{embedding_gradient_id, final_norm_gradient_id});
      for (int block : compared) {
        auto found = report.gradients.find(block);
        if (found == report.gradients.end())
          throw Error("check-serial", "the Program left block " + std::to_string(block) + " without a gradient");
        worst = std::max(worst, relative_error(found->second, serial.gradient(block)));
      }
      report.max_rel_err_grad = worst;
    }
    report.speedup = *report.serial_time_per_step_s / report.time_per_step_s;
  }
  world.quiet_barrier();
  report.serial_host_load = host.end();
}

// One plain forward step (block.fwd) per distinct block of the rank, run in
// turn on a random state in scratch buffers, the cycle repeated for at least
// `probe_seconds`; the median cycle over its op count. Cycling over all of
// the rank's blocks loads their weights as the steps do: one block in a hot
// loop stays in cache, and its probe missed ~10 % of a 1.5x slowdown that a
// run saw (time / probe held within ~5 % with the cycle). Every rank starts
// together, so co-running ranks load the machine as they do in the steps.
// A tensor-parallel group's steps sum over the group: its shards run a fixed
// number of cycles together. -1 when the rank has no forward step.
double time_speed_probe(World& world, const Program& program, TorchBackend& backend) {
  constexpr double probe_seconds = 0.05;
  constexpr int min_cycles = 3;
  const bool fixed_cycles = program.model.tensor_parallel > 1;
  std::vector<schedule::Op> cycle;
  std::set<std::int32_t> blocks;
  for (const auto& section : program.rank_programs.at(world.rank()).sections)
    for (const auto& op : section.ops)
      if (op.kind == schedule::OpKind::step && blocks.insert(op.block).second) cycle.push_back(op);
  world.barrier();
  if (cycle.empty()) return -1;
  // Scratch buffers no Program uses, so the steps' states stay as they are.
  for (schedule::Op& op : cycle) {
    op.graph = schedule::GraphUse::none;  // a plain block.fwd, whether the step kept its graph or not
    op.a = schedule::Buffer{schedule::Space::tmp, 0, 1 << 20};
    op.dst = schedule::Buffer{schedule::Space::tmp, 0, (1 << 20) + 1};
    op.b = schedule::Buffer{};
  }
  if (!backend.has_state(cycle.front().a)) backend.fill_random(cycle.front().a, 1);
  const auto run_cycle = [&] {
    for (const schedule::Op& op : cycle) backend.compute(op);
    backend.synchronize();
  };
  run_cycle();  // warm
  std::vector<double> seconds;
  const double start = now_seconds();
  while (seconds.size() < min_cycles || (!fixed_cycles && now_seconds() - start < probe_seconds)) {
    const double begin = now_seconds();
    run_cycle();
    seconds.push_back((now_seconds() - begin) / double(cycle.size()));
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

}  // namespace

Program load_program_on_all(World& world, const std::string& path) {
  Program program;
  std::optional<Error> problem;
  try {
    program = schedule::load_program(path);
  } catch (const Error& error) {
    problem = error;
  } catch (const std::exception& error) {
    problem = Error(path, error.what());
  }
  agree(world, problem);
  return program;
}

void check_run(World& world, const Program& program, const ExecOptions& options) {
  std::optional<Error> problem;
  try {
    if (program.ranks != world.size())
      throw Error("program", "written for " + std::to_string(program.ranks) + " ranks, but " +
                                 std::to_string(world.size()) + " were started (mpirun -n " +
                                 std::to_string(program.ranks) + ")");
    check_runnable(program.model, options.device);
    if (options.steps < 1) throw Error("--steps", "must be at least 1");
    if (options.warmup < 0) throw Error("--warmup", "must not be negative");
    if (options.threads < 1) throw Error("--threads", "must be at least 1");
    if (world.rank() == 0 && !options.trace_path.empty()) {
      check_writable(options.trace_path);  // before the run, and without leaving an empty trace behind
    }
  } catch (const Error& error) {
    problem = error;
  }
  agree(world, problem);
}

ExecReport execute(World& world, const Program& program, const ExecOptions& options) {
  set_up_compute(options.threads);
  ExecReport report;
  report.ranks = world.size();
  report.kind = program.kind;
  report.layers = program.layers;
  report.device = options.device;
  report.steps = options.steps;

  const std::vector<int> tensor_group = schedule::tensor_group(program, world.rank());
  TorchBackend backend(program, world.rank(), options.device,
                       tensor_group.size() > 1 ? world.make_group_sum(tensor_group) : nullptr);
  backend.set_keep_step_graphs(options.keep_step_graphs);
  for (int i = 0; i < options.warmup; ++i) run_program_step(world, program, backend, nullptr);
  if (world.rank() == options.fail_rank) {
    // The moment of the fault, for tests that time how fast the others end.
    std::fprintf(stderr, "plait-exec: rank %d: injecting a fault (--fail-rank)\n", world.rank());
    if (options.fail_by_signal) std::raise(SIGKILL);  // dies without a word, as a crashed rank would
    throw std::runtime_error("injected fault (--fail-rank)");
  }
  // The probe brackets the timed steps: a core can change speed within a run.
  const double probe_before = options.speed_probe ? time_speed_probe(world, program, backend) : 0;
  // The probe's scratch states pushed the steps' own out of the caches: the
  // first step after it ran 5 % slower than the rest in the median run, 29 %
  // in a 2-stage GPipe's. One untimed step brings them back.
  if (options.speed_probe) run_program_step(world, program, backend, nullptr);
  detail::HostWindow host(world);
  StepTimer timer{world};
  timer.begin();
  const double cpu_start = cpu_seconds();
  std::vector<double> step_seconds;
  for (int i = 0; i < options.steps; ++i) {
    const double step_start = now_seconds();
    report.run = run_program_step(world, program, backend, nullptr);
    step_seconds.push_back(now_seconds() - step_start);
  }
  const double cpu_used = cpu_seconds() - cpu_start;
  report.time_per_step_s = timer.end() / options.steps;
  report.steps_host_load = host.end();
  for (const auto& rank : world.gather(step_seconds)) {
    report.step_times_s.resize(rank.size());
    for (std::size_t i = 0; i < rank.size(); ++i) report.step_times_s[i] = std::max(report.step_times_s[i], rank[i]);
  }
  if (options.speed_probe) {
    const double probe_after = time_speed_probe(world, program, backend);
    for (const auto& rank : world.gather({probe_before, probe_after})) {
      report.speed_probe_before_s.push_back(rank.at(0));
      report.speed_probe_after_s.push_back(rank.at(1));
      report.speed_probe_s.push_back((rank.at(0) + rank.at(1)) / 2);
    }
  }
  for (const auto& used : world.gather({cpu_used}))
    report.cpu_time_per_step_s = std::max(report.cpu_time_per_step_s, used.at(0) / options.steps);

  // Results of the last timed step, gathered on rank 0.
  // Micro-batches are the batch's rows in order: their states concatenated are the whole output.
  // Every shard of a tensor-parallel group holds the same output: the first one's is reported.
  const bool reports_output = tensor_group.front() == world.rank();
  std::vector<double> output;
  for (const schedule::Buffer& buffer : reports_output ? network_outputs(program, world.rank()) : std::vector<schedule::Buffer>{}) {
    const std::vector<double> rows = backend.state(buffer);
    output.insert(output.end(), rows.begin(), rows.end());
  }
  const auto outputs = world.gather(output);
  const auto losses = world.gather(output.empty() ? std::vector<double>{} : std::vector<double>{backend.last_loss()});
  // Gradients are as large as the model: gathered only to be compared.
  // Every replica holds the same sums after the gradient all-reduce: the first one's are the step's;
  // after a reduce-scatter (ZeRO stages 2, 3) each holds its shard and zeros elsewhere: theirs add up.
  // A tensor-parallel group's shards add up to the whole blocks' (TorchBackend::gradient).
  const bool reports_gradients =
      options.check_serial && (program.zero_stage >= 2 || schedule::replica_of(program, world.rank()) == 0);
  const auto gradients = world.gather(reports_gradients ? pack_gradients(backend) : std::vector<double>{});
  // Replicas hold consecutive rows of the batch, in rank order; each one's
  // loss is its share of the batch's mean.
  for (std::size_t rank = 0; rank < outputs.size(); ++rank) {
    report.output.insert(report.output.end(), outputs[rank].begin(), outputs[rank].end());
    if (!losses[rank].empty()) report.loss += losses[rank][0];
    unpack_gradients(gradients[rank], report.gradients);
  }

  // Peak resident memory before the serial baseline runs (rank 0 runs it).
  const auto memory = world.gather({peak_resident_bytes(), double(backend.graph_misses())});
  for (const auto& rank : memory) {
    report.peak_memory_bytes.push_back(rank.at(0));
    report.graph_misses += std::int64_t(rank.at(1));
  }

  record_trace(world, program, backend, options.trace_path);
  if (options.measure_serial || options.check_serial) run_serial(world, program, options, report);
  return report;
}

double relative_error(const std::vector<double>& value, const std::vector<double>& reference) {
  if (value.size() != reference.size())
    throw Error("compare", "sizes differ: " + std::to_string(value.size()) + " vs " +
                               std::to_string(reference.size()));
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    diff += (value[i] - reference[i]) * (value[i] - reference[i]);
    norm += reference[i] * reference[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

}  // namespace plait::executor
