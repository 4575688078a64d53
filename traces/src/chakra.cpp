// Chakra execution traces (schema: mlcommons/chakra schema/protobuf/et_def.proto)
// read with a protobuf wire-format reader of our own (detail/protobuf_wire.hpp),
// so plait needs no libprotobuf. Random input gives one located plait::Error,
// never a read past the buffer or an allocation sized by a length read from it.
//
// Dependencies: only data_deps. Chakra's own ETFeeder (and so ASTRA-sim)
// schedules by data_deps alone, and Chakra's PyTorch converter stores the
// parent op in ctrl_deps: in real traces those point at the node itself, at
// nodes left out of the file and around cycles (the feeder test trace
// chakra.0.et has 383, 1,277 and 417 of them). ctrl_deps are still read and
// checked as wire data.
//
// CPU or GPU: the node attribute is_cpu_op, true when absent (the feeder's
// default). CPU nodes are host ops whatever their type: PyTorch traces give a
// collective as c10d::allreduce_-style COMM_COLL_NODEs on the CPU around the
// NCCL kernel, and only the kernel is the collective.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <queue>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "plait/schedule/error.hpp"
#include "plait/schedule/program.hpp"
#include "plait/traces/chakra.hpp"

#include "detail/compressed_file.hpp"
#include "detail/kernel_name.hpp"
#include "detail/protobuf_wire.hpp"

