// Kineto import, across files: steps, collectives matched over ranks, clocks
// aligned, dependencies rebuilt, plait's trace written (see import.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "detail/kineto.hpp"
#include "detail/median.hpp"
#include "plait/schedule/error.hpp"
#include "plait/traces/import.hpp"

namespace plait::traces {
namespace {

using detail::KinetoEvent;
using detail::KinetoRank;

constexpr double rounding_us = 2;  // older traces round to whole microseconds
constexpr double cross_stream_us = 5;  // a stream released by another's event starts within this

bool is_communication(const KinetoEvent& event) {
  return event.kind == "collective" || event.kind == "send" || event.kind == "recv";
}
bool on_device(const KinetoEvent& event) { return is_device_track(event.track); }

// Each event's profiler step: the step whose span holds its start, a kernel's
// by its launch's start. Then what --step and the steps leave out is dropped.
void keep_steps(KinetoRank& rank, const std::optional<int>& only_step) {
  std::vector<std::pair<double, const KinetoEvent*>> steps;
  std::map<std::int64_t, double> launch_start;
  for (const KinetoEvent& event : rank.events) {
    if (event.kind == "step") steps.emplace_back(event.start_us, &event);
    if (!on_device(event) && event.correlation >= 0 && event.kind == "host") launch_start[event.correlation] = event.start_us;
  }
  if (steps.empty()) {
    if (only_step) throw Error(rank.origin, "no ProfilerStep#" + std::to_string(*only_step) + ": the trace has no steps");
    return;
  }
  std::sort(steps.begin(), steps.end());
  for (KinetoEvent& event : rank.events) {
    if (event.kind == "step") continue;
    double t = event.start_us;
    if (on_device(event)) {
      const auto launch = launch_start.find(event.correlation);
      if (launch != launch_start.end()) t = launch->second;
    }
    auto after = std::upper_bound(steps.begin(), steps.end(), std::make_pair(t, static_cast<const KinetoEvent*>(nullptr)),
                                  [](const auto& a, const auto& b) { return a.first < b.first; });
    event.step = -1;
    if (after != steps.begin() && t <= std::prev(after)->second->end_us + rounding_us) event.step = std::prev(after)->second->step;
  }
  if (only_step && std::none_of(steps.begin(), steps.end(), [&](const auto& s) { return s.second->step == *only_step; })) {
    std::string seen;
    for (const auto& s : steps) seen += (seen.empty() ? "" : ", ") + std::to_string(s.second->step);
    throw Error(rank.origin, "no ProfilerStep#" + std::to_string(*only_step) + " (steps: " + seen + ")");
  }
  std::erase_if(rank.events, [&](const KinetoEvent& event) {
    return event.step < 0 || (only_step && event.step != *only_step);
  });
}

}  // namespace

Trace import_kineto(const std::vector<std::string>& paths, const KinetoImportOptions& options) {
  ImportNotes notes;
  return import_kineto(paths, options, notes);
}

Trace import_kineto(const std::vector<std::string>& paths, const KinetoImportOptions& options, ImportNotes& notes) {
  if (paths.empty()) throw Error("plait import", "no trace files given");
  std::vector<KinetoRank> ranks;
  for (const std::string& path : paths) ranks.push_back(detail::read_kineto_file(path));
  return detail::link_kineto(std::move(ranks), options, notes);
}

namespace detail {

Trace link_kineto(std::vector<KinetoRank> ranks, const KinetoImportOptions& options, ImportNotes& notes) {
  std::map<int, std::string> file_of_rank;
  for (KinetoRank& rank : ranks) {
    const auto [it, added] = file_of_rank.emplace(rank.rank, rank.origin);
    if (!added) {
      throw Error(rank.origin, "rank " + std::to_string(rank.rank) + " again: " + it->second + " is rank " +
                                   std::to_string(rank.rank) + " too");
    }
    keep_steps(rank, options.step);
  }
  std::sort(ranks.begin(), ranks.end(), [](const KinetoRank& a, const KinetoRank& b) { return a.rank < b.rank; });

  // Collectives: the k-th of a group on each member is one instance.
  std::map<std::pair<std::string, int>, std::int64_t> instance_of;
  std::vector<std::vector<std::int64_t>> instance(ranks.size());
  std::map<std::int64_t, std::vector<std::pair<std::size_t, double>>> members;  // instance -> (rank slot, end)
  for (std::size_t r = 0; r < ranks.size(); ++r) {
    auto& events = ranks[r].events;
    instance[r].assign(events.size(), -1);
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (events[i].kind == "collective") order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return events[a].start_us < events[b].start_us; });
    std::map<std::string, int> count;
    for (std::size_t i : order) {
      const auto key = std::make_pair(events[i].group, count[events[i].group]++);
      const auto id = instance_of.emplace(key, static_cast<std::int64_t>(instance_of.size())).first->second;
      instance[r][i] = id;
      members[id].emplace_back(r, events[i].end_us);
    }
  }
  notes = {};
  for (const auto& [id, who] : members) (who.size() > 1 ? notes.matched_collectives : notes.unmatched_collectives) += 1;

