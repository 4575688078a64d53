// Chakra execution traces: the real samples in data/chakra (see its README),
// small files written here field by field, and the errors a user reads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <unistd.h>
#include <string>
#include <vector>

#include "detail/compressed_file.hpp"  // the gzipped sample's bytes
#include "error_text.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/traces/chakra.hpp"
#include "plait/traces/trace.hpp"

namespace plait::traces {
namespace {

const std::string data = std::string(PLAIT_TRACE_DATA) + "/chakra/";

std::vector<std::string> all_reduce_files() {
  std::vector<std::string> paths;
  for (int rank = 0; rank < 8; ++rank) paths.push_back(data + "all_reduce." + std::to_string(rank) + ".et");
  return paths;
}

// The protobuf wire format, written by hand: the reader must agree with it.
std::string varint(std::uint64_t value) {
  std::string out;
  for (; value >= 0x80; value >>= 7) out += static_cast<char>(value | 0x80);
  return out + static_cast<char>(value);
}
std::string int_field(int number, std::uint64_t value) { return varint(number << 3) + varint(value); }
std::string bytes_field(int number, const std::string& bytes) {
  return varint(number << 3 | 2) + varint(bytes.size()) + bytes;
}
std::string message(const std::string& body) { return varint(body.size()) + body; }
std::string int_attr(const std::string& name, std::int64_t value) {
  return bytes_field(10, bytes_field(1, name) + int_field(9, static_cast<std::uint64_t>(value)));
}
std::string string_attr(const std::string& name, const std::string& value) {
  return bytes_field(10, bytes_field(1, name) + bytes_field(29, value));
}
std::string metadata() { return message(bytes_field(1, "0.0.4")); }
std::string bool_attr(const std::string& name, bool value) {
  return bytes_field(10, bytes_field(1, name) + int_field(27, value));  // bool_val
}
// is_cpu_op is true when absent, as in Chakra's feeder.
const std::string on_gpu = bool_attr("is_cpu_op", false);

enum Type { metadata_node = 1, mem_load = 2, mem_store = 3, comp = 4, send = 5, recv = 6, coll = 7 };

// A Node; data deps packed (one run) unless `unpacked`.
std::string node(std::uint64_t id, Type type, const std::string& name, const std::vector<std::uint64_t>& deps = {},
                 std::uint64_t duration_us = 0, const std::string& attrs = "", bool unpacked = false) {
  std::string body = int_field(1, id) + bytes_field(2, name) + int_field(3, type);
  std::string packed;
  for (const auto dep : deps) (unpacked ? body : packed) += unpacked ? int_field(5, dep) : varint(dep);
  if (!packed.empty()) body += bytes_field(5, packed);
  if (duration_us) body += int_field(7, duration_us);
  return message(body + attrs);
}

Trace parse(const std::string& bytes, int rank = 0) { return parse_chakra(bytes, rank, "s.0.et"); }
std::string error_of(const std::string& bytes) {
  return plait::testing::error_of([&] { parse(bytes); });
}

std::map<std::string, int> kinds_of(const Trace& trace) {
  std::map<std::string, int> kinds;
  for (const Event& event : trace.events) ++kinds[event.kind];
  return kinds;
}

// Deps in range, ascending, without repeats, and all earlier in the file:
// each event's dependencies are emitted before it.
void expect_topological(const Trace& trace) {
  for (std::size_t i = 0; i < trace.events.size(); ++i) {
    const auto& deps = trace.events[i].deps;
    EXPECT_TRUE(std::is_sorted(deps.begin(), deps.end())) << "event " << i;
    EXPECT_EQ(std::adjacent_find(deps.begin(), deps.end()), deps.end()) << "event " << i;
    for (const std::int64_t dep : deps) {
      EXPECT_GE(dep, 0) << "event " << i;
      EXPECT_LT(dep, static_cast<std::int64_t>(i)) << "event " << i;
      if (dep >= 0 && dep < static_cast<std::int64_t>(i)) {
        EXPECT_EQ(trace.events[dep].rank, trace.events[i].rank);
      }
    }
  }
}

TEST(Chakra, AstraSimAllReduceIsOneCollectiveOnEightRanks) {
  const Trace trace = read_chakra(all_reduce_files());
  EXPECT_EQ(trace.source, "chakra");
  EXPECT_EQ(trace.ranks, 8);
  ASSERT_EQ(trace.events.size(), 8u);
  for (int rank = 0; rank < 8; ++rank) {
    const Event& event = trace.events[rank];
    EXPECT_EQ(event.rank, rank);
    EXPECT_EQ(event.kind, "collective");
    EXPECT_EQ(event.track, "gpu 0 comm");  // is_cpu_op false in these files
    EXPECT_EQ(event.cost_key, "all_reduce_8npus_1MB");
    EXPECT_EQ(event.bytes, 1048576);
    EXPECT_EQ(event.collective, 0);  // one instance on every rank
    EXPECT_EQ(event.group, "");
    EXPECT_EQ(event.op, 0);
    EXPECT_EQ(event.peer, -1);
    EXPECT_EQ(event.start, 0.0);
    EXPECT_EQ(event.end, 0.0);  // the generator gives no duration
    EXPECT_TRUE(event.deps.empty());
  }
  // The files' order does not matter: ranks come from their names.
  auto shuffled = all_reduce_files();
  std::reverse(shuffled.begin(), shuffled.end());
  EXPECT_EQ(read_chakra(shuffled), trace);
  // Written and read back as a plait trace.
  EXPECT_EQ(parse_trace(dump_trace(trace)), trace);
}

TEST(Chakra, FeederTestTraceOfPyTorchDdp) {
  const Trace trace = read_chakra({data + "chakra.0.et.gz"});  // gzipped: a .et.gz gives its rank too
  EXPECT_EQ(trace.ranks, 1);
  ASSERT_EQ(trace.events.size(), 3664u);
  // 2,434 CPU COMP_NODEs and 14 CPU COMM_COLL_NODEs (the c10d ops) are host ops;
  // 1,209 GPU kernels and memcpys are compute, 7 NCCL kernels collectives.
  EXPECT_EQ(kinds_of(trace), (std::map<std::string, int>{{"collective", 7}, {"compute", 1209}, {"host", 2448}}));
  expect_topological(trace);

  std::int64_t deps = 0, comm_bytes = 0, sized_collectives = 0;
  double busy_s = 0;
  std::map<std::string, int> ops_on_track, names;
  std::vector<std::int64_t> instances;
  for (const Event& event : trace.events) {
    deps += static_cast<std::int64_t>(event.deps.size());
    busy_s += event.end;
    EXPECT_EQ(event.op, ops_on_track[event.track]++);
    ++names[event.cost_key];
    if (event.kind == "collective") {
      EXPECT_EQ(event.track, "gpu 0 comm");
      EXPECT_EQ(event.cost_key.rfind("ncclKernel_", 0), 0u) << event.cost_key;
      EXPECT_EQ(event.cost_key.find('('), std::string::npos) << "a kernel is named without its arguments";
      instances.push_back(event.collective);
      comm_bytes += event.bytes;
      sized_collectives += event.bytes > 0;
    } else {
      EXPECT_EQ(event.track, event.kind == "host" ? "cpu" : "gpu 0 compute") << event.kind;
      EXPECT_EQ(event.bytes, 0);
      EXPECT_EQ(event.collective, -1);
    }
    if (event.cost_key.starts_with("c10d::")) {
      EXPECT_EQ(event.kind, "host") << event.cost_key;
    }
  }
  EXPECT_EQ(deps, 181878);  // data_deps; none repeated in this file
  EXPECT_NEAR(busy_s, 0.381795, 1e-9);
  EXPECT_EQ(ops_on_track, (std::map<std::string, int>{{"cpu", 2448}, {"gpu 0 comm", 7}, {"gpu 0 compute", 1209}}));
  EXPECT_EQ(names["aten::copy_(0)"], 320);
  EXPECT_EQ(names["Memcpy DtoD (Device -> Device)"], 320);
  EXPECT_EQ(names["c10d::allreduce_(0)"], 5);
  EXPECT_EQ(names["c10d::allreduce_(1)"], 5);
  EXPECT_EQ(names["c10d::broadcast_(0)"] + names["c10d::broadcast_(1)"], 4);
  // 2 broadcast and 5 all-reduce NCCL kernels, each with its comm_size.
  EXPECT_EQ(sized_collectives, 7);
  EXPECT_EQ(comm_bytes, 212480 + 424 + 8196000 + 31502336 + 26255360 + 26550272 + 9724160);
  EXPECT_EQ(instances, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6}));  // one rank: each its own instance
  EXPECT_EQ(parse_trace(dump_trace(trace)), trace);
}

