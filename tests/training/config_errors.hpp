// The error a train config gets once one piece of its text is replaced.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "error_text.hpp"
#include "plait/training/config.hpp"

namespace plait::training {

inline std::string error_after_replacing(std::string text, const std::string& from, const std::string& to,
                                  const std::string& origin) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return plait::testing::error_of([&] { parse_train_config(text, origin); });
}

}  // namespace plait::training
