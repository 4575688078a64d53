// Replay on an imported trace's own dependencies (see dependency_replay.hpp).
#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "detail/median.hpp"
#include "plait/schedule/error.hpp"
#include "plait/traces/dependency_replay.hpp"

namespace plait::traces {
namespace {

struct Predecessor {
  std::size_t event;
  bool binds_end;  // a wait ends when what it waits for ends
};

struct Instance {
  std::vector<std::size_t> members;
  double measured_arrival = -std::numeric_limits<double>::infinity();
  double replayed_arrival = -std::numeric_limits<double>::infinity();
  std::size_t arrived = 0;
  double measured_transfer_s = 0;  // the members' median time from the last arrival to their end
  double transfer_factor = 1;  // what the knobs do to its transfer
  double priced_transfer_s = -1;  // the platform's, when priced
};

// Latency and bandwidth parts of a family's (name, group) transfers: a + b bytes
// by least squares over its instances (a >= 0, b >= 0). One size, or sizes the
// trace does not give: all bandwidth; a barrier: all latency.
void set_transfer_factors(const Trace& trace, std::map<std::int64_t, Instance>& instances,
                          const DependencyReplayOptions& options) {
  std::map<std::pair<std::string, std::string>, std::vector<std::pair<double, Instance*>>> families;
  for (auto& [id, instance] : instances) {
    const Event& first = trace.events[instance.members.front()];
    families[{first.cost_key, first.group}].emplace_back(static_cast<double>(first.bytes), &instance);
  }
  for (auto& [key, points] : families) {
    double mean_x = 0, mean_t = 0;
    for (const auto& [bytes, instance] : points) {
      mean_x += bytes / points.size();
      mean_t += instance->measured_transfer_s / points.size();
    }
    double sxx = 0, sxt = 0;
    for (const auto& [bytes, instance] : points) {
      sxx += (bytes - mean_x) * (bytes - mean_x);
      sxt += (bytes - mean_x) * (instance->measured_transfer_s - mean_t);
    }
    const bool barrier = key.first.find("barrier") != std::string::npos;
    const double slope = sxx > 0 ? std::max(0.0, sxt / sxx) : (mean_x > 0 ? mean_t / mean_x : 0.0);
    const double latency = barrier ? INFINITY : mean_x == 0 ? 0.0 : std::max(0.0, mean_t - slope * mean_x);
    for (const auto& [bytes, instance] : points) {
      const double t = instance->measured_transfer_s;
      const double latency_share = t > 0 ? std::min(1.0, latency / t) : 1.0;
      instance->transfer_factor = latency_share * options.latency_scale + (1 - latency_share) / options.bandwidth_scale;
    }
  }
}

std::string describe(const Event& e) {
  return "rank " + std::to_string(e.rank) + " " + (e.track.empty() ? "" : e.track + " ") + "\"" + e.cost_key + "\"";
}

// Replayed (start, end) of every event; offsets kept (replay) or zero (as soon as possible).
std::vector<std::pair<double, double>> run(const Trace& trace, const DependencyReplayOptions& options, bool keep_offsets,
                                           std::int64_t& collective_count) {
  const auto& events = trace.events;
  const std::size_t n = events.size();
  std::vector<std::vector<Predecessor>> preds(n);
  std::vector<std::vector<std::size_t>> successors(n);
  std::map<std::pair<int, std::string>, std::size_t> last_on_track;
  std::map<std::int64_t, Instance> instances;
  for (std::size_t i = 0; i < n; ++i) {
    const Event& e = events[i];
    if (e.kind == "step") continue;
    const auto track = std::make_pair(e.rank, e.track);
    if (const auto last = last_on_track.find(track); last != last_on_track.end()) preds[i].push_back({last->second, false});
    last_on_track[track] = i;
    for (std::int64_t dep : e.deps) {
      if (events[static_cast<std::size_t>(dep)].kind == "step") continue;
      preds[i].push_back({static_cast<std::size_t>(dep), e.kind == "wait"});
    }
    for (const Predecessor& p : preds[i]) successors[p.event].push_back(i);
    if (e.kind == "collective" && e.collective >= 0) {
      Instance& instance = instances[e.collective];
      instance.members.push_back(i);
      instance.measured_arrival = std::max(instance.measured_arrival, e.start);
    }
  }
  collective_count = static_cast<std::int64_t>(instances.size());
  for (auto& [id, instance] : instances) {
    std::vector<double> times;
    for (std::size_t m : instance.members) times.push_back(std::max(0.0, events[m].end - instance.measured_arrival));
    instance.measured_transfer_s = detail::median(times);
  }
  set_transfer_factors(trace, instances, options);
  if (options.price_collective) {
    for (auto& [id, instance] : instances) {
      const Event& first = events[instance.members.front()];
      CollectiveInstance seen{first.cost_key, first.group, first.bytes, {}, instance.measured_transfer_s};
      for (std::size_t m : instance.members) seen.ranks.push_back(events[m].rank);
      instance.priced_transfer_s = options.price_collective(seen);
    }
  }

  std::vector<std::pair<double, double>> replayed(n, {0.0, 0.0});
  std::vector<std::size_t> waiting(n);
  std::deque<std::size_t> ready;
  std::size_t to_replay = 0, replayed_count = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (events[i].kind == "step") continue;
    ++to_replay;
    waiting[i] = preds[i].size();
    if (waiting[i] == 0) ready.push_back(i);
  }
  auto finish = [&](std::size_t i) {
    ++replayed_count;
    for (std::size_t s : successors[i]) {
      if (--waiting[s] == 0) ready.push_back(s);
    }
  };
  while (!ready.empty()) {
    const std::size_t i = ready.front();
    ready.pop_front();
    const Event& e = events[i];
    // The predecessor that ended last is the one the event waited for: its gap
    // (time the trace does not explain) is kept; the others only order it, an
    // overlap they had kept too (a kernel starts before its launch returns).
    double start = keep_offsets ? e.start : 0.0, end_bound = -INFINITY;
    const Predecessor* binding = nullptr;
    bool has_start_pred = false;
    for (const Predecessor& p : preds[i]) {
      if (!p.binds_end && (!binding || events[p.event].end > events[binding->event].end)) binding = &p;
    }
    for (const Predecessor& p : preds[i]) {
      const double offset = keep_offsets ? (p.binds_end ? e.end : e.start) - events[p.event].end : 0.0;
      if (p.binds_end) {
        end_bound = std::max(end_bound, replayed[p.event].second + offset);
      } else {
        const double bound = replayed[p.event].second + (&p == binding ? offset : std::min(0.0, offset));
        start = has_start_pred ? std::max(start, bound) : bound;
        has_start_pred = true;
      }
    }
    double duration = e.end - e.start;
    if (e.kind == "compute") {
      const auto rank_scale = options.rank_compute_scale.find(e.rank);
      duration *= options.compute_scale * (rank_scale == options.rank_compute_scale.end() ? 1.0 : rank_scale->second);
    } else if (e.kind == "send" || e.kind == "recv") {
      duration /= options.bandwidth_scale;
    }
    // A wait with what it waits for ends with it; any other event lasts its duration.
    const bool waits = e.kind == "wait" && end_bound > -INFINITY;
    replayed[i] = {start, waits ? std::max(start, end_bound) : start + duration};
    if (e.kind != "collective" || e.collective < 0) {
      finish(i);
      continue;
    }
    Instance& instance = instances[e.collective];
    instance.replayed_arrival = std::max(instance.replayed_arrival, start);
    if (++instance.arrived < instance.members.size()) continue;
    for (std::size_t m : instance.members) {
      const double measured_transfer = events[m].end - instance.measured_arrival;
      const double transfer =
          instance.priced_transfer_s >= 0 ? instance.priced_transfer_s : measured_transfer * instance.transfer_factor;
      replayed[m].second = std::max(replayed[m].first, instance.replayed_arrival + transfer);
      finish(m);
    }
  }
  if (replayed_count < to_replay) {
    for (std::size_t i = 0; i < n; ++i) {
      if (events[i].kind != "step" && waiting[i] > 0) {
        throw Error("/events/" + std::to_string(i),
                    describe(events[i]) + " never becomes ready: its dependencies or collectives form a cycle");
      }
    }
    throw Error("", "a collective's members never all arrive (their order differs between ranks)");
  }
  return replayed;
}

}  // namespace

