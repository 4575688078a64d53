#include "rank_actor.hpp"

#include <cmath>

#include <simgrid/s4u/Actor.hpp>
#include <simgrid/s4u/Comm.hpp>
#include <simgrid/s4u/Engine.hpp>
#include <simgrid/s4u/Mailbox.hpp>

#include "collectives.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::simulator::detail {
namespace {

namespace sg4 = simgrid::s4u;

// What travels in a simulated message (its simulated size is the op's bytes).
struct MessagePayload {
  std::int32_t src = 0;
  std::int64_t send_activity = 0;
  double sent_at = 0;
  double value = 0;
};

int point_of(const schedule::Op& op) {
  if (op.kind == schedule::OpKind::send) return op.a.point;
  if (!op.dst.empty()) return op.dst.point;
  return op.a.empty() ? -1 : op.a.point;
}

}  // namespace

double SimGridClock::now() const { return sg4::Engine::get_clock(); }

void SimGridClock::spend(double seconds) {
  if (seconds > 0) sg4::this_actor::sleep_for(seconds);
}

CostBackend::CostBackend(const schedule::Program& program, const costmodels::OpPricer& pricer, Clock& clock,
                         RankState* state)
    : program_(program), pricer_(pricer), clock_(clock), state_(state) {}

void CostBackend::compute(const schedule::Op& op) {
  double seconds = pricer_.op_seconds(program_, op);
  if (!std::isfinite(seconds) || seconds < 0)
    throw Error("cost model", "op " + std::string(schedule::to_string(op.kind)) + " (" +
                                  std::string(schedule::cost_key(op)) + ") priced at " +
                                  std::to_string(seconds) + " s");
  const double start = clock_.now();
  const bool block_step = schedule::is_block_step(op.kind);
  // A rank's first block step has no idle stretch before it: the step begins
  // right after the previous one in a measured run.
  if (block_step && last_block_end_ >= 0) seconds *= pricer_.idle_factor(program_, start - last_block_end_);
  clock_.spend(seconds);
  if (block_step) last_block_end_ = clock_.now();
  if (state_ == nullptr) return;
  Activity activity;
  activity.kind = Activity::Kind::compute;
  activity.block_step = block_step;
  activity.section = state_->current.section;
  activity.op = state_->current.index;
  activity.start = start;
  activity.end = clock_.now();
  state_->timeline.push_back(activity);
}

sg4::Mailbox* mailbox_of(Channel channel, bool rendezvous, int src, int dst) {
  const char prefix = channel == Channel::point_to_point ? (rendezvous ? 'P' : 'p')
                      : channel == Channel::collective   ? (rendezvous ? 'C' : 'c')
                                                         : (rendezvous ? 'G' : 'g');
  return sg4::Mailbox::by_name(prefix + std::to_string(src) + ">" + std::to_string(dst));
}

SimGridComm::SimGridComm(RankState& state, int ranks, AllreduceAlgorithm algorithm, std::int64_t eager_limit_bytes,
                         GradientStream* stream, CommCosts costs)
    : state_(state), ranks_(ranks), algorithm_(algorithm), eager_limit_bytes_(eager_limit_bytes), stream_(stream),
      costs_(std::move(costs)) {}

sg4::Mailbox* SimGridComm::cached(Channel channel, bool rendezvous, int src, int dst) {
  const std::int64_t key = (static_cast<std::int64_t>(channel) << 62) | (static_cast<std::int64_t>(rendezvous) << 61) |
                           (static_cast<std::int64_t>(src) << 31) | static_cast<std::int64_t>(dst);
  auto [it, inserted] = mailboxes_.try_emplace(key, nullptr);
  if (inserted) it->second = mailbox_of(channel, rendezvous, src, dst);
  return it->second;
}