  // Clocks: ranks on their own clocks are aligned on their collectives' ends
  // (the members of one collective finish together).
  std::vector<double> offset_us(ranks.size(), 0);
  const bool one_clock = std::all_of(ranks.begin(), ranks.end(), [](const KinetoRank& r) { return r.absolute_clock; });
  if (!one_clock) {
    std::vector<std::vector<double>> differences(ranks.size());
    for (const auto& [id, who] : members) {
      const auto reference = std::find_if(who.begin(), who.end(), [](const auto& m) { return m.first == 0; });
      if (reference == who.end()) continue;
      for (const auto& [slot, end] : who) differences[slot].push_back(reference->second - end);
    }
    for (std::size_t r = 1; r < ranks.size(); ++r) {
      if (!differences[r].empty()) offset_us[r] = detail::median(differences[r]);
    }
  }
  double origin_us = std::numeric_limits<double>::infinity();
  for (std::size_t r = 0; r < ranks.size(); ++r) {
    for (const KinetoEvent& event : ranks[r].events) origin_us = std::min(origin_us, event.start_us + offset_us[r]);
  }
  notes.clock_offsets_s.assign(static_cast<std::size_t>(ranks.empty() ? 0 : ranks.back().rank + 1), 0.0);
  for (std::size_t r = 0; r < ranks.size(); ++r) notes.clock_offsets_s[static_cast<std::size_t>(ranks[r].rank)] = offset_us[r] * 1e-6;

  Trace trace;
  trace.source = "measured";
  trace.ranks = ranks.back().rank + 1;
  for (const KinetoRank& rank : ranks) trace.ranks = std::max(trace.ranks, rank.world_size);
  for (std::size_t r = 0; r < ranks.size(); ++r) {
    auto& events = ranks[r].events;
    std::vector<std::size_t> order(events.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const KinetoEvent &x = events[a], &y = events[b];
      if (x.track != y.track) return x.track < y.track;
      return x.start_us != y.start_us ? x.start_us < y.start_us : x.end_us > y.end_us;
    });
    const std::int64_t base = static_cast<std::int64_t>(trace.events.size());
    std::vector<std::int64_t> index(events.size());
    for (std::size_t k = 0; k < order.size(); ++k) index[order[k]] = base + static_cast<std::int64_t>(k);