namespace plait::traces {
namespace {

using detail::expect_wire, detail::unzigzag, detail::utf8_string, detail::WireError, detail::WireField,
    detail::WireReader;
using enum detail::WireType;

struct Attribute {
  std::string name;
  std::optional<WireField> value;  // one of AttributeProto's oneof fields 3..32
};

Attribute read_attribute(std::string_view file, const WireField& field) {
  expect_wire(field, length_wire, "attr");
  Attribute attribute;
  for (WireReader reader(file, field.bytes); !reader.done();) {
    const WireField inner = reader.next();
    if (inner.number == 1) attribute.name = utf8_string(inner, "attribute name");
    else if (inner.number >= 3 && inner.number <= 32) attribute.value = inner;  // a oneof: the last wins
  }
  return attribute;
}

// The value of an attribute held in any of AttributeProto's integer fields, within [lowest, highest].
std::int64_t integer_of(const Attribute& attribute, std::int64_t lowest, std::int64_t highest) {
  const auto wrong = [&](const std::string& why) {
    return WireError{attribute.value ? attribute.value->offset : 0, "attribute " + attribute.name + ": " + why};
  };
  const auto out_of_range = [&](const std::string& value) {
    return wrong(value + " is out of range (" + std::to_string(lowest) + ".." + std::to_string(highest) + ")");
  };
  if (!attribute.value) throw wrong("has no value");
  const WireField& v = *attribute.value;
  const auto low = static_cast<std::uint32_t>(v.value);
  const bool varint = v.wire == varint_wire, fixed32 = v.wire == fixed32_wire, fixed64 = v.wire == fixed64_wire;
  std::optional<std::int64_t> value;
  if (varint && v.number == 7) value = static_cast<std::int32_t>(low);                 // int32_val
  else if (varint && v.number == 9) value = static_cast<std::int64_t>(v.value);        // int64_val
  else if (varint && v.number == 11) value = low;                                      // uint32_val
  else if (varint && v.number == 15) value = static_cast<std::int32_t>(unzigzag(low));     // sint32_val
  else if (varint && v.number == 17) value = unzigzag(v.value);                          // sint64_val
  else if (fixed32 && v.number == 19) value = low;                                     // fixed32_val
  else if (fixed32 && v.number == 23) value = static_cast<std::int32_t>(low);          // sfixed32_val
  else if (fixed64 && v.number == 25) value = static_cast<std::int64_t>(v.value);      // sfixed64_val
  else if ((varint && v.number == 13) || (fixed64 && v.number == 21)) {                // uint64_val, fixed64_val
    if (v.value > static_cast<std::uint64_t>(highest)) throw out_of_range(std::to_string(v.value));
    value = static_cast<std::int64_t>(v.value);
  }
  if (!value) throw wrong("expected an integer (field " + std::to_string(v.number) + ")");
  if (*value < lowest || *value > highest) throw out_of_range(std::to_string(*value));
  return *value;
}

// bool_val, or an integer 0 or 1 (older converters wrote is_cpu_op as int32_val).
bool flag_of(const Attribute& attribute) {
  if (attribute.value && attribute.value->number == 27 && attribute.value->wire == varint_wire) {
    return attribute.value->value != 0;
  }
  return integer_of(attribute, 0, 1) != 0;
}

enum NodeType : std::uint64_t { mem_load_node = 2, mem_store_node, comp_node, send_node, recv_node, coll_node };

struct Node {
  std::uint64_t id = 0, type = 0, duration_us = 0;
  std::string name, pg_name;
  std::vector<std::uint64_t> data_deps;
  std::int64_t comm_size = 0, comm_src = -1, comm_dst = -1;
  std::optional<std::int64_t> comm_type;
  bool cpu = true;  // is_cpu_op
};

Node read_node(std::string_view file, std::string_view message) {
  Node node;
  std::vector<std::uint64_t> ctrl_deps;  // checked, not followed (see the top)
  for (WireReader reader(file, message); !reader.done();) {
    const WireField field = reader.next();
    switch (field.number) {
      case 1: expect_wire(field, varint_wire, "id"), node.id = field.value; break;
      case 2: node.name = utf8_string(field, "name"); break;
      case 3: expect_wire(field, varint_wire, "type"), node.type = field.value; break;
      case 4: detail::read_varints(file, field, "ctrl_deps", ctrl_deps); break;
      case 5: detail::read_varints(file, field, "data_deps", node.data_deps); break;
      case 6: expect_wire(field, varint_wire, "start_time_micros"); break;
      case 7: expect_wire(field, varint_wire, "duration_micros"), node.duration_us = field.value; break;
      case 8: expect_wire(field, length_wire, "inputs"); break;
      case 9: expect_wire(field, length_wire, "outputs"); break;
      case 10: {
        const Attribute attribute = read_attribute(file, field);
        constexpr std::int64_t most = std::numeric_limits<std::int64_t>::max(), last_rank = schedule::max_ranks - 1;
        if (attribute.name == "comm_size") node.comm_size = integer_of(attribute, 0, most);
        if (attribute.name == "comm_src") node.comm_src = integer_of(attribute, 0, last_rank);
        if (attribute.name == "comm_dst") node.comm_dst = integer_of(attribute, 0, last_rank);
        if (attribute.name == "comm_type") node.comm_type = integer_of(attribute, 0, most);
        if (attribute.name == "is_cpu_op") node.cpu = flag_of(attribute);
        if (attribute.name == "pg_name") {
          if (!attribute.value || attribute.value->number != 29) {
            throw WireError{field.offset, "attribute pg_name: expected a string"};
          }
          node.pg_name = utf8_string(*attribute.value, "pg_name");
        }
        break;
      }
      default: break;  // fields of newer schemas (storage = 11, ...)
    }
  }
  return node;
}

// GlobalMetadata { string version = 1; repeated AttributeProto attr = 2; }; PyTorch-converted
// traces leave version empty and give it as an attribute "schema" instead.
bool is_global_metadata(std::string_view file, std::string_view message) {
  bool versioned = false;
  try {
    for (WireReader reader(file, message); !reader.done();) {
      const WireField field = reader.next();
      if (field.number == 1) versioned = !utf8_string(field, "version").empty() || versioned;
      if (field.number != 2) continue;
      const Attribute attribute = read_attribute(file, field);
      const bool text = attribute.value && attribute.value->number == 29 && attribute.value->wire == length_wire;
      versioned = versioned || ((attribute.name == "schema" || attribute.name == "version") && text);
    }
  } catch (const WireError&) {
    return false;
  }
  return versioned;
}

const char* collective_name(std::optional<std::int64_t> comm_type) {
  static const char* const names[] = {"ALL_REDUCE", "REDUCE",     "ALL_GATHER",     "GATHER",
                                      "SCATTER",    "BROADCAST",  "ALL_TO_ALL",     "REDUCE_SCATTER",
                                      "REDUCE_SCATTER_BLOCK",     "BARRIER"};
  return comm_type && *comm_type < static_cast<std::int64_t>(std::size(names)) ? names[*comm_type] : "COLLECTIVE";
}

// An event's kind and track. Tracks "gpu ..." are what plait's breakdown takes
// for device time; a rank's file is its one GPU.
std::pair<const char*, const char*> kind_and_track(const Node& node) {
  if (!node.cpu) {
    switch (node.type) {
      case comp_node: return {"compute", "gpu 0 compute"};
      case coll_node: return {"collective", "gpu 0 comm"};
      case send_node: return {"send", "gpu 0 comm"};
      case recv_node: return {"recv", "gpu 0 comm"};
      case mem_load_node: case mem_store_node: return {"memory", "gpu 0 compute"};
      default: break;  // METADATA_NODE, INVALID_NODE, STORAGE_NODE, ...: not device work
    }
  }
  return {"host", "cpu"};
}

std::string node_id(std::uint64_t id) { return "node id " + std::to_string(id); }

std::vector<Node> read_nodes(std::string_view file) {
  if (file.empty()) throw Error("", "empty file (not a Chakra ET)");
  std::vector<Node> nodes;
  WireReader messages(file, 0, file.size());
  for (std::size_t message = 0; !messages.done(); ++message) {
    const auto where = [&](std::size_t byte) {
      return (message == 0 ? "GlobalMetadata" : "node #" + std::to_string(message - 1)) + " (byte " +
             std::to_string(byte) + ")";
    };
    try {
      const std::string_view body = messages.length_delimited("truncated: the message");
      if (message == 0 && !is_global_metadata(file, body)) throw Error("", "not a Chakra ET (no GlobalMetadata)");
      if (message > 0) nodes.push_back(read_node(file, body));
    } catch (const WireError& error) {
      throw Error(where(error.byte), error.why);
    }
  }
  return nodes;
}

// The nodes' events in a topological order of data_deps (ties by node id), so
// that each track run in file order never waits on a later event. Peers must be
// below `ranks`.
Trace events_of(std::vector<Node>& nodes, int rank, int ranks) {
  std::unordered_map<std::uint64_t, std::size_t> index_of;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const auto [it, inserted] = index_of.emplace(nodes[i].id, i);
    if (!inserted) {
      throw Error(node_id(nodes[i].id), "appears twice (node #" + std::to_string(it->second) + " and #" +
                                            std::to_string(i) + ")");
    }
  }
  std::vector<std::vector<std::size_t>> predecessors(nodes.size()), successors(nodes.size());
  std::vector<std::size_t> waiting_on(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    auto& mine = predecessors[i];
    for (const std::uint64_t dep : nodes[i].data_deps) {
      const auto found = index_of.find(dep);
      if (found == index_of.end()) {
        throw Error(node_id(nodes[i].id), "depends on " + node_id(dep) + ", which is not in the file");
      }
      mine.push_back(found->second);
    }
    std::sort(mine.begin(), mine.end());
    mine.erase(std::unique(mine.begin(), mine.end()), mine.end());
    for (const std::size_t p : mine) successors[p].push_back(i);
    waiting_on[i] = mine.size();
  }
  using Ready = std::pair<std::uint64_t, std::size_t>;  // (id, index)
  std::priority_queue<Ready, std::vector<Ready>, std::greater<>> ready;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (waiting_on[i] == 0) ready.emplace(nodes[i].id, i);
  }
  std::vector<std::size_t> order;
  std::vector<std::int64_t> event_of(nodes.size(), -1);
  while (!ready.empty()) {
    const std::size_t i = ready.top().second;
    ready.pop();  // before pushing its successors
    event_of[i] = static_cast<std::int64_t>(order.size());
    order.push_back(i);
    for (const std::size_t s : successors[i]) {
      if (--waiting_on[s] == 0) ready.emplace(nodes[s].id, s);
    }
  }
  if (order.size() < nodes.size()) {
    // Walk back through unemitted predecessors from the lowest such id: every
    // unemitted node has one, so the walk comes back to a node, which is on a cycle.
    std::size_t at = nodes.size();
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (event_of[i] < 0 && (at == nodes.size() || nodes[i].id < nodes[at].id)) at = i;
    }
    std::vector<bool> walked(nodes.size());
    for (const auto unemitted = [&](std::size_t p) { return event_of[p] < 0; }; !walked[at];) {
      walked[at] = true;
      at = *std::find_if(predecessors[at].begin(), predecessors[at].end(), unemitted);
    }
    throw Error(node_id(nodes[at].id), "is on a dependency cycle");
  }

  Trace trace;
  trace.source = "chakra";
  trace.ranks = rank + 1;
  std::map<std::string, int> ops_on_track;
  for (const std::size_t i : order) {
    Node& node = nodes[i];
    Event event;
    event.rank = rank;
    const auto [kind, track] = kind_and_track(node);
    event.kind = kind, event.track = track;
    event.op = ops_on_track[event.track]++;
    event.cost_key = is_device_track(event.track) ? detail::kernel_name(node.name) : std::move(node.name);
    if (node.type == coll_node && event.cost_key.empty()) event.cost_key = collective_name(node.comm_type);
    event.end = static_cast<double>(node.duration_us) / 1e6;  // the double nearest the decimal, unlike * 1e-6
    const bool message = event.kind == "send" || event.kind == "recv";
    if (message || event.kind == "collective") {  // GPU communication only: CPU nodes carry no message
      event.bytes = node.comm_size;
      event.group = std::move(node.pg_name);
    }
    if (message) event.peer = static_cast<int>(event.kind == "send" ? node.comm_dst : node.comm_src);
    if (event.peer >= ranks) {
      throw Error(node_id(node.id), "its peer " + std::to_string(event.peer) + " is not one of the " +
                                        std::to_string(ranks) + " ranks");
    }
    for (const std::size_t p : predecessors[i]) event.deps.push_back(event_of[p]);
    std::sort(event.deps.begin(), event.deps.end());
    trace.events.push_back(std::move(event));
  }
  return trace;
}