void SimGridComm::post(Channel channel, int peer, std::int64_t bytes, double value) {
  if (peer < 0 || peer >= ranks_ || peer == state_.rank)
    throw Error("rank " + std::to_string(state_.rank), "send to invalid peer " + std::to_string(peer));
  const double now = sg4::Engine::get_clock();
  auto* payload = new MessagePayload{state_.rank, static_cast<std::int64_t>(state_.timeline.size()), now, value};
  Activity activity;
  activity.kind = Activity::Kind::send;
  activity.section = state_.current.section;
  activity.op = state_.current.index;
  activity.peer = peer;
  activity.start = activity.end = now;
  state_.timeline.push_back(activity);
  ++state_.messages_sent;
  cached(channel, is_rendezvous(bytes), state_.rank, peer)
      ->put_init(payload, static_cast<std::uint64_t>(std::max<std::int64_t>(bytes, 0)))
      ->detach([](void* data) { delete static_cast<MessagePayload*>(data); });
}

double SimGridComm::receive(Channel channel, int peer, std::int64_t bytes) {
  if (peer < 0 || peer >= ranks_ || peer == state_.rank)
    throw Error("rank " + std::to_string(state_.rank), "recv from invalid peer " + std::to_string(peer));
  const double start = sg4::Engine::get_clock();
  state_.waiting_for = (channel == Channel::point_to_point ? "recv from rank " : "allreduce message from rank ") +
                       std::to_string(peer);
  const bool rendezvous = is_rendezvous(bytes);
  std::unique_ptr<MessagePayload> payload(cached(channel, rendezvous, peer, state_.rank)->get<MessagePayload>());
  state_.waiting_for.clear();
  Activity activity;
  activity.kind = Activity::Kind::recv;
  activity.section = state_.current.section;
  activity.op = state_.current.index;
  activity.peer = peer;
  activity.rendezvous = rendezvous;
  activity.peer_activity = payload->send_activity;
  activity.start = start;
  activity.end = sg4::Engine::get_clock();
  activity.sent_at = payload->sent_at;
  state_.timeline.push_back(activity);
  state_.op_waiting_s += std::max(0.0, std::min(activity.end, payload->sent_at) - start);
  return payload->value;
}

void SimGridComm::send(const schedule::Op& op, std::span<const std::byte>) {
  if (costs_.message_overhead_s > 0) sg4::this_actor::sleep_for(costs_.message_overhead_s);
  post(Channel::point_to_point, op.peer, op.bytes, 0);
}

std::vector<std::byte> SimGridComm::recv(const schedule::Op& op) {
  receive(Channel::point_to_point, op.peer, op.bytes);
  if (costs_.message_overhead_s > 0) sg4::this_actor::sleep_for(costs_.message_overhead_s);
  return {};
}

double SimGridComm::allreduce_sum(const schedule::Op& op, std::span<const int> group, double value) {
  CollectivePort port(*this, Channel::collective, group);
  const std::int64_t bytes = op.bytes > 0 ? op.bytes : static_cast<std::int64_t>(sizeof(double));
  return allreduce(port, resolve(algorithm_, bytes, eager_limit_bytes_), index_in_group(group, state_.rank),
                   static_cast<int>(group.size()), bytes, value);
}

// A per-tensor gradient all-reduce (TorchBraid's) is one blocking all-reduce
// per parameter tensor, each at its own size: small ones pay the algorithm's
// latency terms (recursive doubling under the eager limit), large ones ring.
void SimGridComm::collective(Channel channel, const schedule::Op& op, std::span<const int> group, double value) {
  if (op.kind == schedule::OpKind::reduce_scatter || op.kind == schedule::OpKind::all_gather) {
    sharded_collective(channel, op.kind, group, op.bytes);
    return;
  }
  if (!op.per_tensor || costs_.program == nullptr || group.size() <= 1) {
    collective_of(channel, op.kind, group, op.bytes, value);
    return;
  }
  const std::int64_t element = schedule::gradient_element_bytes(costs_.program->model, op);
  for (const std::int64_t elements : schedule::gradient_tensor_elements(*costs_.program, state_.rank, op))
    collective_of(channel, op.kind, group, elements * element, value);
}

