// Platforms the simulator runs Programs on: nodes of devices, an intra-node
// link, an inter-node topology, and where ranks go. No SimGrid in this header.
//
// JSON form ("plait.platform", version 1), documented in platform_json.cpp:
//   {"format": "plait.platform", "version": 1, "name": "h100x32",
//    "nodes": 4,
//    "node": {"devices": 8, "device": {"sheet": "h100-sxm"},
//             "link": {"sheet": "nvlink4"}},
//    "inter_node": {"topology": "star", "link": {"sheet": "infiniband-ndr"}},
//    "placement": "block"}
// A SimGrid XML file (*.xml) is accepted instead; its hosts are the devices.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "plait/costmodels/cluster_links.hpp"

namespace plait::simulator {

// A link's end-to-end figures: a message of b bytes between two devices it
// joins takes latency_s + b / bandwidth_bytes_per_s when alone on it.
struct LinkSpec {
  std::string sheet;  // link sheet name it came from ("" when explicit)
  double latency_s = 0;
  double bandwidth_bytes_per_s = 0;
};

// What prices a device's ops: a device sheet (analytic roofline) and, if
// given, a measured profile that takes precedence.
struct DeviceSpec {
  std::string sheet;
  std::string profile;  // path; "" when none
  friend bool operator==(const DeviceSpec&, const DeviceSpec&) = default;
  friend auto operator<=>(const DeviceSpec&, const DeviceSpec&) = default;
};

enum class Topology { star, fat_tree, torus };

struct InterNodeSpec {
  Topology topology = Topology::star;
  // star: node-to-node figures (each node's uplink carries half the latency);
  // fat-tree, torus: the figures of one link (one hop).
  LinkSpec link;
  std::vector<unsigned> fat_tree_down, fat_tree_up, fat_tree_link_count;
  std::vector<unsigned long> torus_dimensions;
  // Gradient all-reduces that cross nodes in NCCL's hierarchical closed form
  // (costmodels/cluster_links.hpp) instead of their algorithm's messages.
  bool hierarchical_collectives = false;
  double collective_overhead_s = 0;  // each collective that crosses nodes
};

enum class Placement { block, round_robin, explicit_list };

// Limits a platform file may ask for (parse_platform refuses more, naming them).
inline constexpr int max_node_devices = 4096;
inline constexpr int max_platform_devices = 1 << 20;

struct PlatformSpec {
  std::string name;
  std::string origin;  // file it was loaded from
  int nodes = 1;
  std::vector<DeviceSpec> node_devices;  // the devices of every node
  LinkSpec intra_node;                   // device to device within a node
  // Each device's pass over an all-reduce's buffer before its messages (NCCL's
  // copy and reduction kernels), bytes / this; 0: none (a gradient all-reduce
  // is its messages alone). Fitted by `plait allreduce-check --fit`.
  double allreduce_pass_bytes_per_s = 0;
  InterNodeSpec inter_node;
  Placement placement = Placement::block;
  std::vector<int> explicit_devices;  // device index of each rank (explicit_list)
  std::string simgrid_xml;            // set: the platform is this SimGrid XML file

  int device_count() const { return nodes * static_cast<int>(node_devices.size()); }
};

// Parses and checks a platform; errors are plait::Error naming `origin` and
// the JSON pointer of the bad value. Link sheet names are resolved here.
PlatformSpec parse_platform(const nlohmann::json& in, const std::string& origin);
// The text of a platform file (what load_platform reads from a *.json file).
PlatformSpec parse_platform_text(const std::string& text, const std::string& origin);
// A *.json file, or a *.xml SimGrid platform (checked when it is built).
PlatformSpec load_platform(const std::string& path);
// `name_or_path`: an existing file, or the name of a shipped platform
// (platforms/<name>.json), e.g. "local", "h100x32".
std::string find_platform(const std::string& name_or_path);
std::vector<std::string> shipped_platform_names();

// The same platform with `nodes` nodes (star topology only: fat-tree and torus
// sizes are fixed by their parameters). Throws plait::Error otherwise.
PlatformSpec with_nodes(PlatformSpec spec, int nodes);

// A cluster sized to a Program: a star platform of several nodes grows to the
// fewest nodes that hold `ranks` (never shrinks: a placement on the first nodes
// does not see the others). Single-node platforms and fixed topologies come
// back unchanged, so a Program too big for them is still refused by name.
PlatformSpec grown_to_hold(PlatformSpec spec, int ranks);

// The platform's inter-node link and collective overhead as the closed forms
// of costmodels/cluster_links.hpp take them (a star's link: a node's NICs).
costmodels::InterNodeLinks inter_node_links(const PlatformSpec& spec);

// The star platform file at `path` with fitted inter-node links (its link's
// bandwidth and latency, the collectives' overhead, collectives
// "hierarchical"), renamed `name` and described: the text of the new file,
// checked by parse_platform_text. Throws plait::Error for a platform that is
// not a JSON star (calibrate --from-steps --platform-out).
std::string fitted_platform_text(const std::string& path, const costmodels::InterNodeLinks& links,
                                 const std::string& name, const std::string& description);

// Device index (node * devices_per_node + device) of each of `ranks` ranks.
// Throws plait::Error when ranks do not fit (two ranks never share a device).
std::vector<int> place_ranks(const PlatformSpec& spec, int ranks);

}  // namespace plait::simulator
