// Reading, writing and exporting traces.
#include <algorithm>
#include <cstdio>
#include <limits>
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

void append_number(std::string& out, double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", value);
  out += text;
}

}  // namespace

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
    out += ",\"bytes\":" + std::to_string(e.bytes) + ",\"peer\":" + std::to_string(e.peer) + "}";
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
  std::string out = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[";
  for (int rank = 0; rank < trace.ranks; ++rank) {
    out += (rank ? ",\n" : "\n");
    out += "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":0,\"tid\":" + std::to_string(rank) +
           ",\"args\":{\"name\":\"rank " + std::to_string(rank) + "\"}}";
  }
  for (const Event& e : trace.events) {
    out += ",\n{\"ph\":\"X\",\"pid\":0,\"tid\":" + std::to_string(e.rank) + ",\"name\":" + json(e.cost_key).dump() +
           ",\"ts\":";
    append_number(out, e.start * 1e6);
    out += ",\"dur\":";
    append_number(out, (e.end - e.start) * 1e6);
    out += ",\"args\":{\"section\":" + std::to_string(e.section) + ",\"repetition\":" + std::to_string(e.repetition) +
           ",\"op\":" + std::to_string(e.op) + ",\"level\":" + std::to_string(e.level) +
           ",\"point\":" + std::to_string(e.point) + ",\"bytes\":" + std::to_string(e.bytes) +
           ",\"peer\":" + std::to_string(e.peer) + "}}";
  }
  out += "\n]}\n";
  return out;
}

}  // namespace plait::traces
