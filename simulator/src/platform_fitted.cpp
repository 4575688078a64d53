// A platform's inter-node links for the closed forms, and a platform file
// with fitted ones (inter_node_links, fitted_platform_text).
#include <nlohmann/json.hpp>

#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/simulator/platform.hpp"

namespace plait::simulator {

costmodels::InterNodeLinks inter_node_links(const PlatformSpec& spec) {
  return {.node_bytes_per_s = spec.inter_node.link.bandwidth_bytes_per_s,
          .latency_s = spec.inter_node.link.latency_s,
          .collective_overhead_s = spec.inter_node.collective_overhead_s};
}

std::string fitted_platform_text(const std::string& path, const costmodels::InterNodeLinks& links,
                                 const std::string& name, const std::string& description) {
  const PlatformSpec base = load_platform(path);
  if (!base.simgrid_xml.empty() || base.inter_node.topology != Topology::star || base.nodes < 2)
    throw Error(path, "fitted inter-node links need a JSON star platform of several nodes");
  nlohmann::ordered_json out = nlohmann::ordered_json::parse(read_text_file(path));
  out["name"] = name;
  out["description"] = description;
  nlohmann::ordered_json& inter = out["inter_node"];
  inter["link"] = {{"latency_s", links.latency_s}, {"bandwidth_bytes_per_s", links.node_bytes_per_s}};
  inter["collectives"] = "hierarchical";
  inter["collective_overhead_s"] = links.collective_overhead_s;
  std::string text = out.dump(2) + "\n";
  parse_platform_text(text, name);
  return text;
}

}  // namespace plait::simulator
