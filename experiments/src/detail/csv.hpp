// CSV records (RFC 4180): results.csv and the held-out predictions of a fit.
#pragma once

#include <string>
#include <vector>

namespace plait::experiments::detail {

// Splits records and fields; quoted fields may hold commas, quotes and
// newlines. Throws plait::Error "<origin>:<line>" for an unterminated quote.
std::vector<std::vector<std::string>> split_csv(const std::string& text, const std::string& origin);
// A field as written: quoted (quotes doubled) when it holds a comma, quote or line break.
std::string quoted_csv_field(const std::string& field);

}  // namespace plait::experiments::detail
