// Where a trace's time went (see breakdown.hpp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "plait/schedule/error.hpp"
#include "plait/traces/breakdown.hpp"

namespace plait::traces {
namespace {

using Intervals = std::vector<std::pair<double, double>>;

Intervals merged(Intervals intervals) {
  std::sort(intervals.begin(), intervals.end());
  Intervals out;
  for (const auto& [start, end] : intervals) {
    if (!out.empty() && start <= out.back().second) {
      out.back().second = std::max(out.back().second, end);
    } else {
      out.emplace_back(start, end);
    }
  }
  return out;
}

double length(const Intervals& intervals) {  // of merged intervals
  double total = 0;
  for (const auto& [start, end] : intervals) total += end - start;
  return total;
}

double overlap(const Intervals& a, const Intervals& b) {  // both merged
  double total = 0;
  for (std::size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    total += std::max(0.0, std::min(a[i].second, b[j].second) - std::max(a[i].first, b[j].first));
    a[i].second < b[j].second ? ++i : ++j;
  }
  return total;
}

Intervals clipped(const Intervals& intervals, double from, double to) {
  Intervals out;
  for (const auto& [start, end] : intervals) {
    if (std::min(end, to) > std::max(start, from)) out.emplace_back(std::max(start, from), std::min(end, to));
  }
  return out;
}

bool on_device(const Event& e) { return is_device_track(e.track); }

struct RankEvents {
  Intervals compute, communication, memory;
  std::map<int, std::pair<double, double>> steps;  // step -> span
  double first = INFINITY, last = -INFINITY;
};

RankBreakdown row_for(int rank, int step, double from, double to, const RankEvents& events) {
  const Intervals compute = merged(clipped(events.compute, from, to));
  const Intervals communication = merged(clipped(events.communication, from, to));
  const Intervals memory = merged(clipped(events.memory, from, to));
  Intervals all = compute;
  all.insert(all.end(), communication.begin(), communication.end());
  all.insert(all.end(), memory.begin(), memory.end());
  const double busy = length(merged(all));
  RankBreakdown row;
  row.rank = rank;
  row.step = step;
  row.span_s = to - from;
  row.compute_s = length(compute);
  row.communication_s = length(communication);
  row.overlap_s = overlap(communication, compute);
  row.memory_s = length(memory);
  row.non_compute_s = busy - row.compute_s;
  row.idle_s = row.span_s - busy;
  return row;
}

}  // namespace

Breakdown breakdown(const Trace& trace, int top_kernels) {
  std::map<int, bool> has_device;
  bool imported = false;
  for (const Event& e : trace.events) {
    imported |= !e.kind.empty();
    has_device[e.rank] = has_device[e.rank] || on_device(e);
  }
  if (!imported) throw Error("breakdown", "not an imported trace (no event kinds): plait import makes one");

  std::map<int, RankEvents> ranks;
  std::map<std::pair<std::string, std::string>, KernelTime> kernels;
  std::map<std::int64_t, std::vector<const Event*>> instances;
  for (const Event& e : trace.events) {
    RankEvents& rank = ranks[e.rank];
    if (e.kind == "step") {
      rank.steps[e.repetition] = {e.start, e.end};
      continue;
    }
    if (on_device(e) != has_device[e.rank] || e.kind == "host" || e.kind == "wait") continue;
    Intervals& into = e.kind == "compute" ? rank.compute : e.kind == "memory" ? rank.memory : rank.communication;
    into.emplace_back(e.start, e.end);
    rank.first = std::min(rank.first, e.start);
    rank.last = std::max(rank.last, e.end);
    KernelTime& kernel = kernels[{e.cost_key, e.kind}];
    kernel.name = e.cost_key;
    kernel.kind = e.kind;
    kernel.count += 1;
    kernel.total_s += e.end - e.start;
    if (e.kind == "collective" && e.collective >= 0) instances[e.collective].push_back(&e);
  }

  Breakdown out;
  std::map<std::pair<int, int>, RankBreakdown*> row_of;  // (rank, step)
  for (const auto& [rank, events] : ranks) {
    for (const auto& [step, span] : events.steps) out.rows.push_back(row_for(rank, step, span.first, span.second, events));
    if (events.first <= events.last) out.rows.push_back(row_for(rank, -1, events.first, events.last, events));
  }
  for (RankBreakdown& row : out.rows) row_of[{row.rank, row.step}] = &row;

  std::map<int, Straggler> stragglers;
  for (const auto& [id, members] : instances) {
    double arrival = -INFINITY;
    const Event* last = members.front();
    for (const Event* m : members) {
      if (m->start > arrival) {
        arrival = m->start;
        last = m;
      }
    }
    for (const Event* m : members) {
      const double wait = arrival - m->start;
      for (int step : {m->repetition, -1}) {
        const auto row = row_of.find({m->rank, step});
        if (row == row_of.end() || (step >= 0 && ranks[m->rank].steps.count(step) == 0)) continue;
        row->second->collective_wait_s += wait;
        row->second->collectives += 1;
      }
      if (members.size() > 1) stragglers[last->rank].caused_wait_s += wait;
    }
    if (members.size() > 1) {
      stragglers[last->rank].rank = last->rank;
      stragglers[last->rank].last_arrivals += 1;
    }
  }
  for (const auto& [rank, straggler] : stragglers) out.stragglers.push_back(straggler);
  std::sort(out.stragglers.begin(), out.stragglers.end(),
            [](const Straggler& a, const Straggler& b) { return a.caused_wait_s > b.caused_wait_s; });
  for (const auto& [key, kernel] : kernels) out.top.push_back(kernel);
  std::sort(out.top.begin(), out.top.end(), [](const KernelTime& a, const KernelTime& b) { return a.total_s > b.total_s; });
  if (static_cast<int>(out.top.size()) > top_kernels) out.top.resize(static_cast<std::size_t>(std::max(0, top_kernels)));
  return out;
}

std::string format_breakdown(const Breakdown& breakdown) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-5s %-5s %11s %9s %9s %9s %9s %9s %9s %11s\n", "rank", "step", "span (ms)", "compute",
                "comm", "overlap", "memory", "idle", "non-comp", "coll. wait");
  out += line;
  for (const RankBreakdown& row : breakdown.rows) {
    const double span = row.span_s > 0 ? row.span_s : 1;
    auto share = [&](double seconds) { return 100 * seconds / span; };
    std::snprintf(line, sizeof line, "%-5d %-5s %11.3f %8.1f%% %8.1f%% %8.1f%% %8.1f%% %8.1f%% %8.1f%% %9.3fms\n", row.rank,
                  row.step < 0 ? "all" : std::to_string(row.step).c_str(), row.span_s * 1e3, share(row.compute_s),
                  share(row.communication_s), share(row.overlap_s), share(row.memory_s), share(row.idle_s),
                  share(row.non_compute_s), row.collective_wait_s * 1e3);
    out += line;
  }
  out += "(shares of the span; overlap: communication under compute; non-comp: busy but not computing, as HTA)\n";
  if (!breakdown.stragglers.empty()) {
    out += "\nstragglers (last to reach a collective)\nrank  last arrivals  others' wait (ms)\n";
    for (const Straggler& s : breakdown.stragglers) {
      std::snprintf(line, sizeof line, "%-5d %13d %18.3f\n", s.rank, s.last_arrivals, s.caused_wait_s * 1e3);
      out += line;
    }
  }
  if (!breakdown.top.empty()) {
    out += "\ntop kernels and ops by time (all ranks)\n    total (ms)   count  kind        name\n";
    for (const KernelTime& k : breakdown.top) {
      const std::string name = k.name.size() > 90 ? k.name.substr(0, 87) + "..." : k.name;
      std::snprintf(line, sizeof line, "%14.3f %7lld  %-10s  %s\n", k.total_s * 1e3, static_cast<long long>(k.count),
                    k.kind.c_str(), name.c_str());
      out += line;
    }
  }
  return out;
}

void to_json(nlohmann::json& out, const Breakdown& breakdown) {
  out = nlohmann::json{{"rows", nlohmann::json::array()}, {"stragglers", nlohmann::json::array()}, {"top", nlohmann::json::array()}};
  for (const RankBreakdown& r : breakdown.rows) {
    out["rows"].push_back({{"rank", r.rank}, {"step", r.step}, {"span_s", r.span_s}, {"compute_s", r.compute_s},
                           {"communication_s", r.communication_s}, {"overlap_s", r.overlap_s}, {"memory_s", r.memory_s},
                           {"non_compute_s", r.non_compute_s}, {"idle_s", r.idle_s},
                           {"collective_wait_s", r.collective_wait_s}, {"collectives", r.collectives}});
  }
  for (const Straggler& s : breakdown.stragglers) {
    out["stragglers"].push_back({{"rank", s.rank}, {"last_arrivals", s.last_arrivals}, {"caused_wait_s", s.caused_wait_s}});
  }
  for (const KernelTime& k : breakdown.top) {
    out["top"].push_back({{"name", k.name}, {"kind", k.kind}, {"count", k.count}, {"total_s", k.total_s}});
  }
}

}  // namespace plait::traces
