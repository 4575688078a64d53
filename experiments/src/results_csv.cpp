// results.csv: one row per point. Columns: the point's configuration, then
// predicted_time_s, measured_time_s (empty when not measured), measured_min_s,
// measured_max_s, predicted_speedup, measured_speedup, relative_error
// (predicted / measured - 1), predicted_at_calibration_s, speed_factor (the
// machine's speed beside the measurement relative to the calibration), status, error. Fields with a comma, quote or
// newline are quoted as in RFC 4180; numbers are written with 6 significant digits.
#include <cstdio>
#include <sstream>

#include "plait/experiments/sweep.hpp"
#include "plait/schedule/error.hpp"

namespace plait::experiments {
namespace {

const std::vector<std::string>& columns() {
  static const std::vector<std::string> names = {
      "layers", "levels", "cf", "relax", "fwd_iters", "bwd_iters", "ranks", "d_model", "heads", "seq",
      "batch", "mask", "platform", "predicted_time_s", "measured_time_s", "measured_min_s", "measured_max_s",
      "predicted_speedup", "measured_speedup", "relative_error", "predicted_at_calibration_s", "speed_factor",
      "status", "error"};
  return names;
}

std::string number_text(const std::optional<double>& value) {
  if (!value) return "";
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", *value);
  return text;
}

std::string quoted(const std::string& field) {
  if (field.find_first_of(",\"\n\r") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Splits records and fields; quoted fields may hold commas, quotes and newlines.
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

std::optional<double> parse_number(const std::string& field, const std::string& where) {
  if (field.empty()) return std::nullopt;
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(field, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != field.size()) throw Error(where, "\"" + field + "\" is not a number");
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
        std::to_string(c.layers), std::to_string(c.levels), std::to_string(c.cf), c.relax,
        std::to_string(c.fwd_iters), std::to_string(c.bwd_iters), std::to_string(c.ranks),
        std::to_string(c.model.d_model), std::to_string(c.model.heads), std::to_string(c.model.seq),
        std::to_string(c.model.batch), c.mask, c.platform, number_text(r.predicted_time_s),
        number_text(r.measured_time_s), number_text(r.measured_min_s), number_text(r.measured_max_s),
        number_text(r.predicted_speedup), number_text(r.measured_speedup), number_text(r.relative_error),
        number_text(r.predicted_at_calibration_s), number_text(r.speed_factor), r.status, r.error};
    for (std::size_t i = 0; i < fields.size(); ++i) out << (i ? "," : "") << quoted(fields[i]);
    out << '\n';
  }
  return out.str();
}

std::vector<PointResult> parse_results_csv(const std::string& text, const std::string& origin) {
  const auto rows = split_csv(text, origin);
  if (rows.empty() || rows.front() != columns())
    throw Error(origin + ":1", "header is not \"" + results_csv_header() + "\"");
  std::vector<PointResult> results;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const auto& f = rows[i];
    const std::string where = origin + ": row " + std::to_string(i);
    if (f.size() != columns().size())
      throw Error(where, std::to_string(f.size()) + " fields, expected " + std::to_string(columns().size()));
    PointResult r;
    PointConfig& c = r.config;
    c.layers = parse_int(f[0], where + ", layers");
    c.levels = parse_int(f[1], where + ", levels");
    c.cf = parse_int(f[2], where + ", cf");
    c.relax = f[3];
    c.fwd_iters = parse_int(f[4], where + ", fwd_iters");
    c.bwd_iters = parse_int(f[5], where + ", bwd_iters");
    c.ranks = parse_int(f[6], where + ", ranks");
    c.model.d_model = parse_int(f[7], where + ", d_model");
    c.model.heads = parse_int(f[8], where + ", heads");
    c.model.seq = parse_int(f[9], where + ", seq");
    c.model.batch = parse_int(f[10], where + ", batch");
    c.mask = f[11];
    c.platform = f[12];
    r.predicted_time_s = parse_number(f[13], where + ", predicted_time_s");
    r.measured_time_s = parse_number(f[14], where + ", measured_time_s");
    r.measured_min_s = parse_number(f[15], where + ", measured_min_s");
    r.measured_max_s = parse_number(f[16], where + ", measured_max_s");
    r.predicted_speedup = parse_number(f[17], where + ", predicted_speedup");
    r.measured_speedup = parse_number(f[18], where + ", measured_speedup");
    r.relative_error = parse_number(f[19], where + ", relative_error");
    r.predicted_at_calibration_s = parse_number(f[20], where + ", predicted_at_calibration_s");
    r.speed_factor = parse_number(f[21], where + ", speed_factor");
    r.status = f[22];
    r.error = f[23];
    results.push_back(r);
  }
  return results;
}

}  // namespace plait::experiments
