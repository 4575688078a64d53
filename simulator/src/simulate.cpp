// simulate(): one SimGrid engine, one actor per rank running the interpreter.
#include <limits>
#include <unordered_set>
#include <chrono>
#include <map>
#include <set>

#include <simgrid/s4u/Actor.hpp>
#include <simgrid/s4u/Engine.hpp>
#include <simgrid/s4u/Link.hpp>
#include <simgrid/s4u/Mailbox.hpp>
#include <simgrid/s4u/NetZone.hpp>
#include <simgrid/kernel/resource/NetworkModelIntf.hpp>

#include "collectives.hpp"
#include "critical_path.hpp"
#include "engine.hpp"
#include "listeners.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/validate.hpp"
#include "platform_build.hpp"
#include "rank_actor.hpp"

namespace plait::simulator {
namespace {

namespace sg4 = simgrid::s4u;

schedule::Program serial_counterpart(const schedule::Program& program) {
  schedule::BuildSpec spec;
  spec.layers = program.layers;
  spec.ranks = 1;
  spec.forward = program.forward;
  spec.adjoint = program.adjoint;
  spec.model = program.model;
  spec.model.tensor_parallel = 1;  // one device holds whole blocks
  spec.model.sequence_parallel = false;
  return schedule::build_serial(spec);
}

// The ranks a rank receives from.
std::set<int> point_to_point_sources(const schedule::RankProgram& rank_program) {
  std::set<int> sources;
  for (const schedule::Section& section : rank_program.sections)
    for (const schedule::Op& op : section.ops)
      if (op.kind == schedule::OpKind::recv) sources.insert(op.peer);
  return sources;
}

// The ranks a rank receives collective messages from, over all its
// collectives' groups: those it runs in place, or (`overlapped`) those its
// gradient stream runs.
std::set<int> collective_sources(const schedule::Program& program, int rank, bool overlapped) {
  std::set<schedule::OpKind> kinds;
  for (const schedule::Section& section : program.rank_programs[static_cast<std::size_t>(rank)].sections)
    for (const schedule::Op& op : section.ops)
      if (schedule::is_collective(op.kind) && op.overlap == overlapped) kinds.insert(op.kind);
  std::set<int> sources;
  for (const schedule::OpKind kind : kinds) {
    const std::vector<int> group = schedule::collective_group(program, rank, kind);
    const int me = detail::index_in_group(group, rank);
    for (int index : detail::allreduce_sources(me, static_cast<int>(group.size())))
      sources.insert(group[static_cast<std::size_t>(index)]);
  }
  return sources;
}

std::string describe_waiting(const schedule::Program& program, const detail::RankState& state) {
  std::string text = "rank " + std::to_string(state.rank);
  if (state.current.op == nullptr) return text + " before its first op";
  const auto& sections = program.rank_programs[static_cast<std::size_t>(state.rank)].sections;
  text += " in section '" + sections[static_cast<std::size_t>(state.current.section)].name + "'";
  if (state.current.repetition > 0) text += " (repetition " + std::to_string(state.current.repetition) + ")";
  text += " op " + std::to_string(state.current.index) + " (" +
          std::string(schedule::to_string(state.current.op->kind)) + ")";
  if (!state.waiting_for.empty()) text += " waits for " + state.waiting_for;
  return text;
}

[[noreturn]] void report_unfinished(const schedule::Program& program, const std::vector<detail::RankState>& states,
                                    double at) {
  for (const detail::RankState& state : states)
    if (!state.error.empty()) throw Error("simulation: rank " + std::to_string(state.rank), state.error);
  std::string waiting;
  int count = 0;
  for (const detail::RankState& state : states) {
    if (state.finished) continue;
    if (++count <= 8) waiting += (waiting.empty() ? "" : "; ") + describe_waiting(program, state);
  }
  if (count > 8) waiting += "; and " + std::to_string(count - 8) + " more";
  throw Error("simulation", "deadlock at t=" + std::to_string(at) + " s: " + std::to_string(count) +
                                " rank(s) cannot go on: " + waiting);
}

const costmodels::MessageSegment& segment_for(const costmodels::MessageModel& model, double bytes) {
  for (const costmodels::MessageSegment& segment : model.segments)
    if (bytes <= static_cast<double>(segment.max_bytes)) return segment;
  return model.segments.back();
}

// Scales latency and bandwidth of messages that stay within one zone (node)
// so that alone on their route they take the model's alpha + b * beta.
void apply_intra_node_model(sg4::Engine& engine, const costmodels::MessageModel& model) {
  if (model.segments.empty()) throw Error("message model", "has no segments");
  for (const costmodels::MessageSegment& segment : model.segments)
    if (segment.latency_s < 0 || segment.seconds_per_byte <= 0)
      throw Error("message model", "segment up to " + std::to_string(segment.max_bytes) +
                                       " bytes needs latency >= 0 and seconds per byte > 0");
  using Links = std::vector<sg4::Link*>;
  using Zones = std::unordered_set<sg4::NetZone*>;
  const auto same_zone = [](const sg4::Host* src, const sg4::Host* dst) {
    return src->get_englobing_zone() == dst->get_englobing_zone();
  };
  auto* network = engine.get_netzone_root()->get_network_model();
  network->set_lat_factor_cb([model, same_zone](double size, const sg4::Host* src, const sg4::Host* dst,
                                                const Links& links, const Zones&) {
    double latency = 0;
    for (const sg4::Link* link : links) latency += link->get_latency();
    if (!same_zone(src, dst) || latency <= 0) return 1.0;
    return segment_for(model, size).latency_s / latency;
  });
  network->set_bw_factor_cb([model, same_zone](double size, const sg4::Host* src, const sg4::Host* dst,
                                               const Links& links, const Zones&) {
    double bandwidth = std::numeric_limits<double>::infinity();
    for (const sg4::Link* link : links) bandwidth = std::min(bandwidth, link->get_bandwidth());
    if (!same_zone(src, dst) || links.empty()) return 1.0;
    return 1.0 / segment_for(model, size).seconds_per_byte / bandwidth;
  });
}

// One pricer per distinct device use (scaled per rank when asked); the serial
// counterpart runs alone on rank 0's device.
struct RankPricers {
  std::vector<std::shared_ptr<const costmodels::OpPricer>> rank;
  std::shared_ptr<const costmodels::OpPricer> serial;
};

RankPricers assign_pricers(const PlatformSpec& platform, const detail::BuiltPlatform& built,
                           const std::vector<int>& device_of_rank, const PricerFactory& pricers,
                           const std::vector<double>& rank_scales) {
  const auto scaled = [&](std::shared_ptr<const costmodels::OpPricer> pricer, std::size_t rank) {
    return rank_scales.empty() ? pricer : scaled_pricer(std::move(pricer), rank_scales[rank]);
  };
  std::map<std::pair<DeviceSpec, bool>, std::shared_ptr<const costmodels::OpPricer>> owned;
  RankPricers out;
  std::map<int, int> ranks_on_node;
  for (int device : device_of_rank) ++ranks_on_node[built.node_of_device[static_cast<std::size_t>(device)]];
  const auto pricer_for = [&](int device, int sharing) {
    const DeviceSpec& spec = built.device_specs[static_cast<std::size_t>(device)];
    auto& pricer = owned[{spec, sharing > 1}];
    if (!pricer) {
      try {
        pricer = pricers(DeviceUse{spec, sharing});
      } catch (const Error& error) {
        throw error.within(platform.origin + ": device " + std::to_string(device));
      }
      if (!pricer) throw Error(platform.origin, "no pricer for device " + std::to_string(device));
    }
    return pricer;
  };
  for (std::size_t rank = 0; rank < device_of_rank.size(); ++rank) {
    const int device = device_of_rank[rank];
    out.rank.push_back(
        scaled(pricer_for(device, ranks_on_node[built.node_of_device[static_cast<std::size_t>(device)]]), rank));
  }
  out.serial = scaled(pricer_for(device_of_rank[0], 1), 0);
  return out;
}

}  // namespace

double single_device_seconds(const schedule::Program& program, const costmodels::OpPricer& pricer) {
  if (program.ranks != 1)
    throw Error("single device", "a " + std::to_string(program.ranks) + "-rank program needs the simulator");
  if (program.tolerance > 0)
    throw Error("single device", "tolerance mode cannot be priced: iteration counts depend on residuals");
  struct NoMessages final : schedule::Comm {
    void send(const schedule::Op&, std::span<const std::byte>) override {
      throw Error("single device", "a one-rank program sends a message");
    }
    std::vector<std::byte> recv(const schedule::Op&) override {
      throw Error("single device", "a one-rank program receives a message");
    }
    double allreduce_sum(const schedule::Op&, std::span<const int>, double value) override { return value; }
  } comm;
  detail::SumClock clock;
  detail::CostBackend backend(program, pricer, clock, nullptr);
  schedule::interpret(program, 0, backend, comm);
  return clock.now();
}

Prediction simulate(const schedule::Program& program, const PlatformSpec& platform, const PricerFactory& pricers,
                    const SimulateOptions& options) {
  if (program.tolerance > 0)
    throw Error("program", "tolerance mode (tolerance " + std::to_string(program.tolerance) +
                               ") repeats until a residual is small, which a cost model cannot know: "
                               "simulate a program with fixed iteration counts (tolerance 0)");
  if (program.ranks < 1 || static_cast<int>(program.rank_programs.size()) != program.ranks)
    throw Error("program", "has " + std::to_string(program.rank_programs.size()) + " rank programs for " +
                               std::to_string(program.ranks) + " ranks");
  const std::vector<double>& rank_scales = options.rank_compute_scales;
  if (!rank_scales.empty() && rank_scales.size() != static_cast<std::size_t>(program.ranks))
    throw Error("rank compute scales", "has " + std::to_string(rank_scales.size()) + " factors for " +
                                           std::to_string(program.ranks) + " ranks");
  for (std::size_t rank = 0; rank < rank_scales.size(); ++rank)
    if (!valid_compute_scale(rank_scales[rank]))
      throw Error("rank compute scales", "rank " + std::to_string(rank) + ": must be a finite number > 0");
  std::vector<int> device_of_rank;
  if (platform.simgrid_xml.empty()) device_of_rank = place_ranks(platform, program.ranks);
  const auto wall_start = std::chrono::steady_clock::now();
  const std::unique_ptr<sg4::Engine> engine = detail::start_engine(options);
  const detail::BuiltPlatform built = detail::build_platform(*engine, platform);
  const double platform_wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (options.intra_node_messages) apply_intra_node_model(*engine, *options.intra_node_messages);
  if (!platform.simgrid_xml.empty()) {
    if (program.ranks > static_cast<int>(built.devices.size()))
      throw Error(platform.origin, "the program has " + std::to_string(program.ranks) +
                                       " ranks but the platform has " + std::to_string(built.devices.size()) +
                                       " hosts (one rank per host)");
    for (int r = 0; r < program.ranks; ++r) device_of_rank.push_back(r);
  }

  const RankPricers priced = assign_pricers(platform, built, device_of_rank, pricers, options.rank_compute_scales);
  const std::vector<std::shared_ptr<const costmodels::OpPricer>>& rank_pricer = priced.rank;

  Prediction prediction;
  prediction.platform_wall_s = platform_wall_s;
  prediction.platform = platform.name;
  prediction.ranks = program.ranks;
  try {
    prediction.serial_predicted_time_s = single_device_seconds(serial_counterpart(program), *priced.serial);
  } catch (const Error& error) {
    throw error.within("serial counterpart on rank 0's device");
  }

  const int ranks = program.ranks;
  detail::RankAccounting accounting(ranks);
  std::vector<EventListener*> listeners = options.listeners;
  listeners.push_back(&accounting);
  for (EventListener* listener : listeners) listener->on_start(ranks);
  std::vector<detail::RankState> states(static_cast<std::size_t>(ranks));
  std::vector<sg4::ActorPtr> actors;
  // Gradient streams of the ranks with overlapped replica collectives.
  std::vector<std::unique_ptr<detail::GradientStream>> streams(static_cast<std::size_t>(ranks));
  std::vector<sg4::ActorPtr> stream_actors(static_cast<std::size_t>(ranks));
  // What each rank's collectives cost besides their messages (its own message overhead aside).
  detail::CommCosts shared_costs{.pass_bytes_per_s = platform.allreduce_pass_bytes_per_s,
                                 .tensor_link = platform.intra_node,
                                 .program = &program};
  if (platform.simgrid_xml.empty() && platform.nodes > 1 && platform.inter_node.topology == Topology::star) {
    shared_costs.device_of_rank = &device_of_rank;
    shared_costs.devices_per_node = static_cast<int>(platform.node_devices.size());
    shared_costs.busy_devices = std::min(shared_costs.devices_per_node, ranks);
    shared_costs.inter = inter_node_links(platform);
    shared_costs.hierarchical_gradients = platform.inter_node.hierarchical_collectives;
  }
  detail::GroupBarriers barriers;
  shared_costs.barriers = &barriers;
  for (int r = 0; r < ranks; ++r) {
    states[static_cast<std::size_t>(r)].rank = r;
    sg4::Host* host = built.devices[static_cast<std::size_t>(device_of_rank[static_cast<std::size_t>(r)])];
    if (!collective_sources(program, r, true).empty()) {
      auto& stream = streams[static_cast<std::size_t>(r)];
      stream = std::make_unique<detail::GradientStream>(r, ranks, options.allreduce, options.eager_limit_bytes,
                                                        shared_costs);
      stream_actors[static_cast<std::size_t>(r)] =
          sg4::Actor::create("gradients" + std::to_string(r), host, [stream = stream.get()] { stream->run(); });
    }
    actors.push_back(sg4::Actor::create(
        "rank" + std::to_string(r), host,
        [&program, &options, &listeners, &shared_costs, r, ranks, state = &states[static_cast<std::size_t>(r)],
         stream = streams[static_cast<std::size_t>(r)].get(), pricer = rank_pricer[static_cast<std::size_t>(r)].get()]() {
          detail::SimGridClock clock;
          detail::CostBackend backend(program, *pricer, clock, state);
          detail::CommCosts costs = shared_costs;
          costs.message_overhead_s = pricer->op_seconds(program, schedule::Op{.kind = schedule::OpKind::send});
          detail::SimGridComm comm(*state, ranks, options.allreduce, options.eager_limit_bytes, stream, costs);
          detail::RankOpListener listener(*state, listeners);
          try {
            schedule::interpret(program, r, backend, comm, &listener);
            state->finished = true;
            state->finished_at = sg4::Engine::get_clock();
          } catch (const std::exception& error) {  // SimGrid's kill is not a std::exception
            state->error = error.what();
          }
        }));
  }
  // Eager mailboxes get their receiving actor as permanent receiver before
  // anyone sends: their messages then flow at send time.
  for (int r = 0; r < ranks; ++r) {
    const sg4::ActorPtr& actor = actors[static_cast<std::size_t>(r)];
    for (int source : point_to_point_sources(program.rank_programs[static_cast<std::size_t>(r)]))
      if (source >= 0 && source < ranks && source != r)
        detail::mailbox_of(detail::Channel::point_to_point, false, source, r)->set_receiver(actor);
    for (int source : collective_sources(program, r, false))
      detail::mailbox_of(detail::Channel::collective, false, source, r)->set_receiver(actor);
    for (int source : collective_sources(program, r, true))
      detail::mailbox_of(detail::Channel::gradient, false, source, r)
          ->set_receiver(stream_actors[static_cast<std::size_t>(r)]);
  }

  engine->run();

  for (const detail::RankState& state : states)
    if (!state.finished) report_unfinished(program, states, sg4::Engine::get_clock());
  double makespan = 0;
  for (const detail::RankState& state : states) {
    makespan = std::max(makespan, state.finished_at);
    prediction.ops += state.ops;
    prediction.messages += state.messages_sent;
  }
  for (EventListener* listener : listeners) listener->on_finish(makespan);

  prediction.predicted_time_s = makespan;
  prediction.speedup = makespan > 0 ? prediction.serial_predicted_time_s / makespan : 0;
  prediction.rank_reports = accounting.reports();
  for (int r = 0; r < ranks; ++r) {
    RankReport& report = prediction.rank_reports[static_cast<std::size_t>(r)];
    report.host = built.devices[static_cast<std::size_t>(device_of_rank[static_cast<std::size_t>(r)])]->get_name();
    // The wait for its gradient stream is communication, not idling; so is a
    // block step's wait for its prefetched parameters (between two ops' events).
    const double wait = states[static_cast<std::size_t>(r)].stream_wait_s;
    report.communication_s += wait + states[static_cast<std::size_t>(r)].prefetch_wait_s;
    report.idle_s -= wait;
    if (const auto& stream = streams[static_cast<std::size_t>(r)]) report.overlapped_communication_s = stream->active_s();
  }
  prediction.critical_path = detail::trace_critical_path(states);
  prediction.critical_path.dry_run_block_steps = schedule::critical_path_steps(program);
  prediction.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return prediction;
}

}  // namespace plait::simulator