TEST(Chakra, PackedAndUnpackedDepsAndTopologicalOrder) {
  // In file order 1, 2, 3, 4, but 2 needs 4 (unpacked, twice), 3 needs 1 and 2
  // (packed): emitted 1, 4, 2, 3; ready nodes by ascending id.
  const std::string bytes = metadata() + node(1, comp, "a", {}, 5, on_gpu) +
                            node(2, comp, "b", {4, 4}, 0, on_gpu, true) + node(3, comp, "c", {1, 2}, 0, on_gpu) +
                            node(4, metadata_node, "d", {}, 0, on_gpu);
  const Trace trace = parse(bytes, 2);
  EXPECT_EQ(trace.ranks, 3);
  ASSERT_EQ(trace.events.size(), 4u);
  std::vector<std::string> keys;
  for (const Event& event : trace.events) keys.push_back(event.cost_key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "d", "b", "c"}));
  EXPECT_EQ(trace.events[0].end, 5e-6);
  EXPECT_EQ(trace.events[1].kind, "host");  // a GPU metadata node is no device work
  EXPECT_EQ(trace.events[1].track, "cpu");
  EXPECT_EQ(trace.events[0].track, "gpu 0 compute");
  EXPECT_EQ(trace.events[2].deps, (std::vector<std::int64_t>{1}));  // the repeat removed
  EXPECT_EQ(trace.events[3].deps, (std::vector<std::int64_t>{0, 2}));
  EXPECT_EQ(trace.events[2].op, 1);  // second on the compute track
  EXPECT_EQ(trace.events[1].op, 0);  // first on the cpu track
  for (const Event& event : trace.events) EXPECT_EQ(event.rank, 2);
  expect_topological(trace);
}

