// Replay of a measured trace: a pricer keyed by (rank, section, repetition,
// op index) and the link knobs.
#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "plait/schedule/error.hpp"
#include "plait/simulator/replay.hpp"
#include "plait/traces/trace.hpp"

namespace plait::simulator {
namespace {

using Key = std::tuple<int, int, int, int>;  // rank, section, repetition, op

struct OpPlace {
  int rank = 0, section = 0, index = 0;
};

using RankEvents = std::vector<std::vector<const traces::Event*>>;  // per rank, in time order

const schedule::Op& op_of(const schedule::Program& program, const traces::Event& event) {
  const std::string where = "trace: event of rank " + std::to_string(event.rank) + ", section " +
                            std::to_string(event.section) + ", op " + std::to_string(event.op);
  const auto& sections = program.rank_programs.at(static_cast<std::size_t>(event.rank)).sections;
  if (event.section < 0 || event.section >= int(sections.size())) throw Error(where, "the program has no such section");
  const auto& ops = sections[static_cast<std::size_t>(event.section)].ops;
  if (event.op < 0 || event.op >= int(ops.size())) throw Error(where, "the program has no such op");
  return ops[static_cast<std::size_t>(event.op)];
}

// The part of each receive and collective spent after its data could be there
// (the k-th message from a rank to another matches the k-th receive; the k-th
// collective of a kind of every rank of its group is one collective): copying, unpacking, progress.
std::unordered_map<const traces::Event*, double> local_receive_seconds(const schedule::Program& program,
                                                                       const RankEvents& by_rank) {
  std::map<std::pair<int, int>, std::vector<const traces::Event*>> sends, recvs;  // (src, dst)
  // By (kind, group): each member's events of that collective, in order.
  std::map<std::pair<schedule::OpKind, std::vector<int>>, std::map<int, std::vector<const traces::Event*>>> groups;
  for (std::size_t r = 0; r < by_rank.size(); ++r) {
    for (const traces::Event* event : by_rank[r]) {
      const schedule::OpKind kind = op_of(program, *event).kind;
      if (kind == schedule::OpKind::send) sends[{int(r), event->peer}].push_back(event);
      if (kind == schedule::OpKind::recv) recvs[{event->peer, int(r)}].push_back(event);
      if (schedule::is_collective(kind))
        groups[{kind, schedule::collective_group(program, int(r), kind)}][int(r)].push_back(event);
    }
  }
  std::unordered_map<const traces::Event*, double> local;
  for (const auto& [pair, received] : recvs) {
    const auto& sent = sends[pair];
    for (std::size_t k = 0; k < received.size() && k < sent.size(); ++k)
      local[received[k]] = received[k]->end - std::max(received[k]->start, sent[k]->end);
  }
  for (const auto& [key, members] : groups) {
    if (members.size() != key.second.size()) continue;  // a member left no events: nothing to match
    for (std::size_t k = 0;; ++k) {
      double last_arrival = 0;
      bool complete = true;
      for (const auto& [rank, events] : members) {
        complete = complete && k < events.size();
        if (complete) last_arrival = std::max(last_arrival, events[k]->start);
      }
      if (!complete) break;
      for (const auto& [rank, events] : members)
        local[events[k]] = events[k]->end - std::max(events[k]->start, last_arrival);
    }
  }
  return local;
}

class TracePricer final : public costmodels::OpPricer {
 public:
  TracePricer(const schedule::Program& program, const traces::Trace& trace, double compute_scale)
      : scale_(compute_scale) {
    if (trace.ranks != program.ranks)
      throw Error("trace", "has " + std::to_string(trace.ranks) + " ranks, the program " +
                               std::to_string(program.ranks));
    for (int r = 0; r < program.ranks; ++r) {
      const auto& sections = program.rank_programs[static_cast<std::size_t>(r)].sections;
      for (std::size_t s = 0; s < sections.size(); ++s)
        for (std::size_t i = 0; i < sections[s].ops.size(); ++i)
          places_[&sections[s].ops[i]] = {r, int(s), int(i)};
    }
    std::vector<std::vector<const traces::Event*>> by_rank(static_cast<std::size_t>(program.ranks));
    double origin = 0;
    for (const traces::Event& event : trace.events) {
      origin = &event == &trace.events.front() ? event.start : std::min(origin, event.start);
      if (event.rank < 0 || event.rank >= program.ranks) throw Error("trace", "event of rank " + std::to_string(event.rank));
      by_rank[static_cast<std::size_t>(event.rank)].push_back(&event);
    }
    for (auto& events : by_rank)
      std::stable_sort(events.begin(), events.end(),
                       [](const traces::Event* a, const traces::Event* b) { return a->start < b->start; });
    const auto local_part = local_receive_seconds(program, by_rank);
    std::map<std::string, std::vector<double>> by_key;
    for (std::size_t r = 0; r < by_rank.size(); ++r) {
      double anchor = origin, waited = 0;
      for (const traces::Event* event : by_rank[r]) {
        const schedule::Op& op = op_of(program, *event);
        const double duration = std::max(0.0, event->end - event->start);
        if (op.kind == schedule::OpKind::recv || schedule::is_collective(op.kind)) {
          // Only the wait is left out: the simulator waits itself; the local part stays.
          const auto local = local_part.find(event);
          waited += duration - (local == local_part.end() ? 0.0 : std::min(duration, local->second));
          continue;
        }
        if (schedule::is_communication(op.kind)) continue;  // a send: its time goes to the next compute op
        const double seconds = std::max(duration, event->end - anchor - waited);
        durations_[{event->rank, event->section, event->repetition, event->op}] = seconds;
        by_key[event->cost_key].push_back(seconds);
        anchor = event->end;
        waited = 0;
      }
    }
    for (auto& [key, values] : by_key) {
      std::sort(values.begin(), values.end());
      medians_[key] = values[values.size() / 2];
    }
  }

