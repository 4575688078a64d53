// What `plait plan` writes: the ranked table, plan.csv (read back by
// parse_plan_csv), --json, and report.md with its plots (gnuplot).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "detail/child_process.hpp"
#include "detail/csv.hpp"
#include "plait/experiments/plan.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::experiments {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> columns = {
    "gpus",        "kind",         "tp",        "pp",         "dp",          "micro_batch", "virtual_stages",
    "recompute",   "levels",       "cf",        "fwd_iters",  "bwd_iters",   "estimated_s", "simulated_s",
    "gradient_sum_s", "memory_bytes", "device_memory_bytes", "grad_error", "grad_error_spread", "refused",
    "zero", "sequence_parallel", "selective_recompute"};
// A plan.csv written before the last three columns: read with them at 0.
constexpr std::size_t columns_before_sharding = 20;

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

std::string percent_text(double fraction) {
  char text[32];
  std::snprintf(text, sizeof text, "%+.1f%%", 100 * fraction);
  return text;
}

// Tokens/s, TFLOP/s a GPU and MFU of a candidate's step.
struct Rates {
  double tokens_per_s, tflops_per_gpu, mfu;
};
Rates rates(const PlanResult& result, const Candidate& c) {
  const double step = c.step_s(), per_gpu = result.model_flops_per_step / step / c.gpus;
  return {result.tokens_per_step / step, per_gpu / 1e12, result.peak_flops > 0 ? per_gpu / result.peak_flops : 0};
}

std::string reason_class(const std::string& refused) { return refused.substr(0, refused.find(':')); }

}  // namespace

std::string plan_csv(const PlanResult& result) {
  std::ostringstream out;
  for (std::size_t i = 0; i < columns.size(); ++i) out << (i ? "," : "") << columns[i];
  out << '\n';
  for (const auto* list : {&result.kept, &result.refused})
    for (const Candidate& c : *list)
      out << c.gpus << ',' << c.kind << ',' << c.tp << ',' << c.pp << ',' << c.dp << ',' << c.micro_batch << ','
          << c.virtual_stages << ',' << (c.recompute ? 1 : 0) << ',' << c.levels << ',' << c.cf << ','
          << c.fwd_iters << ',' << c.bwd_iters << ',' << number(c.estimated_s) << ','
          << (c.simulated_s ? number(*c.simulated_s) : "") << ',' << number(c.gradient_sum_s) << ','
          << c.memory_bytes << ',' << number(c.device_memory_bytes) << ',' << number(c.grad_error) << ','
          << number(c.grad_error_spread) << ',' << detail::quoted_csv_field(c.refused) << ',' << c.zero << ','
          << (c.sequence_parallel ? 1 : 0) << ',' << (c.selective_recompute ? 1 : 0) << '\n';
  return out.str();
}

std::vector<Candidate> parse_plan_csv(const std::string& text, const std::string& origin) {
  std::vector<std::vector<std::string>> rows;
  try {
    rows = detail::split_csv(text, origin);
  } catch (const Error& error) {
    throw Error(origin, error.why());
  }
  const std::vector<std::string> older(columns.begin(), columns.begin() + columns_before_sharding);
  if (rows.empty() || (rows.front() != columns && rows.front() != older))
    throw Error(origin, "line 1: not a plan.csv header (expected " + std::to_string(columns.size()) +
                            " columns: gpus, kind, ...)");
  const std::size_t width = rows.front().size();
  std::vector<Candidate> out;
  for (std::size_t line = 1; line < rows.size(); ++line) {
    const auto& row = rows[line];
    const std::string where = "line " + std::to_string(line + 1);
    if (row.size() != width)
      throw Error(origin, where + ": " + std::to_string(row.size()) + " fields, expected " + std::to_string(width));
    const auto field = [&](std::size_t i, bool optional = false) -> std::optional<double> {
      const auto value = number_of_field(row[i]);
      if (!value && !(optional && row[i].empty()))
        throw Error(origin, where + ", " + columns[i] + ": \"" + row[i] + "\" is not a number");
      return value;
    };
    const auto whole = [&](std::size_t i) {
      const double value = *field(i);
      if (!(value >= 0 && value <= 1e9) || value != std::floor(value))
        throw Error(origin, where + ", " + columns[i] + ": \"" + row[i] + "\" is not a whole number in 0..1e9");
      return int(value);
    };
    Candidate c;
    c.gpus = whole(0), c.kind = row[1], c.tp = whole(2), c.pp = whole(3), c.dp = whole(4);
    c.micro_batch = whole(5), c.virtual_stages = whole(6), c.recompute = whole(7) != 0;
    c.levels = whole(8), c.cf = whole(9), c.fwd_iters = whole(10), c.bwd_iters = whole(11);
    c.estimated_s = *field(12), c.simulated_s = field(13, true), c.gradient_sum_s = *field(14);
    c.memory_bytes = std::int64_t(*field(15)), c.device_memory_bytes = *field(16);
    c.grad_error = *field(17), c.grad_error_spread = *field(18), c.refused = row[19];
    if (width == columns.size()) {
      c.zero = whole(20), c.sequence_parallel = whole(21) != 0, c.selective_recompute = whole(22) != 0;
      if (c.zero > 3) throw Error(origin, where + ", zero: " + row[20] + " is not a ZeRO stage (0-3)");
    }
    out.push_back(c);
  }
  return out;
}

