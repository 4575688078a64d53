// Counting a Program (plait inspect).
#include "plait/schedule/summary.hpp"

#include <cstdio>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "plait/schedule/validate.hpp"

namespace plait::schedule {

ProgramSummary summarize(const Program& program, int optimizer_states_per_parameter) {
  ProgramSummary summary;
  for (const auto& rank_program : program.rank_programs) {
    RankSummary rank;
    for (const auto& section : rank_program.sections) {
      for (const auto& op : section.ops) {
        rank.ops_by_cost_key[std::string(cost_key(op))] += section.repeat;
        if (op.kind == OpKind::send) {
          rank.messages_sent += section.repeat;
          rank.bytes_sent += section.repeat * op.bytes;
        }
        if (is_block_step(op.kind)) rank.block_steps += section.repeat;
      }
    }
    summary.total_block_steps += rank.block_steps;
    summary.ranks.push_back(std::move(rank));
  }
  const auto memory = estimate_memory(program, optimizer_states_per_parameter);
  for (std::size_t r = 0; r < summary.ranks.size(); ++r) summary.ranks[r].memory = memory[r];
  summary.critical_path_steps = critical_path_steps(program);
  summary.serial_block_steps = 2 * std::int64_t{program.layers};
  return summary;
}

std::string format_summary(const Program& program, const ProgramSummary& summary) {
  std::set<std::string> keys;
  for (const auto& rank : summary.ranks) {
    for (const auto& [key, count] : rank.ops_by_cost_key) keys.insert(key);
  }
  std::string out;
  char line[256];
  const bool mgrit = program.kind == "mgrit";
  std::snprintf(line, sizeof line, "%s program: %d layers, %d ranks", program.kind.c_str(), program.layers,
                program.ranks);
  out += line;
  if (program.replicas > 1) {
    std::snprintf(line, sizeof line, " (%d replicas of %d)", program.replicas, ranks_per_replica(program));
    out += line;
  }
  if (program.micro_batches > 1) {
    std::snprintf(line, sizeof line, ", %d micro-batches", program.micro_batches);
    out += line;
  }
  if (program.frozen_blocks > 0) {
    std::snprintf(line, sizeof line, ", blocks 0-%d frozen", program.frozen_blocks - 1);
    out += line;
  }
  if (program.zero_stage > 0) {
    std::snprintf(line, sizeof line, ", ZeRO stage %d", program.zero_stage);
    out += line;
  }
  if (program.model.sequence_parallel) out += ", sequence parallel";
  if (program.model.selective_recompute) out += ", selective recompute";
  if (mgrit) {
    std::snprintf(line, sizeof line, ", forward L=%d cf=%d %s x%d, adjoint L=%d cf=%d %s x%d", program.forward.levels,
                  program.forward.coarsening_factor, std::string(to_string(program.forward.relax)).c_str(),
                  program.forward.iterations, program.adjoint.levels, program.adjoint.coarsening_factor,
                  std::string(to_string(program.adjoint.relax)).c_str(), program.adjoint.iterations);
    out += line;
  }
  out += "\n";
  out += "rank";
  for (const auto& key : keys) {
    std::snprintf(line, sizeof line, " %14s", key.c_str());
    out += line;
  }
  out += "       messages          bytes\n";
  for (std::size_t r = 0; r < summary.ranks.size(); ++r) {
    const auto& rank = summary.ranks[r];
    std::snprintf(line, sizeof line, "%4zu", r);
    out += line;
    for (const auto& key : keys) {
      const auto it = rank.ops_by_cost_key.find(key);
      std::snprintf(line, sizeof line, " %14lld", static_cast<long long>(it == rank.ops_by_cost_key.end() ? 0 : it->second));
      out += line;
    }
    std::snprintf(line, sizeof line, " %14lld %14lld\n", static_cast<long long>(rank.messages_sent),
                  static_cast<long long>(rank.bytes_sent));
    out += line;
  }
  // The gathered parameters (ZeRO stage 3) get a column only where some rank holds them.
  bool gathers = false;
  for (const auto& rank : summary.ranks) gathers = gathers || rank.memory.gathered > 0;
  out += "memory (estimate)   parameters    gradients    optimizer       states  kept graphs    recompute     messages";
  out += gathers ? "     gathered        total\n" : "        total\n";
  for (std::size_t r = 0; r < summary.ranks.size(); ++r) {
    const RankMemory& m = summary.ranks[r].memory;
    std::snprintf(line, sizeof line, "rank %-14zu", r);
    out += line;
    std::vector<std::int64_t> columns{m.parameters, m.gradients, m.optimizer, m.states, m.kept_graphs, m.recompute,
                                      m.messages};
    if (gathers) columns.push_back(m.gathered);
    columns.push_back(m.total());
    for (const std::int64_t bytes : columns) {
      std::snprintf(line, sizeof line, " %12s", format_bytes(double(bytes)).c_str());
      out += line;
    }
    out += "\n";
  }
  std::snprintf(line, sizeof line,
                "critical path: %.0f block steps (serial: %lld); total block steps: %lld\n",
                summary.critical_path_steps, static_cast<long long>(summary.serial_block_steps),
                static_cast<long long>(summary.total_block_steps));
  out += line;
  return out;
}

void to_json(nlohmann::json& out, const ProgramSummary& summary) {
  nlohmann::json ranks = nlohmann::json::array();
  for (const auto& rank : summary.ranks) {
    ranks.push_back({{"ops_by_cost_key", rank.ops_by_cost_key},
                     {"messages_sent", rank.messages_sent},
                     {"bytes_sent", rank.bytes_sent},
                     {"block_steps", rank.block_steps},
                     {"memory_bytes", {{"parameters", rank.memory.parameters},
                                       {"gradients", rank.memory.gradients},
                                       {"optimizer", rank.memory.optimizer},
                                       {"states", rank.memory.states},
                                       {"kept_graphs", rank.memory.kept_graphs},
                                       {"recompute", rank.memory.recompute},
                                       {"messages", rank.memory.messages},
                                       {"gathered", rank.memory.gathered},
                                       {"total", rank.memory.total()}}}});
  }
  out = {{"ranks", ranks},
         {"critical_path_steps", summary.critical_path_steps},
         {"total_block_steps", summary.total_block_steps},
         {"serial_block_steps", summary.serial_block_steps}};
}

}  // namespace plait::schedule
