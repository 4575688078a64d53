// Whole-file text I/O with plait::Error on failure ("<path>: cannot open"),
// shared by every loader and saver of plait's JSON formats.
#pragma once

#include <string>

namespace plait {

std::string read_text_file(const std::string& path);
void write_text_file(const std::string& path, const std::string& text);

}  // namespace plait
