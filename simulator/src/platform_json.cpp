// Platform files: format "plait.platform", version 1.
//
//   format, version   "plait.platform", 1
//   name              string (default: the file name)
//   nodes             integer >= 1
//   node.devices      integer >= 1 with node.device, or an array of device objects
//   device object     {"sheet": device sheet name, "profile": optional profile path
//                      (relative to the platform file)}
//   node.link         the intra-node link (device to device through the node's switch)
//   node.allreduce_pass_bytes_per_s  optional: each device's pass over a gradient
//                     all-reduce's buffer (bytes / this before its messages)
//   inter_node        {"topology": "star" | "fat-tree" | "torus", "link": link,
//                      fat-tree: "down", "up", "link_count" (one entry per level,
//                      leaves = product of down = nodes); torus: "dimensions"
//                      (product = nodes)}. Optional when nodes == 1.
//   inter_node.collectives  "messages" (default: a gradient all-reduce that
//                     crosses nodes is its algorithm's messages over the links) or
//                     "hierarchical" (NCCL's: in closed form, see
//                     costmodels/cluster_links.hpp; star only). Tensor-parallel
//                     all-reduces are always in closed form, hierarchical across nodes.
//   inter_node.collective_overhead_s  optional, >= 0: each collective that crosses nodes
//   link object       {"sheet": link sheet name} and/or {"latency_s", "bandwidth_bytes_per_s"}
//                     (explicit figures override the sheet's)
//   placement         "block" (rank r on device r), "round-robin" (rank r on node
//                     r % nodes), or an array of device indices, one per rank
//
// Star and intra-node latencies are end to end (each of the two hops carries half);
// fat-tree and torus figures are per hop. Errors name the file and JSON pointer.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "plait/costmodels/costmodels.hpp"
#include "plait/schedule/error.hpp"
#include "plait/simulator/platform.hpp"

namespace plait::simulator {
namespace {

using nlohmann::json;

struct Reader {
  std::string origin;

  [[noreturn]] void fail(const std::string& pointer, const std::string& why) const {
    throw Error(origin + ": " + (pointer.empty() ? "/" : pointer), why);
  }
  const json& member(const json& object, const std::string& pointer, const char* key) const {
    if (!object.contains(key)) fail(pointer + "/" + key, "missing");
    return object.at(key);
  }
  long integer(const json& value, const std::string& pointer, long minimum,
               long maximum = max_platform_devices) const {
    if (!value.is_number_integer()) fail(pointer, "expected an integer");
    if (value.is_number_unsigned() && value.get<std::uint64_t>() > std::uint64_t(maximum))
      fail(pointer, value.dump() + " above the limit of " + std::to_string(maximum));
    const long number = value.get<long>();
    if (number < minimum) fail(pointer, "must be >= " + std::to_string(minimum));
    if (number > maximum) fail(pointer, value.dump() + " above the limit of " + std::to_string(maximum));
    return number;
  }
  double positive(const json& value, const std::string& pointer, bool allow_zero) const {
    if (!value.is_number()) fail(pointer, "expected a number");
    const double number = value.get<double>();
    if (!(allow_zero ? number >= 0 : number > 0) || !std::isfinite(number))
      fail(pointer, allow_zero ? "must be >= 0" : "must be > 0");
    return number;
  }
  std::string text(const json& value, const std::string& pointer) const {
    if (!value.is_string()) fail(pointer, "expected a string");
    return value.get<std::string>();
  }
  std::vector<unsigned> unsigned_list(const json& value, const std::string& pointer) const {
    if (!value.is_array() || value.empty()) fail(pointer, "expected a non-empty array of integers");
    std::vector<unsigned> out;
    for (std::size_t i = 0; i < value.size(); ++i)
      out.push_back(static_cast<unsigned>(integer(value[i], pointer + "/" + std::to_string(i), 1)));
    return out;
  }