  double op_seconds(const schedule::Program&, const schedule::Op& op) const override {
    // A measured message's time is in its trace's transfer, not a host cost.
    if (schedule::is_communication(op.kind)) return 0;
    const auto place = places_.find(&op);
    if (place != places_.end()) {
      const int repetition = repetitions_[&op]++;
      const auto found = durations_.find({place->second.rank, place->second.section, repetition, place->second.index});
      if (found != durations_.end()) {
        ++from_trace_;
        return found->second * scale_;
      }
    }
    ++without_duration_;
    const auto median = medians_.find(std::string(schedule::cost_key(op)));
    return median == medians_.end() ? 0.0 : median->second * scale_;
  }

  std::int64_t from_trace() const { return from_trace_; }
  std::int64_t without_duration() const { return without_duration_; }
  void reset_counts() const { from_trace_ = without_duration_ = 0; }

 private:
  double scale_;
  std::unordered_map<const schedule::Op*, OpPlace> places_;
  std::map<Key, double> durations_;
  std::map<std::string, double> medians_;
  // Pricing runs in the simulation's one thread, in each rank's op order.
  mutable std::unordered_map<const schedule::Op*, int> repetitions_;
  mutable std::int64_t from_trace_ = 0, without_duration_ = 0;
};

void scale_link(LinkSpec& link, double bandwidth_scale, double latency_scale) {
  link.bandwidth_bytes_per_s *= bandwidth_scale;
  link.latency_s *= latency_scale;
}

}  // namespace

std::shared_ptr<const costmodels::OpPricer> make_trace_pricer(const schedule::Program& program,
                                                              const traces::Trace& trace, double compute_scale) {
  return std::make_shared<const TracePricer>(program, trace, compute_scale);
}

PlatformSpec with_link_scales(PlatformSpec platform, double bandwidth_scale, double latency_scale) {
  if (bandwidth_scale <= 0 || latency_scale < 0)
    throw Error("replay", "bandwidth scale must be > 0 and latency scale >= 0");
  if (bandwidth_scale == 1 && latency_scale == 1) return platform;
  if (!platform.simgrid_xml.empty())
    throw Error(platform.origin, "link scales need a plait.platform JSON platform, not SimGrid XML");
  scale_link(platform.intra_node, bandwidth_scale, latency_scale);
  scale_link(platform.inter_node.link, bandwidth_scale, latency_scale);
  return platform;
}

Replay replay(const schedule::Program& program, const traces::Trace& trace, const PlatformSpec& platform,
              const ReplayOptions& options, SimulateOptions simulate_options) {
  if (options.compute_scale < 0) throw Error("replay", "compute scale must be >= 0");
  if (trace.events.empty()) throw Error("trace", "has no events");
  auto pricer = std::make_shared<const TracePricer>(program, trace, options.compute_scale);
  const PlatformSpec scaled = with_link_scales(platform, options.bandwidth_scale, options.latency_scale);
  // Every device is priced by the trace; the serial counterpart (priced first) by its medians.
  const PricerFactory pricers = [pricer](const DeviceUse&) { return pricer; };
  struct CountReset final : EventListener {
    const TracePricer* pricer;
    void on_start(int) override { pricer->reset_counts(); }
    void on_op(const OpEvent&) override {}
  } reset;
  reset.pricer = pricer.get();
  simulate_options.listeners.push_back(&reset);
  const Prediction prediction = simulate(program, scaled, pricers, simulate_options);
  Replay result;
  result.measured_time_s = trace.makespan();
  result.replayed_time_s = prediction.predicted_time_s;
  result.relative_error = result.measured_time_s > 0 ? result.replayed_time_s / result.measured_time_s - 1 : 0;
  result.ops_from_trace = pricer->from_trace();
  result.ops_without_duration = pricer->without_duration();
  return result;
}

void to_json(nlohmann::json& out, const Replay& replay) {
  out = {{"measured_time_s", replay.measured_time_s},
         {"replayed_time_s", replay.replayed_time_s},
         {"relative_error", replay.relative_error},
         {"ops_from_trace", replay.ops_from_trace},
         {"ops_without_duration", replay.ops_without_duration}};
}

}  // namespace plait::simulator
