// Comma-separated fields of one CSV line (no quoting: the measurement files
// plait reads have none); a trailing comma is an empty last field.
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace plait::costmodels::detail {

inline std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream stream(line);
  std::string field;
  while (std::getline(stream, field, ',')) fields.push_back(field);
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

}  // namespace plait::costmodels::detail