  LinkSpec link(const json& value, const std::string& pointer) const {
    if (!value.is_object()) fail(pointer, "expected a link object");
    LinkSpec out;
    if (value.contains("sheet")) {
      out.sheet = text(value["sheet"], pointer + "/sheet");
      try {
        const costmodels::LinkSheet sheet = costmodels::link_sheet(out.sheet);
        out.latency_s = sheet.latency_s;
        out.bandwidth_bytes_per_s = sheet.bandwidth_bytes_per_s;
      } catch (const Error& error) {
        fail(pointer + "/sheet", error.why());
      }
    } else if (!value.contains("latency_s") || !value.contains("bandwidth_bytes_per_s")) {
      fail(pointer, "needs \"sheet\" or both \"latency_s\" and \"bandwidth_bytes_per_s\"");
    }
    if (value.contains("latency_s"))
      out.latency_s = positive(value["latency_s"], pointer + "/latency_s", true);
    if (value.contains("bandwidth_bytes_per_s"))
      out.bandwidth_bytes_per_s =
          positive(value["bandwidth_bytes_per_s"], pointer + "/bandwidth_bytes_per_s", false);
    return out;
  }

  DeviceSpec device(const json& value, const std::string& pointer) const {
    if (!value.is_object()) fail(pointer, "expected a device object");
    DeviceSpec out;
    out.sheet = text(member(value, pointer, "sheet"), pointer + "/sheet");
    try {
      costmodels::device_sheet(out.sheet);
    } catch (const Error& error) {
      fail(pointer + "/sheet", error.why());
    }
    if (value.contains("profile")) {
      std::filesystem::path profile = text(value["profile"], pointer + "/profile");
      if (profile.is_relative())
        profile = std::filesystem::path(origin).parent_path() / profile;
      out.profile = profile.string();
    }
    return out;
  }
};

// Saturates just above the device limit, so a long list of large factors cannot overflow.
std::int64_t product(const auto& values) {
  std::int64_t out = 1;
  for (const auto value : values) out = std::min<std::int64_t>(out * std::int64_t(value), max_platform_devices + 1);
  return out;
}

}  // namespace

PlatformSpec parse_platform(const json& in, const std::string& origin) {
  const Reader read{origin};
  if (!in.is_object()) read.fail("", "expected a JSON object");
  if (!in.contains("format") || in["format"] != "plait.platform")
    read.fail("/format", "expected \"plait.platform\"");
  if (!in.contains("version") || in["version"] != 1) read.fail("/version", "expected 1");

  PlatformSpec spec;
  spec.origin = origin;
  spec.name = in.contains("name") ? read.text(in["name"], "/name")
                                  : std::filesystem::path(origin).stem().string();
  spec.nodes = static_cast<int>(read.integer(read.member(in, "", "nodes"), "/nodes", 1));

  const json& node = read.member(in, "", "node");
  const json& devices = read.member(node, "/node", "devices");
  if (devices.is_array()) {
    if (devices.empty()) read.fail("/node/devices", "needs at least one device");
    if (devices.size() > std::size_t{max_node_devices})
      read.fail("/node/devices", std::to_string(devices.size()) + " devices above the limit of " +
                                     std::to_string(max_node_devices));
    for (std::size_t i = 0; i < devices.size(); ++i)
      spec.node_devices.push_back(read.device(devices[i], "/node/devices/" + std::to_string(i)));
  } else {
    const long count = read.integer(devices, "/node/devices", 1, max_node_devices);
    const DeviceSpec device = read.device(read.member(node, "/node", "device"), "/node/device");
    spec.node_devices.assign(static_cast<std::size_t>(count), device);
  }
  if (std::int64_t{spec.nodes} * std::int64_t(spec.node_devices.size()) > max_platform_devices)
    read.fail("/nodes", std::to_string(spec.nodes) + " nodes of " + std::to_string(spec.node_devices.size()) +
                            " devices are above the limit of " + std::to_string(max_platform_devices) + " devices");
  spec.intra_node = read.link(read.member(node, "/node", "link"), "/node/link");
  if (node.contains("allreduce_pass_bytes_per_s"))
    spec.allreduce_pass_bytes_per_s =
        read.positive(node["allreduce_pass_bytes_per_s"], "/node/allreduce_pass_bytes_per_s", false);

  if (in.contains("inter_node")) {
    const json& inter = in["inter_node"];
    const std::string topology = read.text(read.member(inter, "/inter_node", "topology"),
                                           "/inter_node/topology");
    spec.inter_node.link = read.link(read.member(inter, "/inter_node", "link"), "/inter_node/link");
    if (inter.contains("collectives")) {
      const std::string collectives = read.text(inter["collectives"], "/inter_node/collectives");
      if (collectives != "hierarchical" && collectives != "messages")
        read.fail("/inter_node/collectives", "unknown \"" + collectives + "\" (hierarchical or messages)");
      spec.inter_node.hierarchical_collectives = collectives == "hierarchical";
    }
    if (inter.contains("collective_overhead_s"))
      spec.inter_node.collective_overhead_s =
          read.positive(inter["collective_overhead_s"], "/inter_node/collective_overhead_s", true);
    if (topology == "star") {
      spec.inter_node.topology = Topology::star;
    } else if (topology == "fat-tree") {
      spec.inter_node.topology = Topology::fat_tree;
      auto& tree = spec.inter_node;
      tree.fat_tree_down = read.unsigned_list(read.member(inter, "/inter_node", "down"), "/inter_node/down");
      tree.fat_tree_up = read.unsigned_list(read.member(inter, "/inter_node", "up"), "/inter_node/up");
      tree.fat_tree_link_count =
          read.unsigned_list(read.member(inter, "/inter_node", "link_count"), "/inter_node/link_count");
      if (tree.fat_tree_up.size() != tree.fat_tree_down.size() ||
          tree.fat_tree_link_count.size() != tree.fat_tree_down.size())
        read.fail("/inter_node", "down, up and link_count need one entry per level");
      if (product(tree.fat_tree_down) != spec.nodes)
        read.fail("/inter_node/down", "the fat tree has " + std::to_string(product(tree.fat_tree_down)) +
                                          " leaves but the platform has " + std::to_string(spec.nodes) + " nodes");
    } else if (topology == "torus") {
      spec.inter_node.topology = Topology::torus;
      for (unsigned dimension :
           read.unsigned_list(read.member(inter, "/inter_node", "dimensions"), "/inter_node/dimensions"))
        spec.inter_node.torus_dimensions.push_back(dimension);
      if (product(spec.inter_node.torus_dimensions) != spec.nodes)
        read.fail("/inter_node/dimensions",
                  "the torus has " + std::to_string(product(spec.inter_node.torus_dimensions)) +
                      " places but the platform has " + std::to_string(spec.nodes) + " nodes");
    } else {
      read.fail("/inter_node/topology", "unknown topology \"" + topology +
                                            "\" (expected star, fat-tree or torus)");
    }
    if (spec.inter_node.hierarchical_collectives && spec.inter_node.topology != Topology::star)
      read.fail("/inter_node/collectives", "hierarchical needs a star (its link is a node's NICs)");
  } else if (spec.nodes > 1) {
    read.fail("/inter_node", "missing (needed when nodes > 1)");
  }

  if (in.contains("placement")) {
    const json& placement = in["placement"];
    if (placement.is_array()) {
      spec.placement = Placement::explicit_list;
      std::vector<bool> used(static_cast<std::size_t>(spec.device_count()), false);
      for (std::size_t r = 0; r < placement.size(); ++r) {
        const std::string pointer = "/placement/" + std::to_string(r);
        const long device = read.integer(placement[r], pointer, 0);
        if (device >= spec.device_count())
          read.fail(pointer, "device " + std::to_string(device) + " does not exist (the platform has " +
                                 std::to_string(spec.device_count()) + ")");
        if (used[static_cast<std::size_t>(device)]) read.fail(pointer, "device placed twice");
        used[static_cast<std::size_t>(device)] = true;
        spec.explicit_devices.push_back(static_cast<int>(device));
      }
    } else {
      const std::string text = read.text(placement, "/placement");
      if (text == "block") spec.placement = Placement::block;
      else if (text == "round-robin") spec.placement = Placement::round_robin;
      else read.fail("/placement", "expected \"block\", \"round-robin\" or an array of device indices");
    }
  }
  return spec;
}

PlatformSpec load_platform(const std::string& path) {
  if (std::filesystem::path(path).extension() == ".xml") {
    if (!std::filesystem::exists(path)) throw Error(path, "no such file");
    PlatformSpec spec;
    spec.origin = path;
    spec.name = std::filesystem::path(path).stem().string();
    spec.simgrid_xml = path;
    return spec;
  }
  std::ifstream file(path);
  if (!file) throw Error(path, "cannot open platform file");
  return parse_platform_text(std::string(std::istreambuf_iterator<char>(file), {}), path);
}

PlatformSpec parse_platform_text(const std::string& text, const std::string& origin) {
  json in;
  try {
    in = json::parse(text);
  } catch (const json::exception& error) {  // parse_error, or out_of_range for a number beyond double
    throw Error(origin, std::string("not valid JSON: ") + error.what());
  }
  return parse_platform(in, origin);
}

namespace {

// Where shipped platforms live: $PLAIT_PLATFORMS, else the installed
// share/plait/platforms beside the running binary's bin/, else the source tree
// this binary was built from.
std::filesystem::path platforms_dir() {
  if (const char* chosen = std::getenv("PLAIT_PLATFORMS")) return chosen;
  std::error_code error;
  const auto binary = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) {
    const auto installed = binary.parent_path().parent_path() / "share" / "plait" / "platforms";
    if (std::filesystem::is_directory(installed, error)) return installed;
  }
  return PLAIT_PLATFORMS_DIR;
}

}  // namespace

