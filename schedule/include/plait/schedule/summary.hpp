// What a Program does, counted: per rank op counts by cost key (repeats
// expanded), messages and bytes, and the critical path in block steps.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "plait/schedule/memory.hpp"
#include "plait/schedule/program.hpp"

namespace plait::schedule {

struct RankSummary {
  std::map<std::string, std::int64_t> ops_by_cost_key;
  std::int64_t messages_sent = 0;
  std::int64_t bytes_sent = 0;
  std::int64_t block_steps = 0;  // forward + adjoint block steps, all levels
  RankMemory memory;             // estimated (memory.hpp)
};

struct ProgramSummary {
  std::vector<RankSummary> ranks;
  double critical_path_steps = 0;
  std::int64_t total_block_steps = 0;
  std::int64_t serial_block_steps = 0;  // 2N: one forward and one adjoint sweep
};

// `optimizer_states_per_parameter`: the optimizer's state in each rank's memory
// (0 none, 1 SGD with momentum, 2 Adam / AdamW), as estimate_memory.
ProgramSummary summarize(const Program& program, int optimizer_states_per_parameter = 0);
std::string format_summary(const Program& program, const ProgramSummary& summary);  // a table
void to_json(nlohmann::json& out, const ProgramSummary& summary);

}  // namespace plait::schedule
