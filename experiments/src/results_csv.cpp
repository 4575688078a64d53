// results.csv: one row per point. Columns: the point's configuration (kind,
// micro_batches, layers, ..., platform), then
// predicted_time_s, measured_time_s (empty when not measured), measured_min_s,
// measured_max_s, predicted_speedup, measured_speedup, relative_error
// (predicted / measured - 1), predicted_at_calibration_s, speed_factor (the
// machine's speed beside the measurement relative to the calibration),
// predicted_serial_s, measured_serial_s (the serial step), speedup_error
// (predicted / measured speedup - 1), predicted_speedup_at_calibration, status,
// error; tp, vocab, recompute ("selective" for selective recompute), zero,
// sequence_parallel and source (a CSV row's "FILE:LINE") after platform; held_out_s, critical_compute_s, runs (measured here) and
// disturbed_runs (of them, judged disturbed) before status. Fields with a comma, quote or newline are quoted as in RFC 4180;
// numbers are written with 6 significant digits. Rows are read by column name:
// a file written before the serial columns existed still resumes.
#include <cstdio>
#include <map>
#include <sstream>

#include "detail/csv.hpp"
#include "plait/experiments/sweep.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::experiments {
namespace {

const std::vector<std::string>& columns() {
  static const std::vector<std::string> names = {
      "kind", "micro_batches", "virtual_stages", "dp", "dp_overlap", "frozen", "repack", "layers", "levels", "cf", "relax", "fwd_iters", "bwd_iters", "ranks", "d_model", "heads", "seq",
      "batch", "mask", "platform", "tp", "vocab", "recompute", "fwd_levels", "dp_allreduce", "ends", "buffer_blocks", "allreduce", "zero", "sequence_parallel", "source", "predicted_time_s", "measured_time_s", "measured_min_s", "measured_max_s",
      "predicted_speedup", "measured_speedup", "relative_error", "predicted_at_calibration_s", "speed_factor",
      "predicted_serial_s", "measured_serial_s", "speedup_error", "predicted_speedup_at_calibration",
      "predicted_memory_bytes", "held_out_s", "critical_compute_s", "runs", "disturbed_runs", "status", "error"};
  return names;
}

// Columns a results.csv of an earlier plait lacks (read as empty).
bool added_later(const std::string& column) {
  return column == "kind" || column == "micro_batches" || column == "virtual_stages" || column == "dp" || column == "dp_overlap" || column == "frozen" || column == "repack" || column == "predicted_memory_bytes" || column == "predicted_serial_s" || column == "measured_serial_s" || column == "speedup_error" ||
         column == "predicted_speedup_at_calibration" || column == "tp" || column == "vocab" || column == "recompute" ||
         column == "source" || column == "held_out_s" || column == "critical_compute_s" || column == "fwd_levels" ||
         column == "dp_allreduce" || column == "ends" || column == "buffer_blocks" || column == "allreduce" ||
         column == "runs" || column == "disturbed_runs" || column == "zero" || column == "sequence_parallel";
}

std::string number_text(const std::optional<double>& value) {
  if (!value) return "";
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", *value);
  return text;
}

std::string count_text(const std::optional<int>& value) { return value ? std::to_string(*value) : ""; }

}  // namespace

