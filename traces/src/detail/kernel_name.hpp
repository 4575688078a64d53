// A GPU kernel's name as plait keys it: without "void " and its argument list
// ("void gemm<float>(float*, int)" -> "gemm<float>"), the same from Kineto and
// Chakra; a name whose parentheses follow a space is not a signature
// ("Memcpy DtoD (Device -> Device)" stays).
#pragma once

#include <string>

namespace plait::traces::detail {

inline std::string kernel_name(const std::string& name) {
  std::string out = name.starts_with("void ") ? name.substr(5) : name;
  const auto paren = out.rfind('(');
  if (paren != std::string::npos && paren > 0 && out[paren - 1] != ' ' && out.back() == ')') out.resize(paren);
  return out;
}

}  // namespace plait::traces::detail
