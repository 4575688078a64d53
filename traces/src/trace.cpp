// Reading, writing and exporting traces.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/schedule/program.hpp"
#include "plait/traces/trace.hpp"

namespace plait::traces {
namespace {

using nlohmann::json;

template <typename T>
T field(const json& object, const char* key, const std::string& where) {
  if (!object.is_object()) throw Error(where, "expected an object");
  const auto it = object.find(key);
  if (it == object.end()) throw Error(where, std::string("missing \"") + key + "\"");
  if constexpr (std::is_integral_v<T>) {
    // Refused, never truncated: a float, or an integer outside T.
    if (!it->is_number_integer()) throw Error(where + "/" + key, "expected an integer, got " + it->dump());
    const bool fits = it->is_number_unsigned() ? std::in_range<T>(it->get<std::uint64_t>())
                                               : std::in_range<T>(it->get<std::int64_t>());
    if (!fits) throw Error(where + "/" + key, it->dump() + " is out of range");
  } else if constexpr (std::is_arithmetic_v<T>) {
    if (!it->is_number()) throw Error(where + "/" + key, std::string("expected a number, got ") + it->type_name());
  } else {
    if (!it->is_string()) throw Error(where + "/" + key, std::string("expected a string, got ") + it->type_name());
  }
  return it->get<T>();
}

// Optional fields (imported traces): absent means the default.
template <typename T>
T optional_field(const json& object, const char* key, const std::string& where, T fallback) {
  return object.contains(key) ? field<T>(object, key, where) : fallback;
}

std::vector<std::int64_t> dependencies(const json& object, const std::string& where, std::size_t self,
                                       std::size_t events) {
  std::vector<std::int64_t> deps;
  const auto it = object.find("deps");
  if (it == object.end()) return deps;
  if (!it->is_array()) throw Error(where + "/deps", std::string("expected an array, got ") + it->type_name());
  for (std::size_t k = 0; k < it->size(); ++k) {
    const json& dep = (*it)[k];
    const std::string at = where + "/deps/" + std::to_string(k);
    if (!dep.is_number_integer()) throw Error(at, "expected an event index, got " + dep.dump());
    const bool in_range = dep.is_number_unsigned() && dep.get<std::uint64_t>() < events;  // JSON's >= 0 are unsigned
    if (!in_range) throw Error(at, "event " + dep.dump() + " outside 0.." + std::to_string(events - 1));
    if (dep.get<std::uint64_t>() == self) throw Error(at, "an event cannot depend on itself");
    deps.push_back(dep.get<std::int64_t>());
  }
  return deps;
}

std::optional<KernelWork> kernel_work(const json& object, const std::string& where) {
  const auto it = object.find("work");
  if (it == object.end()) return std::nullopt;
  const std::string at = where + "/work";
  KernelWork work;
  work.op = field<std::string>(*it, "op", at);
  work.flops = field<double>(*it, "flops", at);
  work.bytes = field<double>(*it, "bytes", at);
  work.gemm_min_dim = field<std::int64_t>(*it, "gemm_min_dim", at);
  work.dtype = field<std::string>(*it, "dtype", at);
  if (!(work.flops >= 0) || !(work.bytes >= 0) || work.gemm_min_dim < 0) throw Error(at, "negative work");
  if (work.dtype != "fp32" && work.dtype != "fp16" && work.dtype != "bf16") {
    throw Error(at + "/dtype", "expected fp32, fp16 or bf16, got \"" + work.dtype + "\"");
  }
  return work;
}

void append_number(std::string& out, double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", value);
  out += text;
}

}  // namespace

bool is_event_kind(const std::string& kind) {
  static const char* const kinds[] = {"compute", "collective", "memory", "send", "recv", "host", "wait", "step"};
  return std::find(std::begin(kinds), std::end(kinds), kind) != std::end(kinds);
}

double Trace::makespan() const {
  if (events.empty()) return 0;
  double first = std::numeric_limits<double>::infinity(), last = -first;
  for (const auto& event : events) {
    first = std::min(first, event.start);
    last = std::max(last, event.end);
  }
  return last - first;
}

std::string dump_trace(const Trace& trace) {
  std::string out = "{\"format\":\"plait.trace\",\"version\":1,\"source\":" + json(trace.source).dump() +
                    ",\"ranks\":" + std::to_string(trace.ranks) + ",\"events\":[";
  for (std::size_t i = 0; i < trace.events.size(); ++i) {
    const Event& e = trace.events[i];
    out += i ? ",\n{" : "\n{";
    out += "\"rank\":" + std::to_string(e.rank) + ",\"section\":" + std::to_string(e.section) +
           ",\"repetition\":" + std::to_string(e.repetition) + ",\"op\":" + std::to_string(e.op) +
           ",\"cost_key\":" + json(e.cost_key).dump() + ",\"level\":" + std::to_string(e.level) +
           ",\"point\":" + std::to_string(e.point) + ",\"start\":";
    append_number(out, e.start);
    out += ",\"end\":";
    append_number(out, e.end);
    out += ",\"bytes\":" + std::to_string(e.bytes) + ",\"peer\":" + std::to_string(e.peer);
    if (!e.kind.empty()) out += ",\"kind\":" + json(e.kind).dump();
    if (!e.track.empty()) out += ",\"track\":" + json(e.track).dump();
    if (e.collective >= 0) out += ",\"collective\":" + std::to_string(e.collective);
    if (!e.group.empty()) out += ",\"group\":" + json(e.group).dump();
    if (!e.deps.empty()) {
      out += ",\"deps\":[";
      for (std::size_t k = 0; k < e.deps.size(); ++k) out += (k ? "," : "") + std::to_string(e.deps[k]);
      out += "]";
    }
    if (e.work) {
      out += ",\"work\":{\"op\":" + json(e.work->op).dump() + ",\"flops\":";
      append_number(out, e.work->flops);
      out += ",\"bytes\":";
      append_number(out, e.work->bytes);
      out += ",\"gemm_min_dim\":" + std::to_string(e.work->gemm_min_dim) + ",\"dtype\":" + json(e.work->dtype).dump() + "}";
    }
    out += "}";
  }
  out += "\n]}\n";
  return out;
}

void save_trace(const Trace& trace, const std::string& path) { write_text_file(path, dump_trace(trace)); }

Trace parse_trace(const std::string& text, const std::string& origin) {
  json document;
  try {
    document = json::parse(text);
  } catch (const json::parse_error& error) {
    throw Error(origin, "not valid JSON: byte " + std::to_string(error.byte));
  } catch (const json::exception& error) {  // e.g. out_of_range: a number beyond double
    const std::string what = error.what();
    throw Error(origin, "not valid JSON: " + what.substr(what.find("] ") + 2));
  }
  try {
    if (!document.is_object()) throw Error("", "expected a JSON object");
    const auto format = field<std::string>(document, "format", "");
    if (format != "plait.trace") throw Error("/format", "expected \"plait.trace\", got \"" + format + "\"");
    const int version = field<int>(document, "version", "");
    if (version != Trace::format_version) {
      throw Error("/version", "unsupported version " + std::to_string(version));
    }
    Trace trace;
    trace.source = field<std::string>(document, "source", "");
    trace.ranks = field<int>(document, "ranks", "");
    if (trace.ranks < 1) throw Error("/ranks", "must be >= 1");
    if (trace.ranks > schedule::max_ranks) {
      throw Error("/ranks", std::to_string(trace.ranks) + " above the limit of " + std::to_string(schedule::max_ranks));
    }
    const auto events = document.find("events");
    if (events == document.end() || !events->is_array()) throw Error("/events", "expected an array");
    trace.events.reserve(events->size());
    for (std::size_t i = 0; i < events->size(); ++i) {
      const json& in = (*events)[i];
      const std::string where = "/events/" + std::to_string(i);
      Event e;
      e.rank = field<int>(in, "rank", where);
      e.section = field<int>(in, "section", where);
      e.repetition = field<int>(in, "repetition", where);
      e.op = field<int>(in, "op", where);
      e.cost_key = field<std::string>(in, "cost_key", where);
      e.level = field<int>(in, "level", where);
      e.point = field<int>(in, "point", where);
      e.start = field<double>(in, "start", where);
      e.end = field<double>(in, "end", where);
      e.bytes = field<std::int64_t>(in, "bytes", where);
      e.peer = field<int>(in, "peer", where);
      e.kind = optional_field<std::string>(in, "kind", where, "");
      if (!e.kind.empty() && !is_event_kind(e.kind)) {
        throw Error(where + "/kind", "unknown kind \"" + e.kind +
                                         "\" (compute, collective, memory, send, recv, host, wait or step)");
      }
      e.track = optional_field<std::string>(in, "track", where, "");
      e.collective = optional_field<std::int64_t>(in, "collective", where, -1);
      if (e.collective < -1) throw Error(where + "/collective", "expected -1 (none) or an instance id");
      e.group = optional_field<std::string>(in, "group", where, "");
      e.deps = dependencies(in, where, i, events->size());
      e.work = kernel_work(in, where);
      if (e.rank < 0 || e.rank >= trace.ranks) {
        throw Error(where + "/rank", "rank " + std::to_string(e.rank) + " outside 0.." + std::to_string(trace.ranks - 1));
      }
      if (e.end < e.start) throw Error(where, "ends before it starts");
      if (e.bytes < 0) throw Error(where + "/bytes", "negative");
      trace.events.push_back(std::move(e));
    }
    return trace;
  } catch (const Error& error) {
    throw error.within(origin);
  }
}

Trace load_trace(const std::string& path) { return parse_trace(read_text_file(path), path); }

std::string dump_perfetto(const Trace& trace) {
  // Imported traces: a process per rank, a thread per track (stream, thread);
  // plait's own: one thread per rank.
  std::map<std::pair<int, std::string>, int> thread_of;
  for (const Event& e : trace.events) {
    if (!e.track.empty()) thread_of.emplace(std::make_pair(e.rank, e.track), 0);
  }
  const bool tracks = !thread_of.empty();
  std::string out = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[";
  bool first = true;
  auto metadata = [&](const char* what, int pid, int tid, const std::string& name) {
    out += first ? "\n" : ",\n";
    first = false;
    out += "{\"ph\":\"M\",\"name\":\"" + std::string(what) + "\",\"pid\":" + std::to_string(pid) +
           ",\"tid\":" + std::to_string(tid) + ",\"args\":{\"name\":" + json(name).dump() + "}}";
  };
  if (tracks) {
    int next = 0, last_rank = -1;
    for (auto& [key, tid] : thread_of) {
      if (key.first != last_rank) metadata("process_name", key.first, 0, "rank " + std::to_string(key.first));
      next = key.first != last_rank ? 1 : next;
      last_rank = key.first;
      tid = next++;
      metadata("thread_name", key.first, tid, key.second);
    }
  } else {
    for (int rank = 0; rank < trace.ranks; ++rank) metadata("thread_name", 0, rank, "rank " + std::to_string(rank));
  }
  for (const Event& e : trace.events) {
    const int pid = tracks ? e.rank : 0;
    const int tid = tracks ? (e.track.empty() ? 0 : thread_of.at({e.rank, e.track})) : e.rank;
    out += first ? "\n" : ",\n";
    first = false;
    out += "{\"ph\":\"X\",\"pid\":" + std::to_string(pid) + ",\"tid\":" + std::to_string(tid) +
           ",\"name\":" + json(e.cost_key).dump() + ",\"ts\":";
    append_number(out, e.start * 1e6);
    out += ",\"dur\":";
    append_number(out, (e.end - e.start) * 1e6);
    out += ",\"args\":{\"section\":" + std::to_string(e.section) + ",\"repetition\":" + std::to_string(e.repetition) +
           ",\"op\":" + std::to_string(e.op) + ",\"level\":" + std::to_string(e.level) +
           ",\"point\":" + std::to_string(e.point) + ",\"bytes\":" + std::to_string(e.bytes) +
           ",\"peer\":" + std::to_string(e.peer);
    if (!e.kind.empty()) out += ",\"kind\":" + json(e.kind).dump();
    if (e.collective >= 0) out += ",\"collective\":" + std::to_string(e.collective);
    out += "}}";
  }
  out += "\n]}\n";
  return out;
}

}  // namespace plait::traces
