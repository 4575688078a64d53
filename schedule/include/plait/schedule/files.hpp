// Whole-file text I/O with plait::Error on failure ("<path>: cannot open"),
// shared by every loader and saver of plait's JSON formats.
#pragma once

#include <optional>
#include <string>

namespace plait {

std::string read_text_file(const std::string& path);
// Atomic: the text goes to a temporary file beside `path`, which is then
// renamed onto it, so no reader ever sees a half-written file under `path`.
void write_text_file(const std::string& path, const std::string& text);
// Throws plait::Error if a file could not be written at `path` (its directory
// is missing or read-only), without creating `path`: a check before a long run.
void check_writable(const std::string& path);

// The number a whole text field spells (CSV cells); nothing when it is empty,
// is not a number, or has text after one.
std::optional<double> number_of_field(const std::string& field);

}  // namespace plait