std::string find_platform(const std::string& name_or_path) {
  if (std::filesystem::exists(name_or_path)) return name_or_path;
  const std::filesystem::path shipped = platforms_dir() / (name_or_path + ".json");
  if (name_or_path.find('/') == std::string::npos && std::filesystem::exists(shipped))
    return shipped.string();
  std::string names;
  for (const std::string& name : shipped_platform_names()) names += (names.empty() ? "" : ", ") + name;
  throw Error(name_or_path, "no such platform file or shipped platform (shipped: " + names + ")");
}

std::vector<std::string> shipped_platform_names() {
  std::vector<std::string> names;
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator(platforms_dir(), ignored))
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

PlatformSpec with_nodes(PlatformSpec spec, int nodes) {
  if (nodes < 1) throw Error(spec.origin, "node count must be >= 1, not " + std::to_string(nodes));
  if (!spec.simgrid_xml.empty()) throw Error(spec.origin, "a SimGrid XML platform cannot be resized");
  if (spec.inter_node.topology != Topology::star && nodes != spec.nodes)
    throw Error(spec.origin, "only star platforms can be resized (fat-tree and torus sizes come from their parameters)");
  if (nodes > 1 && spec.nodes == 1 && spec.inter_node.link.bandwidth_bytes_per_s <= 0)
    throw Error(spec.origin, "cannot add nodes: the platform has no inter_node link");
  if (spec.placement == Placement::explicit_list)
    throw Error(spec.origin, "cannot resize a platform with an explicit placement");
  spec.nodes = nodes;
  return spec;
}

