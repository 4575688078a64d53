// plait: the command-line front end. Only wiring: parse, call libraries, print.
#include <cstdio>
#include <exception>

#include "commands.hpp"
#include "plait/schedule/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"plait: predict and measure layer-parallel (MGRIT) training"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "plait 0.1.0");
  plait::cli::add_schedule_commands(app);
  plait::cli::add_costmodel_commands(app);
#ifdef PLAIT_HAVE_SIMGRID
  plait::cli::add_simulator_commands(app);
  plait::cli::add_replay_commands(app);
  plait::cli::add_allreduce_commands(app);
  plait::cli::add_plan_command(app);
#endif
  plait::cli::add_executor_commands(app);
  plait::cli::add_trace_commands(app);
  plait::cli::add_import_commands(app);
  plait::cli::add_experiment_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? plait::cli::exit_ok : plait::cli::exit_usage;
  } catch (const plait::Error& error) {
    std::fprintf(stderr, "plait: %s\n", error.what());
    return plait::cli::exit_bad_input;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "plait: %s\n", error.what());
    return plait::cli::exit_failure;
  }
  return plait::cli::exit_ok;
}
