#include "detail/child_process.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "plait/schedule/error.hpp"

extern char** environ;

namespace plait::costmodels::detail {

ChildProcess::ChildProcess(const std::vector<std::string>& argv, bool capture_stdout) {
  if (argv.empty()) throw Error("child process", "empty command");
  char stderr_template[] = "/tmp/plait-child-stderr-XXXXXX";
  const int stderr_fd = mkstemp(stderr_template);
  if (stderr_fd < 0) throw Error("child process", "cannot create a temporary file");
  stderr_path_ = stderr_template;
  int pipe_fds[2] = {-1, -1};
  if (capture_stdout && pipe(pipe_fds) != 0) {
    close(stderr_fd);
    throw Error("child process", "cannot create a pipe");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (capture_stdout) {
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[1]);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, stderr_fd, STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, stderr_fd);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const int error = posix_spawnp(&pid_, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(stderr_fd);
  if (capture_stdout) close(pipe_fds[1]);
  if (error != 0) {
    if (capture_stdout) close(pipe_fds[0]);
    throw Error(argv[0], std::string("cannot start: ") + std::strerror(error));
  }
  if (capture_stdout) stdout_ = fdopen(pipe_fds[0], "r");
}

ChildProcess::~ChildProcess() {
  if (!waited_ && pid_ > 0) {
    kill(pid_, SIGTERM);
    wait();
  }
  if (stdout_) std::fclose(stdout_);
  if (!stderr_path_.empty()) std::remove(stderr_path_.c_str());
}

bool ChildProcess::read_line(std::string& line) {
  line.clear();
  if (!stdout_) return false;
  int c;
  while ((c = std::fgetc(stdout_)) != EOF) {
    if (c == '\n') return true;
    line.push_back(static_cast<char>(c));
  }
  return !line.empty();
}

int ChildProcess::wait() {
  if (waited_) return status_;
  if (stdout_) {  // drain, so the child never blocks on a full pipe
    std::string ignored;
    while (read_line(ignored)) {
    }
  }
  int raw = 0;
  while (waitpid(pid_, &raw, 0) < 0 && errno == EINTR) {
  }
  waited_ = true;
  status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  return status_;
}

std::string ChildProcess::stderr_tail(std::size_t max_chars) const {
  std::ifstream file(stderr_path_);
  std::stringstream text;
  text << file.rdbuf();
  std::string all = text.str();
  while (!all.empty() && (all.back() == '\n' || all.back() == ' ')) all.pop_back();
  return all.size() > max_chars ? "..." + all.substr(all.size() - max_chars) : all;
}

void ChildProcess::wait_successfully(const std::string& what) {
  const int status = wait();
  if (status != 0) {
    throw Error(what, "failed (exit " + std::to_string(status) + "): " + stderr_tail());
  }
}

std::string executable_directory() {
  std::error_code error;
  const auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::string(".") : path.parent_path().string();
}

}  // namespace plait::costmodels::detail