DependencyReplay replay_dependencies(const Trace& trace, const DependencyReplayOptions& options) {
  DependencyReplay out;
  const auto replayed = run(trace, options, true, out.collectives);
  out.replayed = trace;
  // Each rank's step spans: its first and last event, with the step's own margins.
  struct Span {
    double first = INFINITY, last = -INFINITY, replayed_first = INFINITY, replayed_last = -INFINITY;
  };
  std::map<std::pair<int, int>, Span> spans;  // (step, rank)
  bool has_steps = false;
  for (std::size_t i = 0; i < trace.events.size(); ++i) {
    const Event& e = trace.events[i];
    if (e.kind == "step") {
      has_steps = true;
      continue;
    }
    ++out.events;
    out.replayed.events[i].start = replayed[i].first;
    out.replayed.events[i].end = replayed[i].second;
    Span& span = spans[{e.repetition, e.rank}];
    span.first = std::min(span.first, e.start);
    span.last = std::max(span.last, e.end);
    span.replayed_first = std::min(span.replayed_first, replayed[i].first);
    span.replayed_last = std::max(span.replayed_last, replayed[i].second);
  }
  std::map<int, StepTime> steps;
  if (has_steps) {
    for (std::size_t i = 0; i < trace.events.size(); ++i) {
      const Event& e = trace.events[i];
      if (e.kind != "step") continue;
      const auto span = spans.find({e.repetition, e.rank});
      double start = e.start, end = e.end;
      if (span != spans.end()) {
        start = span->second.replayed_first - (span->second.first - e.start);
        end = span->second.replayed_last + (e.end - span->second.last);
      }
      out.replayed.events[i].start = start;
      out.replayed.events[i].end = std::max(start, end);
      StepTime& step = steps[e.repetition];
      step.step = e.repetition;
      step.measured_s = std::max(step.measured_s, e.end - e.start);
      step.replayed_s = std::max(step.replayed_s, end - start);
    }
  } else {
    StepTime whole;
    double first = INFINITY, last = -INFINITY, replayed_first = INFINITY, replayed_last = -INFINITY;
    for (const auto& [key, span] : spans) {
      first = std::min(first, span.first);
      last = std::max(last, span.last);
      replayed_first = std::min(replayed_first, span.replayed_first);
      replayed_last = std::max(replayed_last, span.replayed_last);
    }
    if (!spans.empty()) whole = {0, last - first, replayed_last - replayed_first};
    steps[0] = whole;
  }
  for (const auto& [number, step] : steps) {
    out.steps.push_back(step);
    out.measured_s += step.measured_s / static_cast<double>(steps.size());
    out.replayed_s += step.replayed_s / static_cast<double>(steps.size());
  }
  out.relative_error = out.measured_s > 0 ? out.replayed_s / out.measured_s - 1 : 0;
  return out;
}

Trace schedule_as_soon_as_possible(Trace trace) {
  std::int64_t collectives = 0;
  const auto replayed = run(trace, {}, false, collectives);
  for (std::size_t i = 0; i < trace.events.size(); ++i) {
    if (trace.events[i].kind == "step") continue;
    trace.events[i].start = replayed[i].first;
    trace.events[i].end = replayed[i].second;
  }
  return trace;
}

void to_json(nlohmann::json& out, const DependencyReplay& replay) {
  out = nlohmann::json{{"measured_step_s", replay.measured_s},
                       {"replayed_step_s", replay.replayed_s},
                       {"relative_error", replay.relative_error},
                       {"events", replay.events},
                       {"collectives", replay.collectives},
                       {"steps", nlohmann::json::array()}};
  for (const StepTime& step : replay.steps) {
    out["steps"].push_back({{"step", step.step}, {"measured_s", step.measured_s}, {"replayed_s", step.replayed_s}});
  }
}

}  // namespace plait::traces