// `ranks`: how many there are, when known.
Trace parse_file(const std::string& bytes, int rank, int ranks, const std::string& origin) {
  try {
    if (rank < 0 || rank >= schedule::max_ranks) throw Error("", "rank " + std::to_string(rank) + " is out of range");
    std::vector<Node> nodes = read_nodes(bytes);
    return events_of(nodes, rank, ranks);
  } catch (const Error& error) {
    throw error.within(origin);
  }
}

// The k-th collective of a process group on each rank is one instance, as a
// communicator runs its collectives in order. Only GPU collectives have kind
// "collective": the CPU ops that launch them are host ops.
void number_collectives(Trace& trace) {
  std::map<std::pair<std::string, std::int64_t>, std::int64_t> instance_of;
  std::map<std::string, std::int64_t> seen_on_rank;
  int rank = -1;
  for (Event& event : trace.events) {
    if (event.rank != rank) rank = event.rank, seen_on_rank.clear();
    if (event.kind != "collective") continue;
    const auto key = std::make_pair(event.group, seen_on_rank[event.group]++);
    event.collective = instance_of.emplace(key, static_cast<std::int64_t>(instance_of.size())).first->second;
  }
}

int rank_of_file(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  if (name.ends_with(".gz")) name.resize(name.size() - 3);
  const Error unnamed(path, "no rank in the file name (expected {prefix}.{rank}.et or .et.gz)");
  if (name.size() < 4 || !name.ends_with(".et")) throw unnamed;
  std::size_t first = name.size() - 3;
  while (first > 0 && name[first - 1] >= '0' && name[first - 1] <= '9') --first;
  const std::string digits = name.substr(first, name.size() - 3 - first);
  if (digits.empty() || (first > 0 && name[first - 1] != '.')) throw unnamed;
  if (digits.size() > 8 || std::stoll(digits) >= schedule::max_ranks) {
    throw Error(path, "rank " + digits + " above the limit of " + std::to_string(schedule::max_ranks - 1));
  }
  return static_cast<int>(std::stoll(digits));
}

}  // namespace

