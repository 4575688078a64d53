// Temporary files of a calibration: named by the process and a stem, removed
// when the scope that made them ends.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace plait::costmodels::detail {

inline std::string temporary_path(const std::string& stem) {
  return (std::filesystem::temp_directory_path() /
          ("plait-calibrate-" + std::to_string(getpid()) + "-" + stem + ".json"))
      .string();
}

struct TemporaryFile {
  std::string path;
  ~TemporaryFile() { std::filesystem::remove(path); }
};

}  // namespace plait::costmodels::detail