std::string plan_json(const PlanResult& result) {
  const auto candidate_json = [&](const Candidate& c) {
    nlohmann::json out = {{"gpus", c.gpus}, {"kind", c.kind}, {"tp", c.tp}, {"pp", c.pp}, {"dp", c.dp},
                          {"micro_batch", c.micro_batch}, {"virtual_stages", c.virtual_stages},
                          {"recompute", c.recompute}, {"selective_recompute", c.selective_recompute},
                          {"sequence_parallel", c.sequence_parallel}, {"zero", c.zero}, {"estimated_s", c.estimated_s},
                          {"memory_bytes", c.memory_bytes}, {"device_memory_bytes", c.device_memory_bytes},
                          {"grad_error", c.grad_error}};
    if (c.kind == "mgrit")
      out.update({{"levels", c.levels}, {"cf", c.cf}, {"fwd_iters", c.fwd_iters}, {"bwd_iters", c.bwd_iters},
                  {"grad_error_spread", c.grad_error_spread}});
    if (c.simulated_s) out["simulated_s"] = *c.simulated_s;
    if (c.refused.empty()) {
      const Rates r = rates(result, c);
      out.update({{"tokens_per_s", r.tokens_per_s}, {"tflops_per_gpu", r.tflops_per_gpu}, {"mfu", r.mfu}});
    } else {
      out["refused"] = c.refused;
    }
    return out;
  };
  nlohmann::json kept = nlohmann::json::array(), refused = nlohmann::json::array();
  for (const Candidate& c : result.kept) kept.push_back(candidate_json(c));
  for (const Candidate& c : result.refused) refused.push_back(candidate_json(c));
  return nlohmann::json{{"searched", result.searched}, {"seconds", result.seconds},
                        {"host_overhead_s", result.host_overhead_s}, {"kept", kept}, {"refused", refused}}
             .dump(2);
}

std::string plan_table(const PlanResult& result, int rows_per_gpu_count) {
  std::ostringstream out;
  char line[320];
  std::snprintf(line, sizeof line, "%5s  %-40s %10s %10s %6s %11s %8s %5s %10s %9s %9s\n", "gpus", "split",
                "estimate", "simulated", "agree", "tokens/s", "TFLOP/s", "MFU", "memory", "headroom", "grad err");
  out << line;
  std::map<int, int> shown;
  for (const Candidate& c : result.kept) {
    if (shown[c.gpus]++ >= rows_per_gpu_count) continue;
    const Rates r = rates(result, c);
    const std::string simulated = c.simulated_s ? number(*c.simulated_s) + " s" : "-";
    const std::string agree = c.simulated_s ? percent_text(c.estimated_s / *c.simulated_s - 1) : "-";
    const double headroom = c.device_memory_bytes - double(c.memory_bytes);
    std::snprintf(line, sizeof line, "%5d  %-40s %8.4g s %10s %6s %11.4g %8.1f %4.0f%% %10s %9s %9.1e\n", c.gpus,
                  c.label().c_str(), c.estimated_s, simulated.c_str(), agree.c_str(), r.tokens_per_s,
                  r.tflops_per_gpu, 100 * r.mfu, schedule::format_bytes(double(c.memory_bytes)).c_str(),
                  schedule::format_bytes(std::max(0.0, headroom)).c_str(), c.grad_error);
    out << line;
  }
  std::map<std::string, int> reasons;
  for (const Candidate& c : result.refused) ++reasons[reason_class(c.refused)];
  out << result.searched << " candidates in " << number(result.seconds) << " s; " << result.kept.size() << " kept";
  for (const auto& [reason, count] : reasons) out << ", " << count << " refused (" << reason << ")";
  out << "; per-kernel host overhead priced: " << number(result.host_overhead_s * 1e6) << " us\n";
  return out.str();
}

}  // namespace plait::experiments