TEST(Chakra, CtrlDepsAreReadButNotFollowed) {
  // As in PyTorch-converted traces: ctrl_deps on itself and on a node not in the file.
  const std::string self_and_absent = int_field(4, 1) + bytes_field(4, varint(3) + varint(1));
  const Trace trace = parse(metadata() + node(1, comp, "a", {}, 0, self_and_absent));
  ASSERT_EQ(trace.events.size(), 1u);
  EXPECT_TRUE(trace.events[0].deps.empty());
  EXPECT_EQ(error_of(metadata() + node(1, comp, "a", {}, 0, bytes_field(4, "\xff"))),
            "s.0.et: node #0 (byte 18): truncated varint");
}

TEST(Chakra, MessagesMemoryAndAttributes) {
  const std::string old_gpu = int_attr("is_cpu_op", 0);  // older converters: an integer
  const std::string bytes =
      metadata() + node(1, send, "s", {}, 10, int_attr("comm_size", 64) + int_attr("comm_dst", 3) + on_gpu) +
      node(2, recv, "r", {}, 0,
           int_attr("comm_size", 64) + int_attr("comm_src", 1) + string_attr("pg_name", "7") + old_gpu) +
      node(3, coll, "", {}, 0, int_attr("comm_type", 7) + int_attr("comm_size", 1 << 20) + on_gpu) +
      node(4, mem_load, "load", {}, 0, on_gpu) + node(5, mem_store, "store", {}, 0, on_gpu) +
      node(6, comp, "mm", {}, 0, int_attr("comm_size", 9) + on_gpu) +
      // CPU nodes, whatever their type, are host ops without a message.
      node(7, send, "cpu send", {}, 0,
           int_attr("comm_size", 64) + int_attr("comm_dst", 3) + string_attr("pg_name", "7")) +
      node(8, coll, "c10d::allreduce_", {}, 0, int_attr("comm_size", 8) + bool_attr("is_cpu_op", true)) +
      node(9, mem_load, "cpu load", {}, 0, int_attr("is_cpu_op", 1));
  const Trace trace = parse(bytes);
  ASSERT_EQ(trace.events.size(), 9u);
  const Event &out = trace.events[0], &in = trace.events[1], &all = trace.events[2];
  EXPECT_EQ(out.kind, "send");
  EXPECT_EQ(out.peer, 3);
  EXPECT_EQ(out.bytes, 64);
  EXPECT_EQ(out.end, 1e-5);
  EXPECT_EQ(in.kind, "recv");
  EXPECT_EQ(in.peer, 1);
  EXPECT_EQ(in.group, "7");
  EXPECT_EQ(in.op, 1);  // send, recv and collective share the comm track
  EXPECT_EQ(in.track, "gpu 0 comm");
  EXPECT_EQ(all.track, "gpu 0 comm");
  EXPECT_EQ(all.cost_key, "REDUCE_SCATTER");  // no name: the comm_type's
  EXPECT_EQ(all.bytes, 1 << 20);
  EXPECT_EQ(all.collective, 0);
  EXPECT_EQ(out.collective, -1);
  EXPECT_EQ(trace.events[3].kind, "memory");
  EXPECT_EQ(trace.events[4].kind, "memory");
  EXPECT_EQ(trace.events[3].track, "gpu 0 compute");
  EXPECT_EQ(trace.events[5].track, "gpu 0 compute");
  EXPECT_EQ(trace.events[5].op, 2);  // after the two memory nodes
  EXPECT_EQ(trace.events[5].bytes, 0);  // a size on a compute node is not a message
  for (int i = 6; i < 9; ++i) {
    const Event& host = trace.events[i];
    EXPECT_EQ(host.kind, "host") << host.cost_key;
    EXPECT_EQ(host.track, "cpu");
    EXPECT_EQ(host.op, i - 6);
    EXPECT_EQ(host.bytes, 0);
    EXPECT_EQ(host.peer, -1);
    EXPECT_EQ(host.group, "");
    EXPECT_EQ(host.collective, -1);
  }
}

