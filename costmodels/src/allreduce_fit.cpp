#include "plait/costmodels/allreduce_fit.hpp"

#include <cmath>
#include <set>
#include <sstream>

#include "detail/csv.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::costmodels {
namespace {

double positive_number(const std::string& field, const std::string& where) {
  const std::optional<double> value = number_of_field(field);
  if (!value || !std::isfinite(*value) || *value <= 0) throw Error(where, "\"" + field + "\" is not a positive number");
  return *value;
}

// Solves the 3 x 3 system a x = b (Gauss-Jordan with pivoting); false when singular.
bool solve3(std::array<std::array<double, 4>, 3> m, std::array<double, 3>& x) {
  for (int i = 0; i < 3; ++i) {
    int pivot = i;
    for (int r = i + 1; r < 3; ++r)
      if (std::abs(m[r][i]) > std::abs(m[pivot][i])) pivot = r;
    std::swap(m[i], m[pivot]);
    if (std::abs(m[i][i]) < 1e-300) return false;
    for (int r = 0; r < 3; ++r) {
      if (r == i) continue;
      const double f = m[r][i] / m[i][i];
      for (int k = i; k < 4; ++k) m[r][k] -= f * m[i][k];
    }
  }
  for (int i = 0; i < 3; ++i) x[i] = m[i][3] / m[i][i];
  return true;
}

// The model's terms at one size: what multiplies the step latency, 1 / link
// and 1 / pass (the fit divides each by the measured time: relative least squares).
std::array<double, 3> terms(int devices, double bytes) {
  return {2.0 * (devices - 1), 2.0 * (devices - 1) / devices * bytes, bytes};
}

}  // namespace

AllreduceMeasurements parse_allreduce_csv(const std::string& text, int devices, const std::string& origin) {
  if (devices < 2) throw Error(origin, "an all-reduce needs 2 devices or more, not " + std::to_string(devices));
  std::stringstream stream(text);
  std::string line;
  if (!std::getline(stream, line)) throw Error(origin, "empty file (expected nccl-tests CSV)");
  const std::vector<std::string> header = detail::split_csv_line(line);
  int size_column = -1, time_column = -1;
  for (int i = 0; i < static_cast<int>(header.size()); ++i) {
    if (header[i] == "size(B)" && size_column < 0) size_column = i;
    if (header[i] == "time(ns)" && time_column < 0) time_column = i;
  }
  if (size_column < 0 || time_column < 0)
    throw Error(origin + ": line 1", "header has no \"size(B)\" and \"time(ns)\" columns (nccl-tests CSV)");
  AllreduceMeasurements out{.devices = devices, .origin = origin, .samples = {}};
  for (int number = 2; std::getline(stream, line); ++number) {
    if (line.empty()) continue;
    const std::vector<std::string> fields = detail::split_csv_line(line);
    const std::string where = origin + ": line " + std::to_string(number);
    if (fields.size() != header.size())
      throw Error(where, std::to_string(fields.size()) + " fields, the header has " + std::to_string(header.size()));
    const double bytes = positive_number(fields[size_column], where + ", size(B)");
    if (bytes != std::floor(bytes) || bytes > 1e15)
      throw Error(where + ", size(B)", "\"" + fields[size_column] + "\" is not a byte count");
    out.samples.push_back(
        {static_cast<std::int64_t>(bytes), positive_number(fields[time_column], where + ", time(ns)") * 1e-9});
  }
  if (out.samples.empty()) throw Error(origin, "no measurements after the header");
  return out;
}

AllreduceMeasurements load_allreduce_csv(const std::string& path, int devices) {
  return parse_allreduce_csv(read_text_file(path), devices, path);
}

double RingAllreduceModel::seconds(int devices, double bytes) const {
  const std::array<double, 3> term = terms(devices, bytes);
  return term[0] * step_latency_s + term[1] / link_bytes_per_s + term[2] / pass_bytes_per_s;
}

RingAllreduceFit fit_ring_allreduce(const std::vector<AllreduceMeasurements>& sets, std::int64_t min_bytes) {
  std::array<std::array<double, 4>, 3> normal{};  // [A^T A | A^T 1], rows scaled by 1 / t
  std::set<int> device_counts;
  int samples = 0;
  for (const AllreduceMeasurements& set : sets)
    for (const AllreduceSample& sample : set.samples) {
      if (sample.bytes < min_bytes) continue;
      std::array<double, 3> row = terms(set.devices, double(sample.bytes));
      for (double& value : row) value /= sample.seconds;
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) normal[i][j] += row[i] * row[j];
        normal[i][3] += row[i];
      }
      device_counts.insert(set.devices);
      ++samples;
    }
  if (samples < 3) throw Error("all-reduce fit", std::to_string(samples) + " samples of at least " +
                                                   std::to_string(min_bytes) + " bytes: 3 needed");
  if (device_counts.size() < 2)
    throw Error("all-reduce fit", "measurements of one device count cannot tell the link from the buffer pass: "
                                  "give two or more (e.g. 2 and 8 GPUs)");
  std::array<double, 3> x{};
  if (!solve3(normal, x)) throw Error("all-reduce fit", "the measurements do not determine the model");
  // Residual variance, and the parameters' standard errors from (A^T A)^-1.
  double residual = 0;
  for (const AllreduceMeasurements& set : sets)
    for (const AllreduceSample& sample : set.samples) {
      if (sample.bytes < min_bytes) continue;
      const std::array<double, 3> row = terms(set.devices, double(sample.bytes));
      const double predicted = row[0] * x[0] + row[1] * x[1] + row[2] * x[2];
      residual += std::pow(predicted / sample.seconds - 1, 2);
    }
  const double variance = samples > 3 ? residual / (samples - 3) : 0;
  RingAllreduceFit fit;
  fit.samples = samples;
  for (int i = 0; i < 3; ++i) {
    if (!(x[i] > 0)) throw Error("all-reduce fit", "a parameter came out not positive: the ring model does not fit");
    std::array<std::array<double, 4>, 3> unit = normal;
    for (int r = 0; r < 3; ++r) unit[r][3] = r == i ? 1 : 0;
    std::array<double, 3> column{};
    solve3(unit, column);
    fit.relative_uncertainty[i] = std::sqrt(std::max(0.0, variance * column[i])) / x[i];
  }
  fit.model = {.step_latency_s = x[0], .link_bytes_per_s = 1 / x[1], .pass_bytes_per_s = 1 / x[2]};
  return fit;
}

}  // namespace plait::costmodels
