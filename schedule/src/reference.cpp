// The reference backend and the in-process comm (one thread per rank).
#include "plait/schedule/reference.hpp"

#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "plait/schedule/error.hpp"

namespace plait::schedule {
namespace {

// splitmix64: a tiny, portable generator so weights are the same everywhere.
double uniform(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) / static_cast<double>(1ull << 53) * 2.0 - 1.0;
}

}  // namespace

ReferenceModel::ReferenceModel(const ModelDesc& model, int layers)
    : model_(model), layers_(layers), h_(model.tstop / layers) {
  if (layers < 1) throw Error("layers", "must be >= 1");
  if (model.kind == "linear") {
    if (model.scheme != "forward-euler" && model.scheme != "backward-euler") {
      throw Error("scheme", "expected forward-euler or backward-euler, got \"" + model.scheme + "\"");
    }
    state_size_ = 1;
    parameters_.assign(layers, {model.lambda});
  } else if (model.kind == "mlp") {
    if (model.width < 1) throw Error("width", "must be >= 1");
    state_size_ = model.width;
    const double scale = 1.0 / std::sqrt(double(model.width));
    for (int block = 0; block < layers; ++block) {
      std::uint64_t state = model.seed * 1000003ull + block;
      std::vector<double> weights(state_size_ * state_size_ + state_size_);
      for (auto& w : weights) w = scale * uniform(state);
      parameters_.push_back(std::move(weights));
    }
  } else {
    throw Error("model", "the reference backend runs linear or mlp, not \"" + model.kind + "\"");
  }
}

std::vector<double> ReferenceModel::input() const {
  if (model_.kind == "linear") return {1.0};
  std::uint64_t state = model_.seed * 7919ull + 17;
  std::vector<double> u(state_size_);
  for (auto& x : u) x = uniform(state);
  return u;
}

std::vector<double> ReferenceModel::step(int block, int span, const std::vector<double>& u) const {
  const double dt = span * h_;
  const auto& p = parameters_.at(block);
  if (model_.kind == "linear") {
    const double factor = model_.scheme == "forward-euler" ? 1 + dt * p[0] : 1 / (1 - dt * p[0]);
    return {factor * u[0]};
  }
  const int d = state_size_;
  std::vector<double> out(u);
  for (int i = 0; i < d; ++i) {
    double z = p[d * d + i];
    for (int j = 0; j < d; ++j) z += p[i * d + j] * u[j];
    out[i] += dt * std::tanh(z);
  }
  return out;
}

std::vector<double> ReferenceModel::step_adjoint(int block, int span, const std::vector<double>& u,
                                                 const std::vector<double>& w,
                                                 std::vector<double>* grad) const {
  const double dt = span * h_;
  const auto& p = parameters_.at(block);
  if (model_.kind == "linear") {
    const bool forward_euler = model_.scheme == "forward-euler";
    const double factor = forward_euler ? 1 + dt * p[0] : 1 / (1 - dt * p[0]);
    if (grad) {
      grad->resize(1);
      (*grad)[0] += (forward_euler ? dt : dt * factor * factor) * u[0] * w[0];
    }
    return {factor * w[0]};
  }
  const int d = state_size_;
  std::vector<double> sensitivity(d);  // dt * tanh'(z) * w
  for (int i = 0; i < d; ++i) {
    double z = p[d * d + i];
    for (int j = 0; j < d; ++j) z += p[i * d + j] * u[j];
    const double t = std::tanh(z);
    sensitivity[i] = dt * (1 - t * t) * w[i];
  }
  std::vector<double> out(w);
  for (int j = 0; j < d; ++j) {
    for (int i = 0; i < d; ++i) out[j] += p[i * d + j] * sensitivity[i];
  }
  if (grad) {
    grad->resize(p.size(), 0.0);
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < d; ++j) (*grad)[i * d + j] += sensitivity[i] * u[j];
      (*grad)[d * d + i] += sensitivity[i];
    }
  }
  return out;
}

double ReferenceModel::loss(const std::vector<double>& u) const {
  double sum = 0;
  for (double x : u) sum += x * x;
  return 0.5 * sum;
}

SerialSolution solve_serial(const ReferenceModel& model) {
  const int n = model.layers();
  std::vector<std::vector<double>> states{model.input()};
  for (int block = 0; block < n; ++block) states.push_back(model.step(block, 1, states.back()));
  SerialSolution solution;
  solution.final_state = states.back();
  solution.loss = model.loss(states.back());
  solution.gradients.resize(n);
  std::vector<double> w = states.back();  // dJ/du = u
  for (int block = n - 1; block >= 0; --block) {
    w = model.step_adjoint(block, 1, states[block], w, &solution.gradients[block]);
  }
  return solution;
}