class ChakraFiles : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = directory_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  void SetUp() override {
    directory_ = ::testing::TempDir() + "/chakra_test_" + std::to_string(::getpid());
    std::filesystem::create_directories(directory_);
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }
  std::string directory_;
};

TEST_F(ChakraFiles, CollectivesMatchByGroupAndOrderAcrossRanks) {
  const auto in = [](const std::string& group) { return string_attr("pg_name", group) + on_gpu; };
  // Rank 0 runs A (group x), B (y), C (x); rank 1 runs B, A, C; rank 2 only y's B.
  // The CPU ops that launch them (c10d) are not collectives.
  const std::string zero = metadata() + node(1, coll, "A", {}, 0, in("x")) + node(2, coll, "B", {}, 0, in("y")) +
                           node(3, coll, "C", {}, 0, in("x"));
  const std::string one = metadata() + node(1, coll, "B", {}, 0, in("y")) + node(2, coll, "A", {}, 0, in("x")) +
                          node(3, coll, "C", {}, 0, in("x")) + node(4, coll, "D", {}, 0, on_gpu) +
                          node(5, coll, "c10d", {}, 0, string_attr("pg_name", "x"));
  const std::string two = metadata() + node(7, coll, "B", {}, 0, in("y"));
  const Trace trace = read_chakra({write("m.1.et", one), write("m.0.et", zero), write("m.2.et", two)});
  EXPECT_EQ(trace.ranks, 3);
  std::vector<std::pair<std::string, std::int64_t>> instances;
  for (const Event& event : trace.events) instances.emplace_back(event.cost_key, event.collective);
  EXPECT_EQ(instances, (std::vector<std::pair<std::string, std::int64_t>>{
                           {"A", 0}, {"B", 1}, {"C", 2}, {"B", 1}, {"A", 0}, {"C", 2}, {"D", 3}, {"c10d", -1},
                           {"B", 1}}));
}

