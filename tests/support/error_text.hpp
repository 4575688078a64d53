// The message of the plait::Error a call throws, or "no error": tests assert
// on what a user would read.
#pragma once

#include <functional>
#include <string>

#include "plait/schedule/error.hpp"

namespace plait::testing {

inline std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& error) {
    return error.what();
  }
  return "no error";
}

}  // namespace plait::testing
