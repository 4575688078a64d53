// Reading a trace file that may be gzipped.
#pragma once

#include <string>

namespace plait::traces::detail {

// The file's bytes, gunzipped when they start with gzip's magic; errors name
// the file ("truncated gzip data", "not valid gzip data").
std::string read_possibly_gzipped(const std::string& path);

}  // namespace plait::traces::detail