TEST_F(ChakraFiles, DepsCountAcrossFiles) {
  const std::string bytes = metadata() + node(1, comp, "a") + node(2, comp, "b", {1});
  const Trace trace = read_chakra({write("d.0.et", bytes), write("d.1.et", bytes)});
  ASSERT_EQ(trace.events.size(), 4u);
  EXPECT_EQ(trace.events[1].deps, (std::vector<std::int64_t>{0}));
  EXPECT_EQ(trace.events[3].deps, (std::vector<std::int64_t>{2}));  // rank 1's first event is 2
  expect_topological(trace);
}

TEST_F(ChakraFiles, FileErrorsNameTheFile) {
  const std::string valid = read_text_file(data + "all_reduce.0.et");
  const std::string expected = ": no rank in the file name (expected {prefix}.{rank}.et or .et.gz)";
  for (const char* name : {"trace.et", "x.0.json", "trace.et.gz", "x.0.gz", "x.0.et.gz.gz"}) {
    const std::string unnamed = write(name, valid);
    EXPECT_EQ(plait::testing::error_of([&] { read_chakra({unnamed}); }), unnamed + expected);
  }
  const auto files = all_reduce_files();
  EXPECT_EQ(plait::testing::error_of([&] { read_chakra({files[0], files[1], files[3], files[6]}); }),
            files[6] + ": ranks go up to 6 but these have no file: 2, 4, 5");
  const std::string again = write("all_reduce.1.et", valid);
  EXPECT_EQ(plait::testing::error_of([&] { read_chakra({files[0], files[1], again}); }),
            again + ": a second file for rank 1 (also " + files[1] + ")");
  const std::string far = write("p.0.et", metadata() + node(1, send, "s", {}, 0, int_attr("comm_dst", 1) + on_gpu));
  EXPECT_EQ(plait::testing::error_of([&] { read_chakra({far}); }),
            far + ": node id 1: its peer 1 is not one of the 1 ranks");
  const std::string absent = directory_ + "/none.0.et";
  EXPECT_EQ(plait::testing::error_of([&] { read_chakra({absent}); }), absent + ": cannot open");
}

TEST_F(ChakraFiles, GzippedFiles) {
  // A .et.gz need not be gzipped, and gzipped files count as their rank.
  const std::string plain = write("all_reduce.2.et.gz", read_text_file(data + "all_reduce.0.et"));
  const std::string gzipped = read_text_file(data + "chakra.0.et.gz");
  const std::string packed = write("all_reduce.0.et.gz", gzipped);
  const Trace trace = read_chakra({plain, packed, data + "all_reduce.1.et"});
  EXPECT_EQ(trace.ranks, 3);
  ASSERT_EQ(trace.events.size(), 3664u + 2);
  EXPECT_EQ(trace.events.back().rank, 2);
  // Cut short: one line naming the file.
  const std::string cut = write("cut.0.et.gz", gzipped.substr(0, gzipped.size() / 2));
  EXPECT_EQ(plait::testing::error_of([&] { read_chakra({cut}); }), cut + ": truncated gzip data");
  const std::string header_only = write("head.0.et.gz", gzipped.substr(0, 10));
  EXPECT_EQ(plait::testing::error_of([&] { read_chakra({header_only}); }), header_only + ": truncated gzip data");
}

