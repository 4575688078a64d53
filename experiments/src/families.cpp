// Families of a sweep's points (detail/families.hpp).
#include "detail/families.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

namespace plait::experiments::detail {

std::string cell(const std::optional<double>& value) {
  if (!value) return "?";
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", *value);
  return text;
}

const std::vector<Setting>& settings() {
  static const std::vector<Setting> list = {
      {"kind", [](const PointConfig& c) { return kind_label(c); }},
      {"layers", [](const PointConfig& c) { return "N" + std::to_string(c.layers); }},
      {"levels", [](const PointConfig& c) { return "L" + std::to_string(c.levels); }},
      {"cf", [](const PointConfig& c) { return "cf" + std::to_string(c.cf); }},
      {"relax", [](const PointConfig& c) { return c.relax; }},
      {"iters", [](const PointConfig& c) { return std::to_string(c.fwd_iters) + "/" + std::to_string(c.bwd_iters) + " it"; }},
      {"ranks", [](const PointConfig& c) { return "P" + std::to_string(c.ranks); }},
      {"dp", [](const PointConfig& c) { return "D" + std::to_string(c.dp); }},
      // An empty text says nothing in a label: overlap and freezing are named where they are.
      {"dp_overlap", [](const PointConfig& c) { return std::string(c.dp_overlap ? "overlapped" : ""); }},
      {"frozen", [](const PointConfig& c) { return c.frozen > 0 ? "F" + std::to_string(c.frozen) : ""; }},
      {"repack", [](const PointConfig& c) { return std::string(c.repack ? "repacked" : "stages kept"); }},
      {"devices", [](const PointConfig& c) { return std::to_string(devices(c)) + " devices"; }},
      {"model", [](const PointConfig& c) {
         return "d" + std::to_string(c.model.d_model) + " h" + std::to_string(c.model.heads) + " s" +
                std::to_string(c.model.seq) + " b" + std::to_string(c.model.batch);
       }},
      {"mask", [](const PointConfig& c) { return c.mask; }},
      {"tp", [](const PointConfig& c) { return c.tp > 1 ? "TP" + std::to_string(c.tp) : ""; }},
      {"vocab", [](const PointConfig& c) { return c.vocab > 0 ? "GPT V" + std::to_string(c.vocab) : ""; }},
      {"recompute", [](const PointConfig& c) {
         return std::string(c.recompute ? "recompute" : c.selective_recompute ? "selective recompute" : "");
       }},
      {"zero", [](const PointConfig& c) { return c.zero == 3 ? std::string("FSDP") : c.zero > 0 ? "ZeRO-" + std::to_string(c.zero) : ""; }},
      {"sequence_parallel", [](const PointConfig& c) { return std::string(c.sequence_parallel ? "sequence parallel" : ""); }},
      {"fwd_levels", [](const PointConfig& c) { return c.fwd_levels == 1 ? std::string("serial forward") : c.fwd_levels > 1 ? "forward L" + std::to_string(c.fwd_levels) : ""; }},
      {"dp_allreduce", [](const PointConfig& c) { return std::string(c.dp_allreduce == "per-tensor" ? "per-tensor all-reduce" : ""); }},
      {"ends", [](const PointConfig& c) { return std::string(c.ends == "first-rank" ? "ends on rank 0" : ""); }},
      {"allreduce", [](const PointConfig& c) { return c.allreduce == "auto" ? std::string() : c.allreduce + " all-reduce"; }},
      {"buffer_blocks", [](const PointConfig& c) { return c.buffer_blocks > 0 ? std::to_string(c.buffer_blocks) + "+" + std::to_string(c.buffer_blocks) + " buffer blocks" : ""; }},
      {"platform", [](const PointConfig& c) { return c.platform; }},
  };
  return list;
}

const std::vector<Axis>& axes() {
  static const std::vector<Axis> list = {
      {"layers", [](const PointConfig& c) { return int(c.layers); }, true, {"layers"}},
      {"levels", [](const PointConfig& c) { return int(c.levels); }, false, {"levels"}},
      {"cf", [](const PointConfig& c) { return int(c.cf); }, false, {"cf"}},
      {"ranks", [](const PointConfig& c) { return int(c.ranks); }, true, {"ranks", "devices"}},
      // At a fixed device count: every split into replicas x ranks.
      {"dp", [](const PointConfig& c) { return int(c.dp); }, true, {"dp", "ranks"}, true},
      // The kinds compared: at each device count a family's fastest split.
      {"devices", [](const PointConfig& c) { return int(devices(c)); }, true, {"devices", "ranks", "dp"}, true},
      // Frozen blocks at a fixed device count (re-packing changes the split).
      {"frozen", [](const PointConfig& c) { return int(c.frozen); }, false, {"frozen", "ranks", "dp"}, true},
  };
  return list;
}

std::vector<Family> families_along(const Axis& axis, const std::vector<PointResult>& results) {
  std::map<std::string, Family> by_key;  // key: every setting but the axis
  std::vector<std::string> order;
  for (const PointResult& r : results) {
    if (!r.predicted_time_s) continue;
    std::string key;
    for (const Setting& setting : settings())
      if (!axis.varies_with(setting)) key += setting.text(r.config) + "|";
    auto [it, added] = by_key.try_emplace(key);
    if (added) order.push_back(key);
    it->second.points.push_back(&r);
  }
  std::vector<Family> families;
  for (const std::string& key : order) {
    Family& family = by_key.at(key);
    std::stable_sort(family.points.begin(), family.points.end(), [&](const PointResult* a, const PointResult* b) {
      const int x = axis.value(a->config), y = axis.value(b->config);
      return x != y ? x < y : *a->predicted_time_s < *b->predicted_time_s;
    });
    // Points at the same value (splits of one device count): the fastest predicted.
    family.points.erase(std::unique(family.points.begin(), family.points.end(),
                                    [&](const PointResult* a, const PointResult* b) {
                                      return axis.value(a->config) == axis.value(b->config);
                                    }),
                        family.points.end());
    if (family.points.size() > 1) families.push_back(std::move(family));
  }
  // A family is labelled by the settings in which the plotted families differ
  // (a lone family by those in which the sweep's points do).
  std::vector<const PointResult*> compared;
  if (families.size() > 1)
    for (const Family& family : families) compared.push_back(family.points.front());
  else
    for (const PointResult& r : results)
      if (r.predicted_time_s) compared.push_back(&r);
  for (const Setting& setting : settings()) {
    if (axis.varies_with(setting)) continue;
    // The device count says no more than ranks and dp, except where ranks vary.
    if (setting.axis == std::string("devices") && !axis.varies.contains("ranks")) continue;
    std::set<std::string> values;
    for (const PointResult* r : compared) values.insert(setting.text(r->config));
    if (values.size() < 2) continue;
    for (Family& family : families)
      if (const std::string text = setting.text(family.points.front()->config); !text.empty())
        family.label += (family.label.empty() ? "" : " ") + text;
  }
  for (Family& family : families)
    if (family.label.empty()) family.label = "all points";
  return families;
}

const Axis& axis_named(const std::string& name) {
  return *std::find_if(axes().begin(), axes().end(), [&](const Axis& a) { return a.name == name; });
}

// Lines along an axis join grid points; rows of a CSV of measured steps are
// not families (they are in the accuracy plot and the report's tables).
std::vector<PointResult> grid_points(const std::vector<PointResult>& results) {
  std::vector<PointResult> grid;
  for (const PointResult& r : results)
    if (r.config.source.empty()) grid.push_back(r);
  return grid;
}

}  // namespace plait::experiments::detail