    // Dependencies, on this rank's events.
    std::vector<std::vector<std::int64_t>> deps(events.size());
    std::map<std::int64_t, std::size_t> launch_of, enqueue_of;
    std::vector<std::size_t> device;
    for (std::size_t i = 0; i < events.size(); ++i) {
      const KinetoEvent& e = events[i];
      if (e.correlation >= 0 && e.kind == "host" && !e.enqueue) launch_of[e.correlation] = i;
      if (e.correlation >= 0 && e.enqueue) enqueue_of[e.correlation] = i;
      if (on_device(e)) device.push_back(i);
    }
    std::sort(device.begin(), device.end(), [&](std::size_t a, std::size_t b) { return events[a].end_us < events[b].end_us; });
    std::map<std::string, std::vector<std::size_t>> on_track;  // in time order
    for (std::size_t i : order) on_track[events[i].track].push_back(i);
    std::map<std::size_t, std::size_t> previous_on_stream;
    for (const auto& [track, list] : on_track) {
      for (std::size_t k = 1; k < list.size(); ++k) previous_on_stream[list[k]] = list[k - 1];
    }
    for (std::size_t i = 0; i < events.size(); ++i) {
      KinetoEvent& e = events[i];
      if (on_device(e)) {
        const auto launch = launch_of.find(e.correlation);
        if (launch != launch_of.end()) deps[i].push_back(index[launch->second]);
        const double explained = std::max(launch != launch_of.end() ? events[launch->second].start_us : -INFINITY,
                                          previous_on_stream.count(i) ? events[previous_on_stream[i]].end_us : -INFINITY);
        // Started later than its launch and its stream allow, just as another
        // stream's event ended: it waited for that one (cudaStreamWaitEvent,
        // which the trace does not link).
        if (e.start_us - explained > cross_stream_us) {
          auto ended = std::upper_bound(device.begin(), device.end(), e.start_us,
                                        [&](double t, std::size_t d) { return t < events[d].end_us; });
          while (ended != device.begin()) {
            const std::size_t other = *--ended;
            if (events[other].end_us < e.start_us - cross_stream_us) break;
            if (events[other].track != e.track) {
              deps[i].push_back(index[other]);
              break;
            }
          }
        }
      } else if (e.kind == "wait") {  // the device work that ended last before the wait did
        const auto last = std::upper_bound(device.begin(), device.end(), e.end_us + rounding_us,
                                           [&](double t, std::size_t d) { return t < events[d].end_us; });
        if (last != device.begin() && events[*std::prev(last)].end_us >= e.start_us) deps[i].push_back(index[*std::prev(last)]);
      } else if (is_communication(e) && e.correlation >= 0) {  // a worker's collective and the thread waiting for it
        const auto handed = enqueue_of.find(e.correlation);
        if (handed == enqueue_of.end()) continue;
        const KinetoEvent& enqueue = events[handed->second];
        deps[i].push_back(index[handed->second]);
        if (e.bytes == 0) e.bytes = enqueue.bytes;
        for (std::size_t next : on_track[enqueue.track]) {
          if (events[next].start_us > enqueue.start_us && events[next].start_us >= e.end_us - rounding_us) {
            deps[next].push_back(index[i]);
            break;
          }
        }
      }
    }

    std::map<std::string, int> position;
    for (std::size_t i : order) {
      const KinetoEvent& e = events[i];
      Event out;
      out.rank = ranks[r].rank;
      out.repetition = std::max(e.step, 0);
      out.op = position[e.track]++;
      out.cost_key = e.name;
      out.start = (e.start_us + offset_us[r] - origin_us) * 1e-6;
      out.end = (e.end_us + offset_us[r] - origin_us) * 1e-6;
      out.bytes = e.bytes;
      out.kind = e.kind;
      out.track = e.track;
      out.collective = instance[r][i];
      out.group = e.group;
      std::sort(deps[i].begin(), deps[i].end());
      deps[i].erase(std::unique(deps[i].begin(), deps[i].end()), deps[i].end());
      out.deps = std::move(deps[i]);
      out.work = e.work;
      trace.events.push_back(std::move(out));
    }
  }
  return trace;
}

}  // namespace detail
}  // namespace plait::traces
