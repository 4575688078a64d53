// Kineto import, between reading one file and linking the ranks: each rank's
// kept events on its own clock (microseconds), with what linking needs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "plait/traces/import.hpp"

namespace plait::traces::detail {

struct KinetoEvent {
  std::string name;
  std::string kind;   // compute, collective, memory, send, recv, host, wait, step
  std::string track;  // "stream N", "thread T", "steps"
  double start_us = 0, end_us = 0;
  std::int64_t bytes = 0;
  std::string group;               // collectives: the process group
  std::int64_t correlation = -1;   // kernels and runtime calls: the launch link
  int step = -1;                   // steps: N of ProfilerStep#N
  bool enqueue = false;            // host: a c10d op that hands a collective to a worker
  std::optional<KernelWork> work;  // a kernel's, from the op that launched it
};

struct KinetoRank {
  std::string origin;  // the file
  int rank = 0;
  int world_size = 0;           // distributedInfo's, 0 when absent
  bool absolute_clock = false;  // epoch or baseTimeNanoseconds times: one clock across ranks
  bool has_device = false;      // GPU events: host ops are then launches and waits only
  std::vector<KinetoEvent> events;
};

// Reads one Kineto JSON (.json or .json.gz): the rank from distributedInfo,
// else from the file name (its last number), else an error.
KinetoRank read_kineto_file(const std::string& path);
KinetoRank parse_kineto(const std::string& text, const std::string& origin);

// A framework op's work from its recorded shapes (kineto_work.cpp): GEMMs
// (mm, addmm, bmm, baddbmm) and elementwise ops; none when it has no shapes.
std::optional<KernelWork> op_work(const std::string& name, const nlohmann::json& args);

// The ranks linked into one trace (import_kineto after reading the files).
Trace link_kineto(std::vector<KinetoRank> ranks, const KinetoImportOptions& options, ImportNotes& notes);

}  // namespace plait::traces::detail