namespace detail {

std::string quoted_csv_field(const std::string& field) {
  if (field.find_first_of(",\"\n\r") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::vector<std::vector<std::string>> split_csv(const std::string& text, const std::string& origin) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool in_quotes = false, any = false;
  int line = 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '"') {
      in_quotes = true;
      any = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      any = true;
    } else if (c == '\n') {
      if (any || !field.empty()) {
        row.push_back(field);
        rows.push_back(row);
      }
      row.clear();
      field.clear();
      any = false;
      ++line;
    } else if (c != '\r') {
      field += c;
      any = true;
    }
  }
  if (in_quotes) throw Error(origin + ":" + std::to_string(line), "unterminated quoted field");
  if (any || !field.empty()) {
    row.push_back(field);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace detail

namespace {

std::optional<double> parse_number(const std::string& field, const std::string& where) {
  if (field.empty()) return std::nullopt;
  const std::optional<double> value = number_of_field(field);
  if (!value) throw Error(where, "\"" + field + "\" is not a number");
  return value;
}

std::int32_t parse_int(const std::string& field, const std::string& where) {
  const auto value = parse_number(field, where);
  if (!value || *value != static_cast<std::int32_t>(*value)) throw Error(where, "\"" + field + "\" is not an integer");
  return static_cast<std::int32_t>(*value);
}

}  // namespace

std::string results_csv_header() {
  std::string line;
  for (const auto& name : columns()) line += (line.empty() ? "" : ",") + name;
  return line;
}

std::string dump_results_csv(const std::vector<PointResult>& results) {
  std::ostringstream out;
  out << results_csv_header() << '\n';
  for (const PointResult& r : results) {
    const PointConfig& c = r.config;
    const std::vector<std::string> fields = {
        c.kind, std::to_string(c.micro_batches), std::to_string(c.virtual_stages), std::to_string(c.dp), c.dp_overlap ? "true" : "false", std::to_string(c.frozen), c.repack ? "true" : "false", std::to_string(c.layers), std::to_string(c.levels), std::to_string(c.cf), c.relax,
        std::to_string(c.fwd_iters), std::to_string(c.bwd_iters), std::to_string(c.ranks),
        std::to_string(c.model.d_model), std::to_string(c.model.heads), std::to_string(c.model.seq),
        std::to_string(c.model.batch), c.mask, c.platform, std::to_string(c.tp), std::to_string(c.vocab),
        c.selective_recompute ? "selective" : c.recompute ? "true" : "false", std::to_string(c.fwd_levels), c.dp_allreduce, c.ends,
        std::to_string(c.buffer_blocks), c.allreduce, std::to_string(c.zero), c.sequence_parallel ? "true" : "false", c.source, number_text(r.predicted_time_s),
        number_text(r.measured_time_s), number_text(r.measured_min_s), number_text(r.measured_max_s),
        number_text(r.predicted_speedup), number_text(r.measured_speedup), number_text(r.relative_error),
        number_text(r.predicted_at_calibration_s), number_text(r.speed_factor), number_text(r.predicted_serial_s),
        number_text(r.measured_serial_s), number_text(r.speedup_error),
        number_text(r.predicted_speedup_at_calibration), number_text(r.predicted_memory_bytes),
        number_text(r.held_out_s), number_text(r.critical_compute_s), count_text(r.runs),
        count_text(r.disturbed_runs), r.status, r.error};
    for (std::size_t i = 0; i < fields.size(); ++i) out << (i ? "," : "") << detail::quoted_csv_field(fields[i]);
    out << '\n';
  }
  return out.str();
}

std::vector<PointResult> parse_results_csv(const std::string& text, const std::string& origin) {
  const auto rows = detail::split_csv(text, origin);
  if (rows.empty()) throw Error(origin + ":1", "header is not \"" + results_csv_header() + "\"");
  std::map<std::string, std::size_t> index;  // column name -> field
  for (std::size_t i = 0; i < rows.front().size(); ++i) index.emplace(rows.front()[i], i);
  for (const std::string& name : columns())
    if (!index.contains(name) && !added_later(name))
      throw Error(origin + ":1", "header has no column \"" + name + "\" (expected \"" + results_csv_header() + "\")");
  std::vector<PointResult> results;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const auto& f = rows[i];
    const std::string where = origin + ": row " + std::to_string(i);
    if (f.size() != rows.front().size())
      throw Error(where, std::to_string(f.size()) + " fields, expected " + std::to_string(rows.front().size()));
    const auto text_of = [&](const char* name) -> std::string {
      const auto found = index.find(name);
      return found == index.end() ? std::string() : f[found->second];
    };
    const auto number = [&](const char* name) { return parse_number(text_of(name), where + ", " + name); };
    const auto integer = [&](const char* name) { return parse_int(text_of(name), where + ", " + name); };
    PointResult r;
    PointConfig& c = r.config;
    if (index.contains("kind")) c.kind = text_of("kind");
    if (index.contains("micro_batches")) c.micro_batches = integer("micro_batches");
    if (index.contains("dp")) c.dp = integer("dp");
    if (index.contains("virtual_stages")) c.virtual_stages = integer("virtual_stages");
    if (index.contains("frozen")) c.frozen = integer("frozen");
    const auto flag = [&](const char* name) {
      const std::string text = text_of(name);
      if (text != "true" && text != "false") throw Error(where + ", " + name, "\"" + text + "\" is not true or false");
      return text == "true";
    };
    if (index.contains("repack")) c.repack = flag("repack");
    if (index.contains("dp_overlap")) c.dp_overlap = flag("dp_overlap");
    if (index.contains("recompute")) {
      if (text_of("recompute") == "selective") c.selective_recompute = true;
      else c.recompute = flag("recompute");
    }
    if (index.contains("zero")) c.zero = integer("zero");
    if (index.contains("sequence_parallel")) c.sequence_parallel = flag("sequence_parallel");
    if (index.contains("tp")) c.tp = integer("tp");
    if (index.contains("vocab")) c.vocab = integer("vocab");
    if (index.contains("fwd_levels")) c.fwd_levels = integer("fwd_levels");
    if (index.contains("dp_allreduce")) c.dp_allreduce = text_of("dp_allreduce");
    if (index.contains("ends")) c.ends = text_of("ends");
    if (index.contains("buffer_blocks")) c.buffer_blocks = integer("buffer_blocks");
    if (index.contains("allreduce")) c.allreduce = text_of("allreduce");
    c.source = text_of("source");
    c.layers = integer("layers");
    c.levels = integer("levels");
    c.cf = integer("cf");
    c.relax = text_of("relax");
    c.fwd_iters = integer("fwd_iters");
    c.bwd_iters = integer("bwd_iters");
    c.ranks = integer("ranks");
    c.model.d_model = integer("d_model");
    c.model.heads = integer("heads");
    c.model.seq = integer("seq");
    c.model.batch = integer("batch");
    c.mask = text_of("mask");
    c.platform = text_of("platform");
    r.predicted_time_s = number("predicted_time_s");
    r.measured_time_s = number("measured_time_s");
    r.measured_min_s = number("measured_min_s");
    r.measured_max_s = number("measured_max_s");
    r.predicted_speedup = number("predicted_speedup");
    r.measured_speedup = number("measured_speedup");
    r.relative_error = number("relative_error");
    r.predicted_at_calibration_s = number("predicted_at_calibration_s");
    r.speed_factor = number("speed_factor");
    r.predicted_serial_s = number("predicted_serial_s");
    r.measured_serial_s = number("measured_serial_s");
    r.speedup_error = number("speedup_error");
    r.predicted_speedup_at_calibration = number("predicted_speedup_at_calibration");
    r.predicted_memory_bytes = number("predicted_memory_bytes");
    r.held_out_s = number("held_out_s");
    r.critical_compute_s = number("critical_compute_s");
    if (!text_of("runs").empty()) r.runs = integer("runs");
    if (!text_of("disturbed_runs").empty()) r.disturbed_runs = integer("disturbed_runs");
    r.status = text_of("status");
    r.error = text_of("error");
    results.push_back(r);
  }
  return results;
}

}  // namespace plait::experiments