namespace {

std::uint64_t buffer_key(const Buffer& b) {
  return (std::uint64_t(b.space) << 56) | (std::uint64_t(b.level) << 32) | std::uint32_t(b.point);
}

class ReferenceBackend final : public Backend {
 public:
  explicit ReferenceBackend(const ReferenceModel& model) : model_(model) {}

  void compute(const Op& op) override {
    switch (op.kind) {
      case OpKind::input: set(op.dst) = model_.input(); break;
      case OpKind::zero:
        if (op.dst.space == Space::reg) {
          registers_[buffer_key(op.dst)] = 0;
        } else {
          set(op.dst).assign(model_.state_size(), 0.0);
        }
        break;
      case OpKind::copy: set(op.dst) = get(op.a); break;
      case OpKind::sub: {
        std::vector<double> out = get(op.a);
        const auto& b = get(op.b);
        for (std::size_t i = 0; i < out.size(); ++i) out[i] -= b[i];
        set(op.dst) = std::move(out);
        break;
      }
      case OpKind::norm_sq: {
        double sum = 0;
        for (double x : get(op.a)) sum += x * x;
        registers_[buffer_key(op.dst)] += sum;
        break;
      }
      case OpKind::step:
      case OpKind::step_adjoint: {
        std::vector<double> out =
            op.kind == OpKind::step
                ? model_.step(op.block, op.span, get(op.a))
                : model_.step_adjoint(op.block, op.span, get(op.c), get(op.a),
                                      op.accumulate_grad ? &gradients[op.block] : nullptr);
        if (!op.b.empty()) {
          const auto& rhs = get(op.b);
          for (std::size_t i = 0; i < out.size(); ++i) out[i] += rhs[i];
        }
        set(op.dst) = std::move(out);
        break;
      }
      case OpKind::step_weight:  // the gradient part of the adjoint; its state result is not kept
        model_.step_adjoint(op.block, op.span, get(op.c), get(op.a), &gradients[op.block]);
        break;
      case OpKind::loss:
        loss = model_.loss(get(op.a));
        set(op.dst) = get(op.a);
        break;
      default:
        throw Error("reference backend", "cannot compute " + std::string(to_string(op.kind)));
    }
  }
  double read_register(const Buffer& reg) override { return registers_[buffer_key(reg)]; }
  void write_register(const Buffer& reg, double value) override {
    registers_[buffer_key(reg)] = value;
  }
  std::span<const std::byte> bytes_of(const Buffer& buffer) override {
    return std::as_bytes(std::span(get(buffer)));
  }
  void assign_bytes(const Buffer& buffer, std::span<const std::byte> bytes) override {
    auto& value = set(buffer);
    value.resize(bytes.size() / sizeof(double));
    std::memcpy(value.data(), bytes.data(), bytes.size());
  }

  const std::vector<double>& get(const Buffer& buffer) const {
    const auto it = values_.find(buffer_key(buffer));
    if (it == values_.end()) throw Error("reference backend", "read of unset buffer " + to_string(buffer));
    return it->second;
  }

  std::map<int, std::vector<double>> gradients;
  double loss = 0;

 private:
  std::vector<double>& set(const Buffer& buffer) {
    if (buffer.space == Space::reg) {
      throw Error("reference backend", "register " + to_string(buffer) + " used as a vector");
    }
    return values_[buffer_key(buffer)];
  }

  const ReferenceModel& model_;
  std::unordered_map<std::uint64_t, std::vector<double>> values_;
  std::unordered_map<std::uint64_t, double> registers_;
};

// Messages and allreduce between threads of one process. A failing rank
// aborts the hub, so the others stop waiting and report.
class Hub {
 public:
  explicit Hub(int ranks) : ranks_(ranks), contributions_(ranks) {}

