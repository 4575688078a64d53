// Replica collectives beyond the all-reduce (ZeRO / FSDP's reduce-scatters
// and all-gathers) and the gradient stream that runs the overlapped ones.
#include <simgrid/s4u/Actor.hpp>
#include <simgrid/s4u/Engine.hpp>

#include "collectives.hpp"
#include "plait/schedule/error.hpp"
#include "rank_actor.hpp"

namespace plait::simulator::detail {
namespace {

namespace sg4 = simgrid::s4u;

// The blocks whose parameters an all-gather assembles.
std::pair<int, int> gathered_blocks(const schedule::Op& op) { return {op.block, op.block + std::max(op.span, 1)}; }

}  // namespace

void SimGridComm::run_or_push(const schedule::Op& op, std::span<const int> group) {
  if (op.overlap && stream_ != nullptr) stream_->push(op, group);
  else collective(Channel::collective, op, group, 0);
}

// The cost backend has no data: the buffers stay empty.
std::vector<std::byte> SimGridComm::reduce_scatter_gradients(const schedule::Op& op, std::span<const int> group,
                                                             std::span<const std::byte>) {
  run_or_push(op, group);
  return {};
}

std::vector<std::byte> SimGridComm::all_gather_parameters(const schedule::Op& op, std::span<const int> group,
                                                          std::span<const std::byte>) {
  run_or_push(op, group);
  return {};
}

// As the gradient all-reduce (collective_of), without its pass over the
// buffer: the closed forms of cluster_links.hpp leave it out of the halves.
void SimGridComm::sharded_collective(Channel channel, schedule::OpKind kind, std::span<const int> group,
                                     std::int64_t bytes) {
  const int size = static_cast<int>(group.size());
  if (size <= 1) return;
  const costmodels::GroupSpan span = span_of_group(group);
  if (span.nodes > 1 && costs_.hierarchical_gradients && costs_.barriers != nullptr) {
    costs_.barriers->wait(channel, group);  // NCCL's collective starts when the last member arrives
    sg4::this_actor::sleep_for(costmodels::hierarchical_gather_seconds(node_ring(), costs_.inter, span, double(bytes)));
    return;
  }
  if (span.nodes > 1) sg4::this_actor::sleep_for(costs_.inter.collective_overhead_s);
  CollectivePort port(*this, channel, group);
  const int index = index_in_group(group, state_.rank);
  if (kind == schedule::OpKind::reduce_scatter) ring_reduce_scatter(port, index, size, bytes, 0);
  else ring_all_gather(port, index, size, bytes, 0);
}

void SimGridComm::before_compute(const schedule::Op& op) {
  if (stream_ == nullptr || !schedule::is_block_step(op.kind) || !stream_->gathering(op.block)) return;
  state_.waiting_for = "the prefetched all-gather of block " + std::to_string(op.block);
  const double start = sg4::Engine::get_clock();
  stream_->wait_for_gathers(op.block);
  const double waited = sg4::Engine::get_clock() - start;
  state_.op_prefetch_wait_s += waited;
  state_.prefetch_wait_s += waited;
  state_.waiting_for.clear();
}

void SimGridComm::finish() {
  if (stream_ == nullptr) return;
  state_.waiting_for = "its overlapped collectives";
  const double start = sg4::Engine::get_clock();
  stream_->close_and_wait();
  state_.stream_wait_s = sg4::Engine::get_clock() - start;
  state_.waiting_for.clear();
}

GradientStream::GradientStream(int rank, int ranks, AllreduceAlgorithm algorithm, std::int64_t eager_limit_bytes,
                               CommCosts costs)
    : state_{.rank = rank}, comm_(state_, ranks, algorithm, eager_limit_bytes, nullptr, std::move(costs)),
      mutex_(sg4::Mutex::create()), changed_(sg4::ConditionVariable::create()) {}

void GradientStream::push(const schedule::Op& op, std::span<const int> group) {
  const std::unique_lock lock(*mutex_);
  jobs_.push_back({&op, {group.begin(), group.end()}});
  if (op.kind == schedule::OpKind::all_gather) {
    const auto [first, end] = gathered_blocks(op);
    for (int block = first; block < end; ++block) ++pending_gathers_[block];
  }
  changed_->notify_all();
}

bool GradientStream::gathering(int block) const {
  const auto found = pending_gathers_.find(block);  // actors run one at a time
  return found != pending_gathers_.end() && found->second > 0;
}

void GradientStream::wait_for_gathers(int block) {
  std::unique_lock lock(*mutex_);
  while (!done_ && gathering(block)) changed_->wait(lock);
  if (!state_.error.empty()) throw Error("gradient stream of rank " + std::to_string(state_.rank), state_.error);
}

void GradientStream::close_and_wait() {
  std::unique_lock lock(*mutex_);
  closed_ = true;
  changed_->notify_all();
  while (!done_) changed_->wait(lock);
  if (!state_.error.empty()) throw Error("gradient stream of rank " + std::to_string(state_.rank), state_.error);
}

void GradientStream::run() {
  std::unique_lock lock(*mutex_);
  try {
    while (true) {
      while (jobs_.empty() && !closed_) changed_->wait(lock);
      if (jobs_.empty()) break;
      const Job job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      const double start = sg4::Engine::get_clock();
      comm_.collective(Channel::gradient, *job.op, job.group, 0);
      active_s_ += sg4::Engine::get_clock() - start;
      lock.lock();
      if (job.op->kind == schedule::OpKind::all_gather) {
        const auto [first, end] = gathered_blocks(*job.op);
        for (int block = first; block < end; ++block) --pending_gathers_[block];
        changed_->notify_all();  // a block step may wait for it
      }
    }
  } catch (const std::exception& error) {  // SimGrid's kill is not a std::exception
    if (!lock.owns_lock()) lock.lock();
    state_.error = error.what();
  }
  state_.finished = true;
  state_.finished_at = sg4::Engine::get_clock();
  done_ = true;
  changed_->notify_all();
}

}  // namespace plait::simulator::detail
