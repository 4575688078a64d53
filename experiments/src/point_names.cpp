// A point's names and labels: its directory name, its kind and freezing as a
// reader sees them, its device count.
#include <string>

#include "plait/experiments/sweep.hpp"
#include "plait/schedule/build.hpp"

namespace plait::experiments {

bool is_pipeline(const PointConfig& config) { return schedule::is_pipeline_kind(config.kind); }

std::string kind_label(const PointConfig& c) {
  if (!is_pipeline(c)) return c.kind;
  return c.kind + " M" + std::to_string(c.micro_batches) + (c.virtual_stages > 1 ? " v" + std::to_string(c.virtual_stages) : "");
}

std::string frozen_label(const PointConfig& c) {
  return c.frozen > 0 ? "F" + std::to_string(c.frozen) + (c.repack ? " repacked" : "") : "";
}

std::int32_t devices(const PointConfig& c) { return c.ranks * c.dp * c.tp; }

int source_line(const PointConfig& c) {
  return c.source.empty() ? -1 : std::stoi(c.source.substr(c.source.find_last_of(':') + 1));
}

std::string point_name(const PointConfig& c) {
  const ModelShape& m = c.model;
  std::string platform = c.platform.substr(c.platform.find_last_of('/') + 1);
  platform = platform.substr(0, platform.find('.'));
  const std::string schedule = is_pipeline(c) ? c.kind + ".M" + std::to_string(c.micro_batches) +
                                                    (c.virtual_stages > 1 ? ".v" + std::to_string(c.virtual_stages) : "") +
                                                    (c.frozen > 0 ? ".F" + std::to_string(c.frozen) + (c.repack ? "r" : "") : "")
                                              : ".L" + std::to_string(c.levels) + ".cf" + std::to_string(c.cf) + "." +
                                                    c.relax + ".it" + std::to_string(c.fwd_iters) + "-" +
                                                    std::to_string(c.bwd_iters);
  const std::string shape = ".P" + std::to_string(c.ranks) + (c.dp > 1 ? "x" + std::to_string(c.dp) : "") + (c.dp_overlap ? "o" : "") + ".d" + std::to_string(m.d_model) + "h" +
                            std::to_string(m.heads) + "s" + std::to_string(m.seq) + "b" + std::to_string(m.batch) +
                            "." + c.mask + "." + platform;
  if (!c.source.empty())  // a row of a CSV: its line names it
    return "line" + std::to_string(source_line(c)) + "." + platform;
  const std::string gpt = (c.tp > 1 ? ".tp" + std::to_string(c.tp) : "") +
                          (c.vocab > 0 ? ".V" + std::to_string(c.vocab) : "") + (c.recompute ? ".rc" : "") +
                          (c.fwd_levels > 0 ? ".fL" + std::to_string(c.fwd_levels) : "") +
                          (c.dp_allreduce == "per-tensor" ? ".pt" : "") + (c.ends == "first-rank" ? ".e0" : "") +
                          (c.buffer_blocks > 0 ? ".B" + std::to_string(c.buffer_blocks) : "") +
                          (c.allreduce != "auto" ? ".ar-" + c.allreduce : "") + (c.selective_recompute ? ".sel" : "") +
                          (c.sequence_parallel ? ".sp" : "") + (c.zero > 0 ? ".z" + std::to_string(c.zero) : "");
  return is_pipeline(c) ? schedule + ".N" + std::to_string(c.layers) + shape + gpt
                        : "N" + std::to_string(c.layers) + schedule + shape + gpt;
}

}  // namespace plait::experiments
