#include "platform_build.hpp"

#include <map>

#include <simgrid/s4u/Link.hpp>
#include <simgrid/s4u/NetZone.hpp>

#include "plait/schedule/error.hpp"

namespace plait::simulator::detail {
namespace {

namespace sg4 = simgrid::s4u;
using simgrid::kernel::routing::NetPoint;

// Device hosts do not compute in SimGrid terms: ops are charged as sleeps.
constexpr double device_speed = 1e9;

// One node: a star of split-duplex links around its switch, one per device;
// each link carries half the intra-node latency so that device to device
// takes the link's latency. The switch router is the node's gateway.
struct NodeZone {
  sg4::NetZone* zone = nullptr;
  NetPoint* gateway = nullptr;
};

NodeZone build_node(const sg4::NetZone* parent, const PlatformSpec& spec, int node, BuiltPlatform& built) {
  const std::string name = "node" + std::to_string(node);
  NodeZone out;
  out.zone = sg4::create_star_zone(name);
  out.zone->set_parent(parent);
  out.gateway = out.zone->create_router(name + "-switch");
  for (std::size_t d = 0; d < spec.node_devices.size(); ++d) {
    const std::string host_name = name + "-dev" + std::to_string(d);
    sg4::Host* host = out.zone->create_host(host_name, device_speed)->seal();
    sg4::Link* link = out.zone->create_split_duplex_link(host_name + "-link", spec.intra_node.bandwidth_bytes_per_s)
                          ->set_latency(spec.intra_node.latency_s / 2)
                          ->seal();
    out.zone->add_route(host->get_netpoint(), nullptr, nullptr, nullptr,
                        {{link, sg4::LinkInRoute::Direction::UP}}, true);
    // Leaves may be built in any order: devices go to their index.
    const std::size_t index = static_cast<std::size_t>(node) * spec.node_devices.size() + d;
    built.devices.at(index) = host;
    built.device_specs.at(index) = spec.node_devices[d];
    built.node_of_device.at(index) = node;
  }
  out.zone->seal();
  return out;
}

void build_star(const PlatformSpec& spec, BuiltPlatform& built) {
  sg4::NetZone* cluster = sg4::create_star_zone("cluster");
  for (int node = 0; node < spec.nodes; ++node) {
    const NodeZone zone = build_node(cluster, spec, node, built);
    if (spec.nodes == 1) break;
    sg4::Link* uplink =
        cluster->create_split_duplex_link("node" + std::to_string(node) + "-uplink",
                                          spec.inter_node.link.bandwidth_bytes_per_s)
            ->set_latency(spec.inter_node.link.latency_s / 2)
            ->seal();
    cluster->add_route(zone.zone->get_netpoint(), nullptr, zone.gateway, nullptr,
                       {{uplink, sg4::LinkInRoute::Direction::UP}}, true);
  }
  cluster->seal();
}

// Fat-tree and torus leaves are created in leaf order by SimGrid's callback.
sg4::ClusterCallbacks leaf_callbacks(const PlatformSpec& spec, BuiltPlatform& built) {
  return sg4::ClusterCallbacks(
      [&spec, &built](sg4::NetZone* zone, const std::vector<unsigned long>& /*coord*/, unsigned long id) {
        const NodeZone node = build_node(zone, spec, static_cast<int>(id), built);
        return std::make_pair(node.zone->get_netpoint(), node.gateway);
      });
}

}  // namespace

BuiltPlatform build_platform(sg4::Engine& engine, const PlatformSpec& spec) {
  BuiltPlatform built;
  if (!spec.simgrid_xml.empty()) {
    try {
      engine.load_platform(spec.simgrid_xml);
    } catch (const std::exception& error) {
      throw Error(spec.simgrid_xml, std::string("SimGrid could not load the platform: ") + error.what());
    }
    std::map<const sg4::NetZone*, int> node_of_zone;  // an XML zone holding hosts is a machine
    for (sg4::Host* host : engine.get_all_hosts()) {
      const auto [zone, inserted] =
          node_of_zone.try_emplace(host->get_englobing_zone(), static_cast<int>(node_of_zone.size()));
      built.node_of_device.push_back(zone->second);
      DeviceSpec device;
      if (const char* sheet = host->get_property("plait_device")) device.sheet = sheet;
      if (const char* profile = host->get_property("plait_profile")) device.profile = profile;
      built.devices.push_back(host);
      built.device_specs.push_back(device);
    }
    if (built.devices.empty()) throw Error(spec.simgrid_xml, "the platform has no hosts");
    return built;
  }
  built.devices.assign(static_cast<std::size_t>(spec.device_count()), nullptr);
  built.device_specs.assign(static_cast<std::size_t>(spec.device_count()), DeviceSpec{});
  built.node_of_device.assign(static_cast<std::size_t>(spec.device_count()), 0);
  const auto& link = spec.inter_node.link;
  switch (spec.inter_node.topology) {
    case Topology::star:
      build_star(spec, built);
      break;
    case Topology::fat_tree: {
      const auto& tree = spec.inter_node;
      sg4::FatTreeParams params(static_cast<unsigned>(tree.fat_tree_down.size()), tree.fat_tree_down,
                                tree.fat_tree_up, tree.fat_tree_link_count);
      sg4::create_fatTree_zone("cluster", nullptr, params, leaf_callbacks(spec, built),
                               link.bandwidth_bytes_per_s, link.latency_s, sg4::Link::SharingPolicy::SPLITDUPLEX)
          ->seal();
      break;
    }
    case Topology::torus:
      sg4::create_torus_zone("cluster", nullptr, spec.inter_node.torus_dimensions, leaf_callbacks(spec, built),
                             link.bandwidth_bytes_per_s, link.latency_s, sg4::Link::SharingPolicy::SPLITDUPLEX)
          ->seal();
      break;
  }
  for (std::size_t i = 0; i < built.devices.size(); ++i)
    if (built.devices[i] == nullptr)
      throw Error(spec.origin, "SimGrid built no host for device " + std::to_string(i));
  return built;
}

}  // namespace plait::simulator::detail
