// The report's section on points taken from a CSV of measured steps: the
// error of every row, by TP, PP, DP, micro batch, model size and GPUs, and the
// worst rows with what explains them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <sstream>

#include "detail/report.hpp"

namespace plait::experiments::detail {
namespace {

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

int micro_batch(const PointConfig& c) { return c.model.batch / (c.micro_batches * c.dp); }

struct Errors {
  std::vector<double> simulated, held_out;  // signed: predicted / measured - 1
};

double mean_abs(const std::vector<double>& errors) {
  double sum = 0;
  for (double e : errors) sum += std::abs(e);
  return sum / errors.size();
}

double max_abs(const std::vector<double>& errors) {
  double max = 0;
  for (double e : errors) max = std::max(max, std::abs(e));
  return max;
}

std::string cells(const std::vector<double>& errors) {
  if (errors.empty()) return " | |";
  return " " + format("%.2f %%", 100 * mean_abs(errors)) + " | " + format("%.1f %%", 100 * max_abs(errors)) + " |";
}

// Rows grouped by one setting each (TP 2, PP 4, ...), in the order of the settings, then their values.
std::string group_table(const std::vector<const PointResult*>& rows, bool held_out) {
  struct Grouping {
    const char* name;
    int (*value)(const PointConfig&);
  };
  static const Grouping groupings[] = {
      {"TP", [](const PointConfig& c) { return int(c.tp); }},
      {"PP", [](const PointConfig& c) { return int(c.ranks); }},
      {"DP", [](const PointConfig& c) { return int(c.dp); }},
      {"micro batch", micro_batch},
      {"hidden", [](const PointConfig& c) { return int(c.model.d_model); }},
      {"layers", [](const PointConfig& c) { return int(c.layers); }},
      {"GPUs", [](const PointConfig& c) { return int(c.ranks * c.dp * c.tp); }},
  };
  std::ostringstream out;
  out << "| rows | n | SimGrid mean abs | max abs |" << (held_out ? " held-out mean abs | max abs |" : "") << "\n"
      << "| --- | ---: | ---: | ---: |" << (held_out ? " ---: | ---: |" : "") << "\n";
  const auto add = [&](const std::string& label, const Errors& errors) {
    out << "| " << label << " | " << errors.simulated.size() << " |" << cells(errors.simulated)
        << (held_out ? cells(errors.held_out) : "") << "\n";
  };
  Errors all;
  for (const PointResult* r : rows) {
    all.simulated.push_back(*r->relative_error);
    if (r->held_out_s) all.held_out.push_back(*r->held_out_s / *r->measured_time_s - 1);
  }
  add("all", all);
  for (const Grouping& grouping : groupings) {
    std::map<int, Errors> groups;
    for (const PointResult* r : rows) {
      Errors& group = groups[grouping.value(r->config)];
      group.simulated.push_back(*r->relative_error);
      if (r->held_out_s) group.held_out.push_back(*r->held_out_s / *r->measured_time_s - 1);
    }
    if (groups.size() < 2) continue;
    for (const auto& [value, errors] : groups) add(std::string(grouping.name) + " " + std::to_string(value), errors);
  }
  return out.str();
}

// Why a row misses: a miss its whole per-rank shape (TP, micro batch, hidden)
// shares, with a small spread, is the kernel model's on that shape; a miss of
// the row alone is the measurement's (or that one schedule's).
std::string why(const PointResult& row, const std::vector<const PointResult*>& rows) {
  const auto shape = [](const PointConfig& c) { return std::tuple(c.tp, micro_batch(c), c.model.d_model); };
  std::vector<double> errors;
  for (const PointResult* r : rows)
    if (shape(r->config) == shape(row.config)) errors.push_back(*r->relative_error);
  const double mean = std::accumulate(errors.begin(), errors.end(), 0.0) / errors.size();
  double variance = 0;
  for (double e : errors) variance += (e - mean) * (e - mean);
  const double spread = std::sqrt(variance / errors.size());
  const std::string named = "(TP " + std::to_string(row.config.tp) + ", micro batch " +
                            std::to_string(micro_batch(row.config)) + ", hidden " +
                            std::to_string(row.config.model.d_model) + ")";
  const std::string group = "its shape's " + std::to_string(errors.size()) + " rows " + named + " " +
                            format("%+.1f %%", 100 * mean) + " ± " + format("%.1f %%", 100 * spread);
  std::string text;
  if (errors.size() < 3)
    text = "too few rows of its shape " + named + " to tell the model's miss from the row's";
  else if (std::abs(mean) > 2 * spread && std::abs(mean) >= std::abs(*row.relative_error) / 2)
    text = "the kernel model's miss on this shape: " + group;
  else
    text = "this row more than its shape: " + group;
  if (row.critical_compute_s && *row.predicted_time_s > 0)
    text += "; compute " + format("%.0f %%", 100 * *row.critical_compute_s / *row.predicted_time_s) +
            " of the predicted critical path";
  return text;
}

}  // namespace

std::string step_rows_section(const SweepSpec& spec, const std::vector<PointResult>& results) {
  std::vector<const PointResult*> rows;
  for (const PointResult& r : results)
    if (!r.config.source.empty() && r.relative_error && r.measured_time_s) rows.push_back(&r);
  if (rows.empty()) return "";
  const bool held_out = std::any_of(rows.begin(), rows.end(), [](const PointResult* r) { return r->held_out_s.has_value(); });
  std::ostringstream out;
  out << "## Measured steps from `" << spec.steps_csv << "`\n\n"
      << "Each row is the Megatron GPT step it ran (1F1B over PP stages, TP, DP, full recompute, fp16, Adam), "
         "simulated by SimGrid on `" << rows.front()->config.platform
      << "` (a cluster grown to the row's GPUs), against the time the file records. Error: predicted / measured - 1.";
  if (held_out)
    out << " Held-out: the row predicted by the kernel model fitted on the other four fifths of the rows "
           "(`plait calibrate --from-steps --folds 5`, its step estimator; its shape's factors from its shape's "
           "other rows), the check of the model; SimGrid's column uses the fit on every row. `fit.md` has the "
           "fitted parameters, the shape factors, and the same check with whole shapes held out: what to expect "
           "of a shape that is not in the file.";
  out << "\n\n" << group_table(rows, held_out) << "\n";

  std::vector<const PointResult*> worst = rows;
  std::sort(worst.begin(), worst.end(), [](const PointResult* a, const PointResult* b) {
    return std::abs(*a->relative_error) > std::abs(*b->relative_error);
  });
  worst.resize(std::min<std::size_t>(worst.size(), 10));
  out << "### Worst rows, and why\n\n| line | GPUs | TP | PP | DP | global | micro | hidden | layers | measured | "
         "predicted | error | why |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
  const auto settings = [](const PointConfig& c) {
    return std::to_string(source_line(c)) + " | " + std::to_string(devices(c)) + " | " + std::to_string(c.tp) + " | " +
           std::to_string(c.ranks) + " | " + std::to_string(c.dp) + " | " + std::to_string(c.model.batch) + " | " +
           std::to_string(micro_batch(c)) + " | " + std::to_string(c.model.d_model) + " | " + std::to_string(c.layers);
  };
  for (const PointResult* r : worst)
    out << "| " << settings(r->config) << " | " << format("%.1f ms", 1e3 * *r->measured_time_s) << " | "
        << format("%.1f ms", 1e3 * *r->predicted_time_s) << " | " << format("%+.1f %%", 100 * *r->relative_error)
        << " | " << why(*r, rows) << " |\n";

  out << "\n### Every row\n\n| line | GPUs | TP | PP | DP | global | micro | hidden | layers | measured ms | "
         "SimGrid ms | error |" << (held_out ? " held-out ms | error |" : "") << "\n"
      << "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
      << (held_out ? " ---: | ---: |" : "") << "\n";
  for (const PointResult* r : rows) {
    out << "| " << settings(r->config) << " | " << format("%.1f", 1e3 * *r->measured_time_s) << " | "
        << format("%.1f", 1e3 * *r->predicted_time_s) << " | " << format("%+.1f %%", 100 * *r->relative_error) << " |";
    if (held_out)
      out << (r->held_out_s ? " " + format("%.1f", 1e3 * *r->held_out_s) + " | " +
                                  format("%+.1f %%", 100 * (*r->held_out_s / *r->measured_time_s - 1)) + " |"
                            : " | |");
    out << "\n";
  }
  return out.str() + "\n";
}

}  // namespace plait::experiments::detail
