// `plait run -n P program.json [plait-exec options]` and `plait train -n P
// config.json [options]`: start mpirun with the flags this machine needs and
// the plait-exec that sits next to plait.
// plait links neither MPI nor LibTorch: this only builds a command line.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "plait/experiments/training_predictions.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/program.hpp"

namespace plait::cli {

std::string this_binary() {
  std::vector<char> path(4096);
  const ssize_t length = ::readlink("/proc/self/exe", path.data(), path.size() - 1);
  if (length <= 0) throw Error("plait", "cannot find the plait binary (/proc/self/exe)");
  return std::string(path.data(), std::size_t(length));
}

namespace {

struct RunOptions {
  int ranks = 0;
  std::string mpirun = "mpirun";
  std::string exec;  // "": the plait-exec next to plait
  bool dry_run = false;
};

bool is_executable(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string directory_of_this_binary() {
  const std::string binary = this_binary();
  return binary.substr(0, binary.find_last_of('/'));
}

// A name without a slash is looked up on PATH, as execvp would.
std::string find_on_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return is_executable(name) ? name : "";
  const char* path = std::getenv("PATH");
  std::string rest = path ? path : "";
  while (!rest.empty()) {
    const auto colon = rest.find(':');
    const std::string dir = rest.substr(0, colon);
    if (!dir.empty() && is_executable(dir + "/" + name)) return dir + "/" + name;
    if (colon == std::string::npos) break;
    rest = rest.substr(colon + 1);
  }
  return "";
}

// Open MPI gives one slot per physical core; past that it needs --oversubscribe.
int physical_cores() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, package;
  while (std::getline(cpuinfo, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (line.rfind("physical id", 0) == 0) package = value;
    if (line.rfind("core id", 0) == 0) cores.emplace(package, value);
  }
  if (!cores.empty()) return int(cores.size());
  const unsigned threads = std::thread::hardware_concurrency();
  return threads > 0 ? int(threads) : 1;
}

}  // namespace

std::vector<std::string> mpirun_flags(int ranks) {
  std::vector<std::string> flags;
  if (::geteuid() == 0) flags.push_back("--allow-run-as-root");
  if (ranks > physical_cores()) flags.push_back("--oversubscribe");
  return flags;
}

namespace {

std::vector<std::string> launch_command(const RunOptions& options, const std::vector<std::string>& exec_args) {
  const std::string exec = options.exec.empty() ? directory_of_this_binary() + "/plait-exec" : options.exec;
  if (!is_executable(exec))
    throw Error("plait run", options.exec.empty()
                                 ? "no plait-exec next to plait (" + exec + "); build with PLAIT_WITH_TORCH=ON"
                                 : "--exec " + exec + " is not an executable file");
  std::vector<std::string> command;
  const std::string mpirun = find_on_path(options.mpirun);
  if (mpirun.empty()) {
    if (options.ranks != 1) throw Error("plait run", "launcher '" + options.mpirun + "' not found on PATH");
  } else {
    command = {mpirun, "-n", std::to_string(options.ranks)};
    const std::vector<std::string> flags = mpirun_flags(options.ranks);
    command.insert(command.end(), flags.begin(), flags.end());
  }
  command.push_back(exec);
  command.insert(command.end(), exec_args.begin(), exec_args.end());
  return command;
}

// Runs the command in the foreground; returns its exit code.
int run_child(const std::vector<std::string>& command) {
  std::vector<char*> argv;
  for (const auto& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const pid_t child = ::fork();
  if (child < 0) throw std::runtime_error(std::string("plait run: fork failed: ") + std::strerror(errno));
  if (child == 0) {
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0)
    if (errno != EINTR) throw std::runtime_error("plait run: waitpid failed");
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// The Program's rank count, from the first argument that is not an option
// or an option's value (plait-exec's options with a value are listed here).
int program_ranks(const std::vector<std::string>& exec_args) {
  static const std::set<std::string> with_value = {"--steps", "--warmup", "--device", "--threads",
                                                   "--trace", "--fail-rank"};
  for (std::size_t i = 0; i < exec_args.size(); ++i) {
    if (with_value.count(exec_args[i])) {
      ++i;
      continue;
    }
    if (exec_args[i].rfind("-", 0) == 0) continue;
    return schedule::load_program(exec_args[i]).ranks;
  }
  throw Error("plait run", "missing the program file");
}

std::string join(const std::vector<std::string>& words) {
  std::string text;
  for (const auto& word : words) text += (text.empty() ? "" : " ") + word;
  return text;
}

// plait train --profile: predicts every solver setting the run may use and
// hands the predictions to plait-exec, whose metrics then carry them.
void add_predictions(std::vector<std::string>& exec_args, int ranks, std::string profile, std::string platform) {
  // --profile and --platform may also come after the config (CLI11 passes them on): take them out.
  for (std::size_t i = 1; i + 1 < exec_args.size();) {
    if (exec_args[i] == "--profile" || exec_args[i] == "--platform") {
      (exec_args[i] == "--profile" ? profile : platform) = exec_args[i + 1];
      exec_args.erase(exec_args.begin() + long(i), exec_args.begin() + long(i) + 2);
    } else {
      ++i;
    }
  }
  static const std::set<std::string> with_value = {"--out", "--steps", "--mode", "--device", "--threads", "--predictions"};
  std::string config_path, out, mode;
  for (std::size_t i = 1; i < exec_args.size(); ++i) {
    if (with_value.count(exec_args[i]) && i + 1 < exec_args.size()) {
      if (exec_args[i] == "--out") out = exec_args[i + 1];
      if (exec_args[i] == "--mode") mode = exec_args[i + 1];
      ++i;
    } else if (exec_args[i].rfind("-", 0) != 0 && config_path.empty()) {
      config_path = exec_args[i];
    }
  }
  if (config_path.empty()) throw Error("plait train", "missing the training config");
  training::TrainConfig config = training::load_train_config(config_path);
  if (profile.empty()) profile = config.profile;
  if (profile.empty()) return;
  if (!out.empty()) config.out = out;
  if (mode == "serial" || mode == "mgrit") config.solver.mode = mode;
  const std::string plait = directory_of_this_binary() + "/plait";
  const auto predictions =
      experiments::predict_training_settings(config, ranks, {plait, profile, platform}, config.out + "/predictions");
  training::save_training_predictions(predictions, config.out + "/predictions.json");
  std::printf("plait train: predicted %zu solver setting(s) with %s on %s: %s/predictions.json\n", predictions.size(),
              profile.c_str(), platform.c_str(), config.out.c_str());
  exec_args.insert(exec_args.end(), {"--predictions", config.out + "/predictions.json"});
}

void run_or_fail(const std::vector<std::string>& command, const std::string& who) {
  std::fflush(stdout);
  const int code = run_child(command);
  if (code == exit_ok) return;
  if (code == exit_bad_input) throw Error(who, "plait-exec rejected its input (exit 1)");
  throw std::runtime_error(who + ": " + join(command) + " failed with exit code " + std::to_string(code));
}

}  // namespace

void add_executor_commands(CLI::App& app) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* run = app.add_subcommand(
      "run", "Run a Program on P MPI ranks: starts `mpirun -n P plait-exec program.json [options]`");
  run->add_option("-n,--ranks", options->ranks, "MPI ranks (default: the Program's rank count)")
      ->check(CLI::PositiveNumber);
  run->add_option("--mpirun", options->mpirun, "MPI launcher (Open MPI flags)")->capture_default_str();
  run->add_option("--exec", options->exec, "the plait-exec to run (default: the one next to plait)");
  run->add_flag("--dry-run", options->dry_run, "print the command instead of running it");
  // Everything from the program file on goes to plait-exec untouched.
  run->prefix_command();
  run->footer("plait-exec options: program.json [--steps K --warmup W] [--device cpu|cuda] [--threads T]\n"
              "  [--check-serial] [--trace trace.json] [--json]");
  run->callback([run, options] {
    const std::vector<std::string> exec_args = run->remaining();
    if (exec_args.empty()) throw Error("plait run", "missing the program file");
    if (options->ranks == 0) options->ranks = program_ranks(exec_args);
    const auto command = launch_command(*options, exec_args);
    if (options->dry_run) {
      std::printf("%s\n", join(command).c_str());
      return;
    }
    run_or_fail(command, "plait run");
  });

  auto train_options = std::make_shared<RunOptions>();
  train_options->ranks = 1;
  CLI::App* train = app.add_subcommand(
      "train", "Train layer-parallel on P MPI ranks: starts `mpirun -n P plait-exec train config.json [options]`");
  train->add_option("-n,--ranks", train_options->ranks, "MPI ranks")->check(CLI::PositiveNumber)->capture_default_str();
  train->add_option("--mpirun", train_options->mpirun, "MPI launcher (Open MPI flags)")->capture_default_str();
  train->add_option("--exec", train_options->exec, "the plait-exec to run (default: the one next to plait)");
  train->add_flag("--dry-run", train_options->dry_run, "print the command instead of running it");
  auto profile = std::make_shared<std::string>();
  auto platform = std::make_shared<std::string>("local");
  train->add_option("--profile", *profile,
                    "a calibrated profile: metrics carry plait simulate's step time for each setting (default: the config's)");
  train->add_option("--platform", *platform, "platform of those predictions")->capture_default_str();
  train->prefix_command();
  train->footer("plait-exec train options: config.json [--out DIR] [--steps N] [--mode serial|mgrit]\n"
                "  [--device cpu|cuda] [--resume] [--force] [--threads T]");
  train->callback([train, train_options, profile, platform] {
    std::vector<std::string> exec_args = train->remaining();
    if (exec_args.empty()) throw Error("plait train", "missing the training config");
    exec_args.insert(exec_args.begin(), "train");
    if (!train_options->dry_run) add_predictions(exec_args, train_options->ranks, *profile, *platform);
    const auto command = launch_command(*train_options, exec_args);
    if (train_options->dry_run) {
      std::printf("%s\n", join(command).c_str());
      return;
    }
    run_or_fail(command, "plait train");
  });
}

}  // namespace plait::cli
