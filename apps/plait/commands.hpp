// Each component's subcommands register themselves on the `plait` app here;
// callbacks throw plait::Error on bad input, and main() prints it once.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "plait/schedule/program.hpp"

namespace plait::cli {

// Exit codes of every plait binary (documented in README.md).
enum ExitCode : int {
  exit_ok = 0,
  exit_bad_input = 1,  // invalid file, program, setting; failed check
  exit_usage = 2,      // command line could not be parsed
  exit_failure = 3,    // a run failed (a child process, an MPI rank, a simulation)
};

void add_schedule_commands(CLI::App& app);   // schedule, inspect, validate, solve
void add_costmodel_commands(CLI::App& app);  // calibrate
void add_simulator_commands(CLI::App& app);  // simulate
void add_executor_commands(CLI::App& app);   // run (starts mpirun plait-exec)
void add_trace_commands(CLI::App& app);      // compare, export
void add_import_commands(CLI::App& app);     // import (Kineto, Chakra), breakdown
void add_experiment_commands(CLI::App& app); // sweep
void add_replay_commands(CLI::App& app);     // replay (needs the simulator)
void add_allreduce_commands(CLI::App& app);  // allreduce-check (needs the simulator)
void add_plan_command(CLI::App& app);        // plan (needs the simulator's platforms)

// The path of the running plait binary (/proc/self/exe), to start it or its
// siblings (plait-exec) as child processes; throws plait::Error when unknown.
std::string this_binary();

// --optimizer auto|none|sgd-momentum|adamw: the optimizer state a rank's memory
// estimate counts (schedule::optimizer_states_per_parameter); inspect, simulate.
// auto: adamw for a full GPT step (its update op is Adam), none otherwise.
void add_optimizer_option(CLI::App& command, std::string& optimizer);
int optimizer_states(const schedule::Program& program, const std::string& optimizer);

// calibrate --from-steps FILE --platform P -o profile.json [--folds K] [--report FILE.md]
// calibrate --from-trace FILE --platform P -o profile.json [--report FILE.md]
struct FromStepsArgs {
  std::vector<std::string> steps_csvs;
  std::string trace, platform, output, report, predictions, platform_out;
  int folds = 5;
};
// Fits the platform's device sheet to the measured steps (needs the simulator's platforms).
void run_calibrate_from_steps(const FromStepsArgs& args);
// Fits it to the kernels of an imported trace (from_trace_command.cpp).
void run_calibrate_from_trace(const FromStepsArgs& args);

// The flags `plait run` gives `mpirun -n ranks` on this machine
// (--allow-run-as-root as root, --oversubscribe past the physical cores).
std::vector<std::string> mpirun_flags(int ranks);

}  // namespace plait::cli