Trace parse_chakra(const std::string& bytes, int rank, const std::string& origin) {
  Trace trace = parse_file(bytes, rank, schedule::max_ranks, origin);
  number_collectives(trace);
  return trace;
}

Trace read_chakra(const std::vector<std::string>& paths) {
  if (paths.empty()) throw Error("", "no Chakra ET files given");
  std::map<int, std::string> path_of_rank;
  for (const std::string& path : paths) {
    const int rank = rank_of_file(path);
    const auto [it, inserted] = path_of_rank.emplace(rank, path);
    if (!inserted) throw Error(path, "a second file for rank " + std::to_string(rank) + " (also " + it->second + ")");
  }
  const int ranks = path_of_rank.rbegin()->first + 1;
  if (static_cast<int>(path_of_rank.size()) < ranks) {
    std::string missing;
    for (int rank = 0, listed = 0; rank < ranks && listed < 10; ++rank) {
      if (!path_of_rank.count(rank)) missing += (listed++ ? ", " : "") + std::to_string(rank);
    }
    if (ranks - static_cast<int>(path_of_rank.size()) > 10) missing += ", ...";
    throw Error(path_of_rank.rbegin()->second,
                "ranks go up to " + std::to_string(ranks - 1) + " but these have no file: " + missing);
  }
  Trace trace;
  trace.source = "chakra";
  trace.ranks = ranks;
  for (const auto& [rank, path] : path_of_rank) {
    Trace file = parse_file(detail::read_possibly_gzipped(path), rank, ranks, path);
    const auto first = static_cast<std::int64_t>(trace.events.size());
    for (Event& event : file.events) {
      for (std::int64_t& dep : event.deps) dep += first;
      trace.events.push_back(std::move(event));
    }
  }
  number_collectives(trace);
  return trace;
}

}  // namespace plait::traces
