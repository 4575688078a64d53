// One Kineto (PyTorch profiler) JSON file: the events plait keeps, classified,
// on the file's own clock. Linking the ranks is kineto_link.cpp.
#include <algorithm>
#include <cctype>
#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include "detail/compressed_file.hpp"
#include "detail/kernel_name.hpp"
#include "detail/kineto.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::traces::detail {
namespace {

using nlohmann::json;

int rank_from_file_name(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  name = name.substr(0, name.find('.'));  // "rank-1.json.gz" -> "rank-1"
  const auto last_digit = name.find_last_of("0123456789");
  if (last_digit == std::string::npos) {
    throw Error("", "no rank: neither distributedInfo.rank in the file nor a number in its name");
  }
  auto first_digit = last_digit;
  while (first_digit > 0 && std::isdigit(static_cast<unsigned char>(name[first_digit - 1]))) --first_digit;
  if (last_digit - first_digit > 7) throw Error("", "the number in the file name is not a rank: " + name);
  return std::stoi(name.substr(first_digit, last_digit - first_digit + 1));
}

const json* member(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string text_or(const json& object, const char* key, std::string fallback) {
  const json* value = member(object, key);
  if (!value) return fallback;
  if (value->is_string()) return value->get<std::string>();
  if (value->is_number_integer()) return std::to_string(value->get<std::int64_t>());
  return fallback;
}

double number(const json& event, const char* key, const std::string& where) {
  const json* value = member(event, key);
  if (!value || !value->is_number()) throw Error(where + "/" + key, "expected a number");
  const double x = value->get<double>();
  if (!(x >= -1e18 && x <= 1e18)) throw Error(where + "/" + key, "out of range");
  return x;
}

std::int64_t dtype_bytes(const std::string& dtype) {
  static const std::map<std::string, std::int64_t> sizes = {
      {"Float", 4},   {"float", 4}, {"Half", 2},  {"BFloat16", 2}, {"Double", 8}, {"Int", 4},
      {"Long", 8},    {"Byte", 1},  {"Char", 1},  {"Bool", 1},     {"Short", 2},  {"c10::Half", 2},
      {"c10::BFloat16", 2}, {"double", 8}, {"int", 4}, {"long int", 8}, {"unsigned char", 1}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

// A collective's bytes from the newer layout's arguments (the larger of the
// input and output: all-gather's output, reduce-scatter's input), else from
// the first input's dims and type; 0 when neither says.
std::int64_t collective_bytes(const json& args) {
  const json* in = member(args, "In msg nelems");
  const json* out = member(args, "Out msg nelems");
  const std::int64_t element = dtype_bytes(text_or(args, "dtype", ""));
  if (in && in->is_number_integer() && element > 0) {
    const std::int64_t count = std::max(in->get<std::int64_t>(), out && out->is_number_integer() ? out->get<std::int64_t>() : 0);
    if (count >= 0 && count < (std::int64_t{1} << 50)) return count * element;
  }
  const json* dims = member(args, "Input Dims");
  const json* types = member(args, "Input type");
  if (!dims || !types || !dims->is_array() || !types->is_array() || dims->empty() || types->empty()) return 0;
  if (!(*dims)[0].is_array() || !(*types)[0].is_string()) return 0;
  std::int64_t count = 1;
  for (const json& d : (*dims)[0]) {
    if (!d.is_number_integer() || d.get<std::int64_t>() < 0 || d.get<std::int64_t>() > (1 << 30)) return 0;
    count *= d.get<std::int64_t>();
    if (count > (std::int64_t{1} << 50)) return 0;
  }
  return (*dims)[0].empty() ? 0 : count * dtype_bytes((*types)[0].get<std::string>());
}

std::string collective_group(const json& args) {
  std::string group = text_or(args, "Process Group Name", "");
  return group.empty() ? text_or(args, "Process Group Ranks", "") : group;
}

struct HostOp {  // a host op kept aside until the file is read
  KinetoEvent event;
  std::string thread;
  json args;
};

// Each thread's outermost ops: an op starting before the current outermost
// one ends is nested in it.
std::vector<HostOp> outermost(std::vector<HostOp> ops) {
  std::stable_sort(ops.begin(), ops.end(), [](const HostOp& a, const HostOp& b) {
    return a.thread != b.thread ? a.thread < b.thread
                                : (a.event.start_us != b.event.start_us ? a.event.start_us < b.event.start_us
                                                                        : a.event.end_us > b.event.end_us);
  });
  std::vector<HostOp> kept;
  for (HostOp& op : ops) {
    if (!kept.empty() && kept.back().thread == op.thread && op.event.start_us < kept.back().event.end_us) continue;
    kept.push_back(std::move(op));
  }
  return kept;
}

// A kernel's work from the innermost op around its launch, when that op
// launched it alone (an op of several kernels does not say which did what).
void attach_work(KinetoRank& rank, const std::vector<HostOp>& host_ops, const std::map<std::int64_t, std::size_t>& launches) {
  std::map<std::string, std::vector<const HostOp*>> by_thread;  // by start
  for (const HostOp& op : host_ops) by_thread["thread " + op.thread].push_back(&op);
  for (auto& [thread, ops] : by_thread) {
    std::stable_sort(ops.begin(), ops.end(), [](const HostOp* a, const HostOp* b) { return a->event.start_us < b->event.start_us; });
  }
  std::map<const HostOp*, std::vector<KinetoEvent*>> launched;
  for (KinetoEvent& kernel : rank.events) {
    if (kernel.kind != "compute") continue;
    const auto launch = launches.find(kernel.correlation);
    if (launch == launches.end()) continue;
    const KinetoEvent& call = rank.events[launch->second];
    const auto& ops = by_thread[call.track];
    // The innermost op around the call is the latest-starting one that holds it.
    auto it = std::upper_bound(ops.begin(), ops.end(), call.start_us,
                               [](double t, const HostOp* op) { return t < op->event.start_us; });
    for (int looked = 0; it != ops.begin() && looked < 64; ++looked) {
      const HostOp* op = *--it;
      if (call.start_us <= op->event.end_us) {
        launched[op].push_back(&kernel);
        break;
      }
    }
  }
  for (const auto& [op, kernels] : launched) {
    if (kernels.size() == 1) kernels.front()->work = op_work(op->event.name, op->args);
  }
}

}  // namespace

KinetoRank read_kineto_file(const std::string& path) { return parse_kineto(read_possibly_gzipped(path), path); }

KinetoRank parse_kineto(const std::string& text, const std::string& origin) {
  json document;
  try {
    document = json::parse(text);
  } catch (const json::exception& error) {
    const std::string what = error.what();
    throw Error(origin, "not valid JSON: " + what.substr(what.find("] ") + 2));
  }
  try {
    KinetoRank rank;
    rank.origin = origin;
    const json* events = document.is_array() ? &document : member(document, "traceEvents");
    if (!events || !events->is_array()) throw Error("", "not a PyTorch profiler trace: no traceEvents array");
    const json* info = member(document, "distributedInfo");
    const json* info_rank = info ? member(*info, "rank") : nullptr;
    if (info_rank && !(info_rank->is_number_unsigned() && info_rank->get<std::uint64_t>() < (1u << 24))) {
      throw Error("/distributedInfo/rank", "expected a rank, got " + info_rank->dump());
    }
    rank.rank = info_rank ? info_rank->get<int>() : rank_from_file_name(origin);
    const json* world = info ? member(*info, "world_size") : nullptr;
    if (world && world->is_number_unsigned() && world->get<std::uint64_t>() > static_cast<std::uint64_t>(rank.rank) &&
        world->get<std::uint64_t>() < (1u << 24)) {
      rank.world_size = world->get<int>();
    }
    rank.absolute_clock = member(document, "baseTimeNanoseconds") != nullptr;

    std::vector<HostOp> host_ops, comm_records;
    std::map<std::int64_t, std::size_t> launches;  // correlation -> index in rank.events
    for (std::size_t i = 0; i < events->size(); ++i) {
      const json& in = (*events)[i];
      if (!in.is_object() || text_or(in, "ph", "") != "X") continue;
      const std::string where = "/traceEvents/" + std::to_string(i);
      const json* name_value = member(in, "name");
      if (!name_value || !name_value->is_string()) throw Error(where + "/name", "expected a string");
      const std::string name = name_value->get<std::string>();
      const std::string category = text_or(in, "cat", "cpu_op");
      KinetoEvent event;
      event.start_us = number(in, "ts", where);
      const double duration = number(in, "dur", where);
      if (duration < 0) throw Error(where + "/dur", "negative duration");
      event.end_us = event.start_us + duration;
      if (event.start_us >= 1e14) rank.absolute_clock = true;  // epoch microseconds
      static const json no_args = json::object();
      const json& args = member(in, "args") && member(in, "args")->is_object() ? *member(in, "args") : no_args;
      const json* correlation = member(args, "correlation");
      if (correlation && correlation->is_number_integer()) event.correlation = correlation->get<std::int64_t>();
      const std::string device = text_or(in, "pid", "0"), stream = text_or(in, "tid", "0");
      if (category == "kernel" || category == "Kernel" || category == "gpu_memcpy" || category == "gpu_memset" ||
          category == "Memcpy" || category == "Memset") {
        const bool kernel = category == "kernel" || category == "Kernel";
        event.name = kernel ? kernel_name(name) : name;
        // NCCL's SendRecv kernels too: all-to-all runs on them, and the k-th of a
        // group is one exchange on each member.
        event.kind = !kernel ? "memory" : name.starts_with("nccl") ? "collective" : "compute";
        event.track = "gpu " + device + " stream " + stream;
        if (event.kind != "compute" && event.kind != "memory") {
          event.bytes = collective_bytes(args);
          event.group = collective_group(args);
        }
        rank.has_device = true;
        rank.events.push_back(std::move(event));
      } else if (category == "cuda_runtime" || category == "Runtime" || category == "cuda_driver") {
        const bool waits = name.find("Synchronize") != std::string::npos || name == "cudaMemcpy";
        const bool launches_work = name.find("Launch") != std::string::npos || name.starts_with("cudaMemcpy") ||
                                   name.starts_with("cudaMemset");
        if (!waits && !launches_work) continue;  // other runtime calls stay in the gaps between these
        event.name = name;
        event.kind = waits ? "wait" : "host";
        event.track = "thread " + stream;
        if (event.correlation >= 0) launches[event.correlation] = rank.events.size();
        rank.events.push_back(std::move(event));
      } else if (category == "cpu_op" || category == "user_annotation" || category == "Operator") {
        event.name = name;
        if (name.starts_with("ProfilerStep#")) {
          const std::string number_text = name.substr(13);
          if (number_text.empty() || number_text.size() > 9 ||
              !std::all_of(number_text.begin(), number_text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
            throw Error(where + "/name", "a profiler step without its number: \"" + name + "\"");
          }
          event.kind = "step";
          event.track = "steps";
          event.step = std::stoi(number_text);
          rank.events.push_back(std::move(event));
          continue;
        }
        HostOp op{std::move(event), stream, args};
        if (name == "record_param_comms") comm_records.push_back(op);
        host_ops.push_back(std::move(op));
      }
    }

    if (rank.has_device) {
      // A collective kernel without its own arguments takes bytes and group
      // from the record_param_comms around its launch.
      for (KinetoEvent& kernel : rank.events) {
        if (kernel.kind != "collective" || (kernel.bytes > 0 && !kernel.group.empty())) continue;
        const auto launch = launches.find(kernel.correlation);
        if (launch == launches.end()) continue;
        const KinetoEvent& call = rank.events[launch->second];
        for (const HostOp& record : comm_records) {
          if ("thread " + record.thread != call.track || record.event.start_us > call.start_us ||
              record.event.end_us < call.end_us) {
            continue;
          }
          if (kernel.bytes == 0) kernel.bytes = collective_bytes(record.args);
          if (kernel.group.empty()) kernel.group = collective_group(record.args);
        }
      }
      attach_work(rank, host_ops, launches);
    } else {
      // A CPU-only trace: each thread's outermost ops. gloo's collectives run on
      // worker threads; the c10d op that handed each over is paired with it in
      // order of their starts.
      std::vector<std::size_t> handed, run;
      for (HostOp& op : outermost(std::move(host_ops))) {
        KinetoEvent& event = op.event;
        event.track = "thread " + op.thread;
        if (event.name.starts_with("gloo:")) {
          event.kind = event.name.find("send") != std::string::npos   ? "send"
                       : event.name.find("recv") != std::string::npos ? "recv"
                                                                      : "collective";
          run.push_back(rank.events.size());
        } else if (event.name.starts_with("c10d::")) {
          event.kind = "host";
          event.enqueue = true;
          event.bytes = collective_bytes(op.args);
          handed.push_back(rank.events.size());
        } else {
          event.kind = "compute";
        }
        rank.events.push_back(std::move(event));
      }
      if (handed.size() == run.size()) {  // else unpaired: no enqueue links
        for (auto* list : {&handed, &run}) {
          std::sort(list->begin(), list->end(),
                    [&](std::size_t a, std::size_t b) { return rank.events[a].start_us < rank.events[b].start_us; });
          for (std::size_t k = 0; k < list->size(); ++k) rank.events[(*list)[k]].correlation = static_cast<std::int64_t>(k);
        }
      }
    }
    for (KinetoEvent& event : rank.events) {
      if (event.group.empty() && (event.kind == "collective" || event.kind == "send" || event.kind == "recv")) {
        event.group = "default";
      }
    }
    return rank;
  } catch (const Error& error) {
    throw error.within(origin);
  }
}

}  // namespace plait::traces::detail
