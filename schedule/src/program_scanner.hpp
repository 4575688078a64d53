// A fast reader of a Program text's ops arrays (program_scanner.cpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "op_slots.hpp"

namespace plait::schedule::detail {

struct ScannedOps {
  std::string rest;            // the text with every ops array emptied ("ops": [])
  std::vector<OpList> lists;   // the ops those arrays held
};

// The ops of a Program text and the rest of it, or nothing when the text holds
// what this scanner does not read: an escape in a key or in an op's string, a
// float, null or a nested value in an op, an op read_op refuses, or text it
// cannot follow. The caller then reads the text with the full JSON reader,
// which says what is wrong. Every ops array it reads is valid JSON; the rest
// is left to the JSON parser.
std::optional<ScannedOps> scan_ops(const std::string& text);

}  // namespace plait::schedule::detail
