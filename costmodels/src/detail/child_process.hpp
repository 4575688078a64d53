// A child process started from an argument vector (no shell): stdout read line
// by line through a pipe or sent to /dev/null, stderr kept in a temporary file
// so a failure can be reported with the child's last words.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace plait::costmodels::detail {

class ChildProcess {
 public:
  // Throws plait::Error if the program cannot be started.
  ChildProcess(const std::vector<std::string>& argv, bool capture_stdout);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Next line of stdout (without '\n'); false at end of output.
  bool read_line(std::string& line);
  // Waits; returns the exit status (128 + signal when killed).
  int wait();
  // The last `max_chars` characters the child wrote to stderr.
  std::string stderr_tail(std::size_t max_chars = 600) const;
  // Throws plait::Error "<what> failed (exit N): <stderr tail>" unless status is 0.
  void wait_successfully(const std::string& what);

 private:
  int pid_ = -1;
  std::FILE* stdout_ = nullptr;
  std::string stderr_path_;
  bool waited_ = false;
  int status_ = 0;
};

// The directory holding the running executable (from /proc/self/exe).
std::string executable_directory();

}  // namespace plait::costmodels::detail