TEST(Chakra, BrokenFilesGetOneLocatedLine) {
  const std::string valid = read_text_file(data + "all_reduce.0.et");
  EXPECT_EQ(error_of(""), "s.0.et: empty file (not a Chakra ET)");
  // Cut in the middle of the node (bytes 9..80, its length at byte 8).
  EXPECT_EQ(error_of(valid.substr(0, 40)),
            "s.0.et: node #0 (byte 8): truncated: the message announces 72 bytes, 31 are left");
  // Cut between messages: nothing says more nodes were to come.
  EXPECT_TRUE(parse(valid.substr(0, 8)).events.empty());
  EXPECT_EQ(error_of(valid.substr(0, 5)),
            "s.0.et: GlobalMetadata (byte 0): truncated: the message announces 7 bytes, 4 are left");
  // The feeder trace cut at 1 MB, inside a node.
  const std::string big = detail::read_possibly_gzipped(data + "chakra.0.et.gz");
  ASSERT_EQ(big.size(), 2978371u);
  EXPECT_EQ(error_of(big.substr(0, 96)), "s.0.et: node #0 (byte 95): truncated varint");
  EXPECT_EQ(error_of(big.substr(0, 1000000)),
            "s.0.et: node #1679 (byte 999878): truncated: the message announces 630 bytes, 120 are left");
  // A file of nodes only.
  EXPECT_EQ(error_of(valid.substr(8)), "s.0.et: not a Chakra ET (no GlobalMetadata)");
  EXPECT_EQ(error_of(node(1, comp, "x") + node(2, comp, "y")), "s.0.et: not a Chakra ET (no GlobalMetadata)");
  // Random bytes, many times: one line naming the file, never anything else.
  std::mt19937_64 random(7);
  for (int i = 0; i < 200; ++i) {
    std::string noise(1 + random() % 4000, '\0');
    for (char& byte : noise) byte = static_cast<char>(random());
    const std::string error = error_of(noise);
    EXPECT_EQ(error.rfind("s.0.et: ", 0), 0u) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

TEST(Chakra, BadGraphsAndValues) {
  EXPECT_EQ(error_of(metadata() + node(5, comp, "a", {99})),
            "s.0.et: node id 5: depends on node id 99, which is not in the file");
  EXPECT_EQ(error_of(metadata() + node(1, comp, "a") + node(2, comp, "b", {3}) + node(3, comp, "c", {2})),
            "s.0.et: node id 2: is on a dependency cycle");
  EXPECT_EQ(error_of(metadata() + node(4, comp, "a", {4})), "s.0.et: node id 4: is on a dependency cycle");
  EXPECT_EQ(error_of(metadata() + node(4, comp, "a") + node(4, comp, "b")),
            "s.0.et: node id 4: appears twice (node #0 and #1)");
  EXPECT_EQ(error_of(metadata() + node(1, coll, "a", {}, 0, int_attr("comm_size", -8))),
            "s.0.et: node #0 (byte 29): attribute comm_size: -8 is out of range (0..9223372036854775807)");
  const std::string huge = bytes_field(10, bytes_field(1, "comm_size") + int_field(13, ~0ull));  // uint64_val
  EXPECT_EQ(error_of(metadata() + node(1, coll, "a", {}, 0, huge)),
            "s.0.et: node #0 (byte 29): attribute comm_size: 18446744073709551615 is out of range "
            "(0..9223372036854775807)");
  EXPECT_EQ(error_of(metadata() + node(1, recv, "a", {}, 0, int_attr("comm_src", -1))),
            "s.0.et: node #0 (byte 28): attribute comm_src: -1 is out of range (0..16777215)");
  EXPECT_EQ(error_of(metadata() + node(1, coll, "a", {}, 0, string_attr("comm_size", "big"))),
            "s.0.et: node #0 (byte 29): attribute comm_size: expected an integer (field 29)");
  EXPECT_EQ(error_of(metadata() + node(1, coll, "a", {}, 0, int_attr("pg_name", 3))),
            "s.0.et: node #0 (byte 16): attribute pg_name: expected a string");
  EXPECT_EQ(error_of(metadata() + node(1, comp, "\xc3\x28")), "s.0.et: node #0 (byte 11): name is not valid UTF-8");
  EXPECT_EQ(error_of(metadata() + node(1, comp, "a", {}, 0, string_attr("is_cpu_op", "yes"))),
            "s.0.et: node #0 (byte 29): attribute is_cpu_op: expected an integer (field 29)");
  EXPECT_EQ(error_of(metadata() + node(1, comp, "a", {}, 0, int_attr("is_cpu_op", 2))),
            "s.0.et: node #0 (byte 29): attribute is_cpu_op: 2 is out of range (0..1)");
  EXPECT_EQ(error_of(metadata() + message(bytes_field(1, "x"))),
            "s.0.et: node #0 (byte 9): id (field 1) has wire type 2, expected 0");
  EXPECT_EQ(plait::testing::error_of([] { parse_chakra(metadata(), -1, "s.0.et"); }),
            "s.0.et: rank -1 is out of range");
  // Only the metadata: a rank that ran nothing.
  EXPECT_TRUE(parse(metadata()).events.empty());
}

}  // namespace
}  // namespace plait::traces
