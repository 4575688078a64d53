#include "plait/schedule/files.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "plait/schedule/error.hpp"

namespace plait {
namespace {

// A sibling of `path` no other writer picks: the same directory, so that the
// rename onto `path` is atomic (one filesystem).
std::string temporary_sibling(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

std::string system_reason() { return std::strerror(errno); }

}  // namespace

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, "cannot open");
  // Read in one piece where the size is known (a 289 MB Program is copied
  // once, not grown by doubling); a pipe has none and is read as a stream.
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  std::string text;
  if (size > 0) {
    text.resize(static_cast<std::size_t>(size));
    in.seekg(0);
    in.read(text.data(), size);
    text.resize(static_cast<std::size_t>(in.gcount()));
  } else {
    in.clear();
    in.seekg(0);
    std::ostringstream stream;
    stream << in.rdbuf();
    text = stream.str();
  }
  if (in.bad()) throw Error(path, "read failed");
  return text;
}

// Written whole to a temporary sibling, flushed to disk, then renamed onto
// `path`: a reader (or a run killed mid-write) sees the old file or the new
// one, never a half-written one under the final name.
void write_text_file(const std::string& path, const std::string& text) {
  const std::string temporary = temporary_sibling(path);
  std::FILE* out = std::fopen(temporary.c_str(), "wb");
  if (!out) throw Error(path, "cannot open for writing (" + system_reason() + ")");
  const bool written = std::fwrite(text.data(), 1, text.size(), out) == text.size() && std::fflush(out) == 0 &&
                       ::fsync(::fileno(out)) == 0;
  const std::string write_reason = system_reason();
  const bool closed = std::fclose(out) == 0;
  if (!written || !closed) {
    const std::string reason = written ? system_reason() : write_reason;
    std::remove(temporary.c_str());
    throw Error(path, "write failed (" + reason + ")");
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string rename_reason = system_reason();
    std::remove(temporary.c_str());
    throw Error(path, "cannot replace (" + rename_reason + ")");
  }
}

void check_writable(const std::string& path) {
  const std::string temporary = temporary_sibling(path);
  std::FILE* probe = std::fopen(temporary.c_str(), "wb");
  if (!probe) throw Error(path, "cannot open for writing (" + system_reason() + ")");
  std::fclose(probe);
  std::remove(temporary.c_str());
}

std::optional<double> number_of_field(const std::string& field) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(field, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (used == 0 || used != field.size()) return std::nullopt;
  return value;
}

}  // namespace plait