void SimGridComm::collective_of(Channel channel, schedule::OpKind kind, std::span<const int> group, std::int64_t bytes,
                                double value) {
  CollectivePort port(*this, channel, group);
  const int index = index_in_group(group, state_.rank), size = static_cast<int>(group.size());
  const bool gradients = kind == schedule::OpKind::grad_allreduce && size > 1;
  const costmodels::GroupSpan span = gradients ? span_of_group(group) : costmodels::GroupSpan{};
  if (span.nodes > 1 && costs_.hierarchical_gradients && costs_.barriers != nullptr) {
    costs_.barriers->wait(channel, group);  // NCCL's collective starts when the last member arrives
    sg4::this_actor::sleep_for(costmodels::hierarchical_allreduce_seconds(node_ring(), costs_.inter, span, double(bytes)));
    return;
  }
  if (span.nodes > 1) sg4::this_actor::sleep_for(costs_.inter.collective_overhead_s);
  if (costs_.pass_bytes_per_s > 0 && gradients) sg4::this_actor::sleep_for(double(bytes) / costs_.pass_bytes_per_s);
  allreduce(port, resolve(algorithm_, bytes, eager_limit_bytes_), index, size, bytes, value);
}

void GroupBarriers::wait(Channel channel, std::span<const int> group) {
  auto [found, added] = barriers_.try_emplace({channel, std::vector<int>(group.begin(), group.end())}, nullptr);
  if (added) found->second = sg4::Barrier::create(static_cast<unsigned>(group.size()));
  found->second->wait();
}

costmodels::GroupSpan SimGridComm::span_of_group(std::span<const int> group) const {
  if (costs_.device_of_rank == nullptr || costs_.devices_per_node < 1)
    return {.nodes = 1, .per_node = static_cast<int>(group.size())};
  std::vector<int> devices;
  devices.reserve(group.size());
  for (int rank : group) devices.push_back(costs_.device_of_rank->at(static_cast<std::size_t>(rank)));
  return costmodels::span_of(devices, costs_.devices_per_node, costs_.busy_devices);
}

costmodels::RingAllreduceModel SimGridComm::node_ring() const {
  return {.step_latency_s = costs_.tensor_link.latency_s,
          .link_bytes_per_s = costs_.tensor_link.bandwidth_bytes_per_s,
          .pass_bytes_per_s = costs_.pass_bytes_per_s > 0 ? costs_.pass_bytes_per_s : INFINITY};
}

// Megatron's activation all-reduces: NCCL rings within the tensor-parallel
// group at the ring's closed form (see CommCosts::tensor_link), hierarchical
// when the group spans nodes.
void SimGridComm::tensor_allreduces(const schedule::Op&, std::span<const int> group, int count, std::int64_t bytes) {
  if (!tensor_span_) tensor_span_ = span_of_group(group);  // a rank's group never changes
  const double one = costmodels::hierarchical_allreduce_seconds(node_ring(), costs_.inter, *tensor_span_, double(bytes));
  sg4::this_actor::sleep_for(count * one);
}

// The gradients' messages as the allreduce algorithm sends them (a ring at
// gradient sizes under `auto`), in place or on the gradient stream; the cost
// backend has no data to sum.
std::vector<std::byte> SimGridComm::allreduce_gradients(const schedule::Op& op, std::span<const int> group,
                                                        std::span<const std::byte>) {
  run_or_push(op, group);
  return {};
}

void RankOpListener::before(const schedule::OpRef& ref) {
  state_.current = ref;
  state_.op_waiting_s = 0;
  state_.op_prefetch_wait_s = 0;
  start_ = sg4::Engine::get_clock();
}

void RankOpListener::after(const schedule::OpRef& ref) {
  ++state_.ops;
  if (listeners_.empty()) return;
  const schedule::Op& op = *ref.op;
  OpEvent event;
  event.rank = ref.rank;
  event.section = ref.section;
  event.repetition = ref.repetition;
  event.op = ref.index;
  event.op_ref = ref.op;
  event.cost_key = schedule::cost_key(op);
  event.level = op.level;
  event.point = point_of(op);
  event.start = start_ + state_.op_prefetch_wait_s;  // a block step starts once its parameters are there
  event.end = sg4::Engine::get_clock();
  event.bytes = schedule::is_communication(op.kind) ? op.bytes : 0;
  event.peer = op.peer;
  event.waiting_s = state_.op_waiting_s;
  for (EventListener* listener : listeners_) listener->on_op(event);
}

}  // namespace plait::simulator::detail
