// Platform files: parsing, errors with JSON pointers, shipped platforms, and
// the message times of the topologies SimGrid builds for them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "plait/schedule/error.hpp"
#include "plait/simulator/platform.hpp"
#include "plait/simulator/simulator.hpp"
#include "support.hpp"

namespace plait::simulator {
namespace {

using namespace testing;
using nlohmann::json;
using schedule::OpKind;

json two_node_platform() {
  return json::parse(R"({
    "format": "plait.platform", "version": 1, "name": "pair",
    "nodes": 2,
    "node": {"devices": 2, "device": {"sheet": "h100-sxm"},
             "link": {"latency_s": 1e-6, "bandwidth_bytes_per_s": 4e11}},
    "inter_node": {"topology": "star", "link": {"latency_s": 4e-6, "bandwidth_bytes_per_s": 5e10}}
  })");
}

std::string parse_error(const json& in) {
  try {
    parse_platform(in, "pair.json");
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(Platform, ParsesNodesDevicesLinksAndPlacement) {
  const PlatformSpec spec = parse_platform(two_node_platform(), "pair.json");
  EXPECT_EQ(spec.name, "pair");
  EXPECT_EQ(spec.device_count(), 4);
  EXPECT_EQ(spec.node_devices[1].sheet, "h100-sxm");
  EXPECT_DOUBLE_EQ(spec.intra_node.bandwidth_bytes_per_s, 4e11);
  EXPECT_DOUBLE_EQ(spec.inter_node.link.latency_s, 4e-6);
  EXPECT_EQ(place_ranks(spec, 3), (std::vector<int>{0, 1, 2}));
  json round_robin = two_node_platform();
  round_robin["placement"] = "round-robin";
  EXPECT_EQ(place_ranks(parse_platform(round_robin, "pair.json"), 4), (std::vector<int>{0, 2, 1, 3}));
}

TEST(Platform, BadValuesAreNamedByFileAndJsonPointer) {
  json in = two_node_platform();
  in["nodes"] = 0;
  EXPECT_EQ(parse_error(in), "pair.json: /nodes: must be >= 1");
  in = two_node_platform();
  in["inter_node"]["topology"] = "ring";
  EXPECT_EQ(parse_error(in), "pair.json: /inter_node/topology: unknown topology \"ring\" (expected star, fat-tree or torus)");
  in = two_node_platform();
  in["node"]["link"].erase("bandwidth_bytes_per_s");
  EXPECT_EQ(parse_error(in),
            "pair.json: /node/link: needs \"sheet\" or both \"latency_s\" and \"bandwidth_bytes_per_s\"");
  in = two_node_platform();
  in["node"]["link"]["bandwidth_bytes_per_s"] = -3;
  EXPECT_EQ(parse_error(in), "pair.json: /node/link/bandwidth_bytes_per_s: must be > 0");
  in = two_node_platform();
  in["format"] = "plait.program";
  EXPECT_EQ(parse_error(in), "pair.json: /format: expected \"plait.platform\"");
  in = two_node_platform();
  in["placement"] = json::array({0, 3, 3});
  EXPECT_EQ(parse_error(in), "pair.json: /placement/2: device placed twice");
  in = two_node_platform();
  in["inter_node"] = {{"topology", "torus"}, {"link", {{"latency_s", 1e-6}, {"bandwidth_bytes_per_s", 1e9}}},
                      {"dimensions", {3}}};
  EXPECT_EQ(parse_error(in), "pair.json: /inter_node/dimensions: the torus has 3 places but the platform has 2 nodes");
  in = two_node_platform();
  in["inter_node"]["collectives"] = "tree";
  EXPECT_EQ(parse_error(in), "pair.json: /inter_node/collectives: unknown \"tree\" (hierarchical or messages)");
  in = two_node_platform();
  in["inter_node"]["collective_overhead_s"] = -1e-6;
  EXPECT_EQ(parse_error(in), "pair.json: /inter_node/collective_overhead_s: must be >= 0");
  in = two_node_platform();
  in["inter_node"] = {{"topology", "torus"}, {"link", {{"latency_s", 1e-6}, {"bandwidth_bytes_per_s", 1e9}}},
                      {"dimensions", {2}}, {"collectives", "hierarchical"}};
  EXPECT_EQ(parse_error(in), "pair.json: /inter_node/collectives: hierarchical needs a star (its link is a node's NICs)");
  in = two_node_platform();
  in["node"]["link"] = {{"sheet", "no-such-link"}};
  EXPECT_NE(parse_error(in).find("pair.json: /node/link/sheet: "), std::string::npos) << parse_error(in);
}

TEST(Platform, AFittedPlatformIsItsBaseWithTheFittedInterNodeLinks) {
  json in = two_node_platform();
  in["inter_node"]["collectives"] = "hierarchical";
  in["inter_node"]["collective_overhead_s"] = 7e-6;
  const PlatformSpec read = parse_platform(in, "pair.json");
  EXPECT_TRUE(read.inter_node.hierarchical_collectives);
  EXPECT_DOUBLE_EQ(read.inter_node.collective_overhead_s, 7e-6);
  EXPECT_FALSE(parse_platform(two_node_platform(), "pair.json").inter_node.hierarchical_collectives);

  const auto path = std::filesystem::temp_directory_path() / "plait-pair-platform.json";
  std::ofstream(path) << two_node_platform().dump();
  const costmodels::InterNodeLinks fitted{.node_bytes_per_s = 3e10, .latency_s = 9e-6, .collective_overhead_s = 2e-5};
  const PlatformSpec spec = parse_platform_text(fitted_platform_text(path.string(), fitted, "pair-fitted", "fitted"), "x");
  EXPECT_EQ(spec.name, "pair-fitted");
  EXPECT_DOUBLE_EQ(spec.inter_node.link.bandwidth_bytes_per_s, 3e10);
  EXPECT_DOUBLE_EQ(spec.inter_node.link.latency_s, 9e-6);
  EXPECT_DOUBLE_EQ(spec.inter_node.collective_overhead_s, 2e-5);
  EXPECT_TRUE(spec.inter_node.hierarchical_collectives);
  EXPECT_EQ(spec.device_count(), 4);
  EXPECT_DOUBLE_EQ(spec.intra_node.bandwidth_bytes_per_s, 4e11);  // the node unchanged
  std::ofstream(path) << json::parse(R"({"format": "plait.platform", "version": 1, "nodes": 1,
    "node": {"devices": 2, "device": {"sheet": "h100-sxm"}, "link": {"sheet": "nvlink4"}}})").dump();
  EXPECT_THROW(fitted_platform_text(path.string(), fitted, "one", "one node"), Error);
  std::filesystem::remove(path);
}

TEST(Platform, BadFilesNameTheFile) {
  const auto path = std::filesystem::temp_directory_path() / "plait-bad-platform.json";
  std::ofstream(path) << "{\"format\": \"plait.platform\", ";
  try {
    load_platform(path.string());
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.where(), path.string());
    EXPECT_NE(error.why().find("not valid JSON"), std::string::npos) << error.why();
  }
  std::filesystem::remove(path);
}

TEST(Platform, ShippedPlatformsLoadAndResolveTheirSheets) {
  const auto names = shipped_platform_names();
  for (const std::string expected : {"local", "h100x32", "a100x16"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  for (const std::string& name : names) {
    const PlatformSpec spec = load_platform(find_platform(name));
    EXPECT_GT(spec.device_count(), 0) << name;
    EXPECT_GT(spec.intra_node.bandwidth_bytes_per_s, 0) << name;
    if (spec.nodes > 1) {
      EXPECT_GT(spec.inter_node.link.bandwidth_bytes_per_s, 0) << name;
    }
  }
  EXPECT_EQ(load_platform(find_platform("h100x32")).device_count(), 32);
  EXPECT_EQ(load_platform(find_platform("local")).device_count(), 2);
}

TEST(Platform, OnlyStarPlatformsResize) {
  const PlatformSpec star = parse_platform(two_node_platform(), "pair.json");
  EXPECT_EQ(with_nodes(star, 64).device_count(), 128);
  PlatformSpec torus = star;
  torus.inter_node.topology = Topology::torus;
  EXPECT_THROW(with_nodes(torus, 4), Error);
}

TEST(Platform, ClustersGrowToHoldAProgramAndNothingElseChanges) {
  const PlatformSpec cluster = load_platform(find_platform("a100-cluster"));  // 16 nodes of 8
  EXPECT_EQ(grown_to_hold(cluster, 256).nodes, 32);
  EXPECT_EQ(grown_to_hold(cluster, 257).nodes, 33);
  EXPECT_EQ(grown_to_hold(cluster, 16).nodes, cluster.nodes);  // never shrinks
  // One node stays one node: a Program too big for it is refused by name.
  EXPECT_EQ(grown_to_hold(load_platform(find_platform("a100-node")), 64).nodes, 1);
  EXPECT_EQ(grown_to_hold(load_platform(find_platform("h100x1024-fattree")), 4096).nodes, 128);
}

// One message from node 0 to node `to_node` of a single-device-per-node platform.
double message_time(const PlatformSpec& spec, int to_node, std::int64_t bytes) {
  std::vector<std::vector<schedule::Op>> ops(static_cast<std::size_t>(spec.nodes));
  ops[0] = {message_op(OpKind::send, to_node, bytes, 0)};
  ops[static_cast<std::size_t>(to_node)] = {message_op(OpKind::recv, 0, bytes, 0)};
  return simulate(program_of(ops, 1), spec, constant_pricers({})).predicted_time_s;
}

TEST(Platform, FatTreeRoutesLeafToSwitchToLeaf) {
  PlatformSpec spec = cluster(4, 1, link(1e-6, 1e12), link(2e-6, 1e10), Topology::fat_tree);
  spec.inter_node.fat_tree_down = {4};
  spec.inter_node.fat_tree_up = {1};
  spec.inter_node.fat_tree_link_count = {1};
  const std::int64_t bytes = 10'000'000;
  const double expected = 1e-6 + 2 * 2e-6 + bytes / 1e10;  // two hops through the switch
  EXPECT_NEAR(message_time(spec, 3, bytes), expected, expected * 1e-9);
}

TEST(Platform, TorusMessagesCrossOneLinkPerHop) {
  PlatformSpec spec = cluster(4, 1, link(1e-6, 1e12), link(2e-6, 1e10), Topology::torus);
  spec.inter_node.torus_dimensions = {4};
  const std::int64_t bytes = 10'000'000;
  const double expected = 1e-6 + 2 * 2e-6 + bytes / 1e10;  // node 0 to node 2: two hops round the ring
  EXPECT_NEAR(message_time(spec, 2, bytes), expected, expected * 1e-9);
}

TEST(Platform, SimGridXmlPlatformsRunToo) {
  const auto path = std::filesystem::temp_directory_path() / "plait-two-hosts.xml";
  std::ofstream(path) << R"(<?xml version='1.0'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<platform version="4.1">
  <zone id="world" routing="Full">
    <host id="a" speed="1Gf"><prop id="plait_device" value="test-device"/></host>
    <host id="b" speed="1Gf"><prop id="plait_device" value="test-device"/></host>
    <link id="wire" bandwidth="1GBps" latency="10us"/>
    <route src="a" dst="b"><link_ctn id="wire"/></route>
  </zone>
</platform>
)";
  const std::int64_t bytes = 2'000'000;
  const auto program = program_of({{message_op(OpKind::send, 1, bytes, 0)},
                                   {message_op(OpKind::recv, 0, bytes, 0)}}, 1);
  const Prediction prediction = simulate(program, load_platform(path.string()), constant_pricers({}));
  const double expected = 10e-6 + bytes / 1e9;
  EXPECT_NEAR(prediction.predicted_time_s, expected, expected * 1e-9);
  EXPECT_EQ(prediction.rank_reports[1].host, "b");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace plait::simulator
