// Running the plait binaries a sweep drives: one child process from an
// argument vector (no shell), stdout and stderr sent to files.
#pragma once

#include <string>
#include <vector>

namespace plait::experiments::detail {

// Runs `argv` to completion; returns its exit status (128 + signal when
// killed, 127 when it could not be started).
int run_process(const std::vector<std::string>& argv, const std::string& stdout_path,
                const std::string& stderr_path);

// The last lines of a file written by a child, on one line (for error columns).
std::string last_words(const std::string& path, std::size_t max_chars = 300);

// "a b c" for messages.
std::string join_command(const std::vector<std::string>& argv);

}  // namespace plait::experiments::detail