  void post(int from, int to, std::vector<std::byte> bytes) {
    std::lock_guard lock(mutex_);
    channels_[{from, to}].push_back(std::move(bytes));
    changed_.notify_all();
  }
  std::vector<std::byte> take(int from, int to) {
    std::unique_lock lock(mutex_);
    auto& queue = channels_[{from, to}];
    changed_.wait(lock, [&] { return aborted_ || !queue.empty(); });
    if (aborted_) throw Error("rank " + std::to_string(to), "aborted: another rank failed");
    auto bytes = std::move(queue.front());
    queue.pop_front();
    return bytes;
  }
  // Sums in rank order so every rank gets bit-identical results.
  double allreduce(int rank, double value) {
    std::unique_lock lock(mutex_);
    const long generation = generation_;
    contributions_[rank] = value;
    if (++arrived_ == ranks_) {
      sum_ = 0;
      for (double x : contributions_) sum_ += x;
      arrived_ = 0;
      ++generation_;
      changed_.notify_all();
    } else {
      changed_.wait(lock, [&] { return aborted_ || generation_ != generation; });
      if (aborted_) throw Error("rank " + std::to_string(rank), "aborted: another rank failed");
    }
    return sum_;
  }
  void abort() {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    changed_.notify_all();
  }

 private:
  int ranks_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::pair<int, int>, std::deque<std::vector<std::byte>>> channels_;
  std::vector<double> contributions_;
  int arrived_ = 0;
  long generation_ = 0;
  double sum_ = 0;
  bool aborted_ = false;
};

class InProcessComm final : public Comm {
 public:
  InProcessComm(Hub& hub, int rank) : hub_(hub), rank_(rank) {}
  void send(const Op& op, std::span<const std::byte> bytes) override {
    hub_.post(rank_, op.peer, {bytes.begin(), bytes.end()});
  }
  std::vector<std::byte> recv(const Op& op) override { return hub_.take(op.peer, rank_); }
  double allreduce_sum(const Op&, std::span<const int>, double value) override { return hub_.allreduce(rank_, value); }

 private:
  Hub& hub_;
  int rank_;
};

}  // namespace

ReferenceRun run_reference(const Program& program, const ReferenceModel& model) {
  if (model.layers() != program.layers) {
    throw Error("reference run", "model has " + std::to_string(model.layers()) + " layers, program " +
                                     std::to_string(program.layers));
  }
  const int ranks = program.ranks;
  Hub hub(ranks);
  std::vector<ReferenceBackend> backends;
  backends.reserve(ranks);
  for (int r = 0; r < ranks; ++r) backends.emplace_back(model);
  std::vector<RunResult> results(ranks);
  std::vector<std::exception_ptr> failures(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      try {
        InProcessComm comm(hub, r);
        results[r] = interpret(program, r, backends[r], comm);
      } catch (...) {
        failures[r] = std::current_exception();
        hub.abort();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& failure : failures) {  // the first real failure, not the aborts it caused
    if (!failure) continue;
    try {
      std::rethrow_exception(failure);
    } catch (const Error& error) {
      if (error.why().rfind("aborted:", 0) == 0) continue;
      throw;
    }
  }
  for (const auto& failure : failures) {
    if (failure) std::rethrow_exception(failure);
  }

  ReferenceRun run;
  const int last = ranks - 1;
  run.final_state = backends[last].get(Buffer{Space::u, 0, program.layers});
  run.loss = backends[program.ends_on_first_rank ? 0 : last].loss;  // the rank that ran the loss op
  run.gradients.resize(program.layers);
  for (auto& backend : backends) {
    for (auto& [block, gradient] : backend.gradients) run.gradients[block] = std::move(gradient);
  }
  run.result = results[0];
  return run;
}

SolveReport solve_reference(const Program& program) {
  const ReferenceModel model(program.model, program.layers);
  const ReferenceRun run = run_reference(program, model);
  const SerialSolution serial = solve_serial(model);
  SolveReport report;
  report.iterations = run.result.forward_iterations;
  report.residual_norms = run.result.forward_residual_norms;
  report.adjoint_residual_norms = run.result.adjoint_residual_norms;
  report.final_state = run.final_state;
  report.serial_final_state = serial.final_state;
  for (std::size_t i = 0; i < run.final_state.size(); ++i) {
    report.max_abs_error_vs_serial =
        std::max(report.max_abs_error_vs_serial, std::abs(run.final_state[i] - serial.final_state[i]));
  }
  for (int block = 0; block < program.layers; ++block) {
    const auto& got = run.gradients[block];
    const auto& want = serial.gradients[block];
    if (got.size() != want.size()) {
      throw Error("solve", "no gradient for block " + std::to_string(block));
    }
    for (std::size_t i = 0; i < got.size(); ++i) {
      report.max_abs_gradient_error_vs_serial =
          std::max(report.max_abs_gradient_error_vs_serial, std::abs(got[i] - want[i]));
    }
  }
  return report;
}

}  // namespace plait::schedule