PlatformSpec grown_to_hold(PlatformSpec spec, int ranks) {
  const int per_node = static_cast<int>(spec.node_devices.size());
  if (spec.nodes < 2 || per_node < 1 || spec.inter_node.topology != Topology::star || !spec.simgrid_xml.empty() ||
      spec.placement == Placement::explicit_list)
    return spec;
  const int needed = (ranks + per_node - 1) / per_node;
  return needed > spec.nodes ? with_nodes(std::move(spec), needed) : spec;
}

std::vector<int> place_ranks(const PlatformSpec& spec, int ranks) {
  const int devices = spec.device_count();
  if (ranks < 1) throw Error(spec.origin, "a program needs at least one rank");
  if (ranks > devices)
    throw Error(spec.origin, "the program has " + std::to_string(ranks) + " ranks but the platform has " +
                                 std::to_string(devices) + " devices (one rank per device)");
  std::vector<int> device_of_rank(static_cast<std::size_t>(ranks));
  const int per_node = static_cast<int>(spec.node_devices.size());
  for (int r = 0; r < ranks; ++r) {
    switch (spec.placement) {
      case Placement::block: device_of_rank[r] = r; break;
      case Placement::round_robin: device_of_rank[r] = (r % spec.nodes) * per_node + r / spec.nodes; break;
      case Placement::explicit_list:
        if (static_cast<std::size_t>(r) >= spec.explicit_devices.size())
          throw Error(spec.origin + ": /placement", "places " + std::to_string(spec.explicit_devices.size()) +
                                                        " ranks but the program has " + std::to_string(ranks));
        device_of_rank[r] = spec.explicit_devices[r];
        break;
    }
  }
  return device_of_rank;
}

}  // namespace plait::simulator
