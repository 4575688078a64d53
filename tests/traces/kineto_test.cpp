// Kineto import on real traces: a 2-rank gloo job recorded here (with its own
// step timing), HTA's samples (sampled ranks of a 128-rank job; a newer-layout
// rank with collective arguments); and the errors a user meets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "error_text.hpp"
#include "plait/schedule/files.hpp"
#include "plait/traces/import.hpp"

namespace plait::traces {
namespace {

const std::string gloo = std::string(PLAIT_TRACE_DATA) + "/gloo/";
const std::string hta = std::string(PLAIT_SHARED_DATA) + "/traces/hta/";

std::map<std::string, int> kinds_of(const Trace& trace, int rank) {
  std::map<std::string, int> kinds;
  for (const Event& e : trace.events) {
    if (e.rank == rank) kinds[e.kind] += 1;
  }
  return kinds;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

TEST(KinetoImport, GlooJobRanksStepsAndMatchedCollectives) {
  ImportNotes notes;
  const Trace trace = import_kineto({gloo + "rank-0.json", gloo + "rank-1.json"}, {}, notes);
  EXPECT_EQ(trace.ranks, 2);  // from the file names: torch 1.13 writes no distributedInfo
  for (int rank : {0, 1}) {
    const auto kinds = kinds_of(trace, rank);
    EXPECT_EQ(kinds.at("step"), 3);
    EXPECT_EQ(kinds.at("collective"), 27);  // 8 gradients x 3 steps all-reduced, a barrier a step
    EXPECT_EQ(kinds.at("host"), 27);        // the c10d ops that hand them to gloo's threads
    EXPECT_GT(kinds.at("compute"), 100);
  }
  EXPECT_EQ(notes.matched_collectives, 27);
  EXPECT_EQ(notes.unmatched_collectives, 0);
  // Each rank's clock starts with its own profiler: aligned on the collectives,
  // whose members then end together while their starts spread.
  EXPECT_NE(notes.clock_offsets_s.at(1), 0);
  std::map<std::int64_t, std::vector<const Event*>> instances;
  for (const Event& e : trace.events) {
    if (e.collective >= 0) instances[e.collective].push_back(&e);
  }
  std::vector<double> end_spread, start_spread;
  for (const auto& [id, members] : instances) {
    ASSERT_EQ(members.size(), 2u);
    EXPECT_EQ(members[0]->cost_key, members[1]->cost_key);
    end_spread.push_back(std::abs(members[0]->end - members[1]->end));
    start_spread.push_back(std::abs(members[0]->start - members[1]->start));
  }
  EXPECT_LT(median(end_spread), 100e-6);
  EXPECT_LT(median(end_spread), median(start_spread) / 2);
  // Dependencies: every collective after the c10d op that handed it over.
  for (const Event& e : trace.events) {
    if (e.kind != "collective") continue;
    ASSERT_EQ(e.deps.size(), 1u);
    EXPECT_EQ(trace.events[static_cast<std::size_t>(e.deps[0])].cost_key.rfind("c10d::", 0), 0u);
  }
}

TEST(KinetoImport, OneStepOnly) {
  const Trace trace = import_kineto({gloo + "rank-0.json", gloo + "rank-1.json"}, {.step = 2});
  std::set<int> steps;
  for (const Event& e : trace.events) steps.insert(e.repetition);
  EXPECT_EQ(steps, std::set<int>{2});
  EXPECT_EQ(kinds_of(trace, 0).at("collective"), 9);
}

TEST(KinetoImport, SampledRanksOfA128RankJob) {
  const Trace trace = import_kineto({hta + "trace_filter/sampled_rank-0.json.gz", hta + "trace_filter/sampled_rank-1.json.gz"});
  EXPECT_EQ(trace.ranks, 128);  // distributedInfo's world size; two of them recorded
  std::set<int> ranks, steps;
  int nccl = 0, kernels = 0, memory = 0;
  for (const Event& e : trace.events) {
    ranks.insert(e.rank);
    if (e.kind == "step") steps.insert(e.repetition);
    if (e.kind == "collective") ++nccl;
    if (e.kind == "compute") ++kernels;
    if (e.kind == "memory") ++memory;
  }
  EXPECT_EQ(ranks, (std::set<int>{0, 1}));
  EXPECT_EQ(steps, (std::set<int>{551, 552}));
  EXPECT_EQ(nccl, 20);
  EXPECT_EQ(kernels, 2238);
  EXPECT_EQ(memory, 100);
}

TEST(KinetoImport, NewerLayoutCarriesCollectiveBytesAndGroup) {
  ImportNotes notes;
  const Trace trace = import_kineto({hta + "nccl_parser_config/nccl_data.json.gz"}, {}, notes);
  EXPECT_EQ(trace.ranks, 2);
  std::vector<const Event*> collectives;
  int waits = 0;
  for (const Event& e : trace.events) {
    if (e.kind == "collective") collectives.push_back(&e);
    if (e.kind == "wait") waits += 1;
  }
  ASSERT_EQ(collectives.size(), 21u);
  EXPECT_EQ(notes.unmatched_collectives, 21);  // its partner rank was not published
  std::set<std::int64_t> bytes;
  std::map<std::string, int> names;
  int waited_for_another_stream = 0;
  for (const Event* e : collectives) {
    EXPECT_EQ(e->group, "0");
    ASSERT_GE(e->deps.size(), 1u);
    bool launched = false;
    for (std::int64_t dep : e->deps) {
      const Event& before = trace.events[static_cast<std::size_t>(dep)];
      launched |= before.kind == "host" && before.cost_key.rfind("cudaLaunchKernel", 0) == 0;
      if (before.kind == "compute") {  // a compute stream's kernel it started right after
        ++waited_for_another_stream;
        EXPECT_NE(before.track, e->track);
        EXPECT_NEAR(before.end, e->start, 5e-6);
      }
    }
    EXPECT_TRUE(launched);
    names[e->cost_key] += 1;
    bytes.insert(e->bytes);
  }
  EXPECT_GT(waited_for_another_stream, 0);
  EXPECT_EQ(names, (std::map<std::string, int>{{"ncclKernel_AllReduce_RING_LL_Sum_float", 15},
                                               {"ncclKernel_Broadcast_RING_LL_Sum_int8_t", 6}}));
  EXPECT_TRUE(bytes.count(std::int64_t{6637568} * 4));  // In msg nelems x Float
  EXPECT_EQ(waits, 24);
  for (const Event& e : trace.events) {
    if (e.kind == "wait") {
      EXPECT_LE(e.deps.size(), 1u);  // the device work it waited for
    }
  }
}

std::string write(const std::string& name, const std::string& text) {
  const auto path = (std::filesystem::temp_directory_path() / name).string();
  write_text_file(path, text);
  return path;
}

std::string import_error(const std::vector<std::string>& paths, KinetoImportOptions options = {}) {
  return testing::error_of([&] { import_kineto(paths, options); });
}

TEST(KinetoImport, ErrorsNameTheFileAndWhatIsWrong) {
  const std::string not_json = write("kineto-rank-0.json", "{\"traceEvents\": [");
  EXPECT_EQ(import_error({not_json}).rfind(not_json + ": not valid JSON", 0), 0u) << import_error({not_json});
  const std::string schema = write("kineto-rank-1.json", "{\"events\": []}");
  EXPECT_EQ(import_error({schema}), schema + ": not a PyTorch profiler trace: no traceEvents array");
  const std::string rankless = write("kineto-trace.json", "[]");
  EXPECT_EQ(import_error({rankless}),
            rankless + ": no rank: neither distributedInfo.rank in the file nor a number in its name");
  const std::string bad_event =
      write("kineto-rank-2.json", R"({"traceEvents": [{"ph": "X", "name": "k", "cat": "kernel", "ts": 1, "dur": -3}]})");
  EXPECT_EQ(import_error({bad_event}), bad_event + ": /traceEvents/0/dur: negative duration");
  // A gzipped file cut short.
  const std::string whole = read_text_file(hta + "trace_filter/sampled_rank-0.json.gz");
  const std::string cut = write("kineto-rank-3.json.gz", whole.substr(0, whole.size() / 2));
  EXPECT_EQ(import_error({cut}), cut + ": truncated gzip data");
  EXPECT_EQ(import_error({gloo + "rank-0.json", gloo + "rank-0.json"}),
            gloo + "rank-0.json: rank 0 again: " + gloo + "rank-0.json is rank 0 too");
  EXPECT_EQ(import_error({gloo + "rank-0.json"}, {.step = 9}), gloo + "rank-0.json: no ProfilerStep#9 (steps: 1, 2, 3)");
}

}  // namespace
}  // namespace plait::traces
