#include "plait/schedule/files.hpp"

#include <fstream>
#include <sstream>

#include "plait/schedule/error.hpp"

namespace plait {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path, "cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(path, "read failed");
  return text.str();
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  if (!out) throw Error(path, "cannot open for writing");
  out << text;
  if (!out) throw Error(path, "write failed");
}

}  // namespace plait
