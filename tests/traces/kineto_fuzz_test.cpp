// Kineto files: 10,000 mutated and truncated traces each import or give one
// located plait::Error (see tests/support/loader_fuzz.hpp), through reading and
// linking (steps, collectives, clocks, dependencies).
#include <gtest/gtest.h>

#include "detail/kineto.hpp"
#include "error_text.hpp"
#include "loader_fuzz.hpp"
#include "plait/schedule/error.hpp"

namespace plait::traces {
namespace {

// A newer-layout GPU rank: a step, a launch and its kernel, an NCCL kernel
// with its arguments, a memcpy and a synchronize.
const char* const gpu_rank = R"json({"schemaVersion": 1, "baseTimeNanoseconds": 1700000000000000000,
 "distributedInfo": {"backend": "nccl", "rank": 1, "world_size": 2},
 "traceEvents": [
  {"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#4", "pid": 7, "tid": 7, "ts": 100.5, "dur": 900.25},
  {"ph": "X", "cat": "cpu_op", "name": "record_param_comms", "pid": 7, "tid": 7, "ts": 150, "dur": 40,
   "args": {"Collective name": "allreduce", "In msg nelems": 1024, "Out msg nelems": 1024, "dtype": "Float",
            "Process Group Name": "0"}},
  {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 7, "tid": 7, "ts": 120, "dur": 5,
   "args": {"correlation": 11}},
  {"ph": "X", "cat": "kernel", "name": "void gemm(float*)", "pid": 0, "tid": 7, "ts": 130, "dur": 200,
   "args": {"correlation": 11, "stream": 7}},
  {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 7, "tid": 7, "ts": 160, "dur": 5,
   "args": {"correlation": 12}},
  {"ph": "X", "cat": "kernel", "name": "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevComm*)", "pid": 0,
   "tid": 20, "ts": 340, "dur": 300, "args": {"correlation": 12}},
  {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy DtoH", "pid": 0, "tid": 7, "ts": 650, "dur": 20},
  {"ph": "X", "cat": "cuda_runtime", "name": "cudaStreamSynchronize", "pid": 7, "tid": 7, "ts": 200, "dur": 471},
  {"ph": "i", "name": "marker", "ts": 10}
 ]})json";

// An older CPU-only gloo rank: outermost ops, a c10d op and the gloo op it hands over.
const char* const cpu_rank = R"json([
  {"name": "ProfilerStep#2", "ph": "X", "ts": 10, "dur": 500, "tid": 1, "pid": "CPU functions"},
  {"name": "aten::mm", "ph": "X", "ts": 20, "dur": 100, "tid": 1, "pid": "CPU functions"},
  {"name": "aten::empty", "ph": "X", "ts": 30, "dur": 5, "tid": 1, "pid": "CPU functions"},
  {"name": "c10d::allreduce_", "ph": "X", "ts": 130, "dur": 10, "tid": 1, "pid": "CPU functions"},
  {"name": "gloo:all_reduce", "ph": "X", "ts": 135, "dur": 200, "tid": 2, "pid": "CPU functions"},
  {"name": "aten::add_", "ph": "X", "ts": 340, "dur": 50, "tid": 1, "pid": "CPU functions"}
])json";

void import_text(const std::string& text, const std::string& origin) {
  ImportNotes notes;
  std::vector<detail::KinetoRank> ranks;
  ranks.push_back(detail::parse_kineto(text, origin));
  detail::link_kineto(std::move(ranks), {}, notes);
}

TEST(KinetoFuzz, GpuRankMutationsImportOrGiveOneLocatedError) {
  import_text(gpu_rank, "rank-1.json");  // the seed itself imports
  const auto summary = testing::fuzz_loader(gpu_rank, "rank-1.json", 10000,
                                            [](const std::string& text) { import_text(text, "rank-1.json"); });
  EXPECT_GT(summary.refused, 1000);
}

TEST(KinetoFuzz, CpuRankMutationsImportOrGiveOneLocatedError) {
  import_text(cpu_rank, "rank-0.json");
  const auto summary = testing::fuzz_loader(cpu_rank, "rank-0.json", 10000,
                                            [](const std::string& text) { import_text(text, "rank-0.json"); });
  EXPECT_GT(summary.refused, 1000);
}

}  // namespace
}  // namespace plait::traces
