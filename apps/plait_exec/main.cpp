// plait-exec: runs a plait Program on LibTorch tensors, one MPI rank per
// Program rank. Only wiring: parse, start MPI, call plait::executor, print.
//
//   mpirun -n P plait-exec program.json [--steps K --warmup W] [--device cpu|cuda]
//          [--threads T] [--check-serial] [--trace trace.json] [--json]
//
// Further tools are subcommands (`plait-exec pingpong ...` comes from costmodels/).
#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "plait/executor/exec.hpp"
#include "plait/schedule/error.hpp"
#ifdef PLAIT_HAVE_MPI
#include "plait/executor/mpi_world.hpp"
#endif
#ifdef PLAIT_HAVE_PINGPONG
#include "plait/costmodels/pingpong.hpp"
#endif

namespace {

enum ExitCode : int { exit_ok = 0, exit_bad_input = 1, exit_usage = 2, exit_failure = 3 };

int rank_before_init() {
#ifdef PLAIT_HAVE_MPI
  return plait::executor::launcher_rank();
#else
  return 0;
#endif
}

// The rank's whole run; a throw here means this rank failed mid-run.
int run_program(plait::executor::World& world, const std::string& path,
                const plait::executor::ExecOptions& options, bool json) {
  using namespace plait::executor;
  try {
    const auto program = load_program_on_all(world, path);
    check_run(world, program, options);
    const ExecReport report = execute(world, program, options);
    if (world.rank() == 0) {
      std::fputs((json ? report_json(report) + "\n" : report_text(report)).c_str(), stdout);
      std::fflush(stdout);
    }
    return exit_ok;
  } catch (const AgreedError& error) {
    // Every rank is here (bad input): one prints, all exit cleanly.
    if (world.rank() == error.reporter) std::fprintf(stderr, "plait-exec: %s\n", error.what());
    return exit_bad_input;
  } catch (const std::exception& error) {
    // Only this rank failed: the others may wait on it forever, so abort them.
    std::fprintf(stderr, "plait-exec: rank %d: %s\n", world.rank(), error.what());
    std::fflush(stderr);
    world.abort(exit_failure);
  }
  return exit_failure;  // not reached: abort ends the process
}

}  // namespace

int main(int argc, char** argv) {
#ifdef PLAIT_HAVE_PINGPONG
  if (argc > 1 && std::string(argv[1]) == "pingpong") return plait::costmodels::run_pingpong_main(argc, argv);
#endif
  CLI::App app{"plait-exec: run a plait Program on LibTorch tensors and MPI ranks"};
  std::string program_path;
  plait::executor::ExecOptions options;
  bool json = false;
  app.add_option("program", program_path, "Program JSON (from `plait schedule`)");
  app.add_option("--steps", options.steps, "timed steps (forward + loss + backward)")->capture_default_str();
  app.add_option("--warmup", options.warmup, "untimed steps before them")->capture_default_str();
  app.add_option("--device", options.device, "cpu, cuda (GPU = node-local rank mod GPUs) or cuda:N")->capture_default_str();
  app.add_option("--threads", options.threads, "intra-op threads per rank")->capture_default_str();
  app.add_flag("--check-serial", options.check_serial,
               "compare output and gradients with the serial baseline");
  app.add_flag("!--no-serial", options.measure_serial, "do not time the serial baseline");
  app.add_option("--trace", options.trace_path, "record one more step and write its trace here");
  app.add_flag("--json", json, "print one JSON line instead of text");
  app.add_flag("!--recompute", options.keep_step_graphs,
               "adjoint steps recompute their forward step instead of keeping its graph (less memory)");
  app.add_option("--fail-rank", options.fail_rank, "fault injection for tests: this rank throws")
      ->group("");  // hidden
  app.add_flag("--fail-signal", options.fail_by_signal, "with --fail-rank: the rank dies by SIGKILL")->group("");
  // Subcommands (e.g. pingpong) are added here by their components; a run
  // without one needs the program file.
  app.require_subcommand(0, 1);

  try {
    app.parse(argc, argv);
    if (app.get_subcommands().empty() && program_path.empty())
      throw CLI::RequiredError("program");
  } catch (const CLI::ParseError& error) {
    if (rank_before_init() != 0) return error.get_exit_code() == 0 ? exit_ok : exit_usage;
    const int code = app.exit(error);
    return code == 0 ? exit_ok : exit_usage;
  }
  if (!app.get_subcommands().empty()) return exit_ok;  // the subcommand's callback did the work

#ifdef PLAIT_HAVE_MPI
  plait::executor::MpiSession session(argc, argv);
  const auto world = plait::executor::make_mpi_world();
#else
  const auto world = std::make_unique<plait::executor::SelfWorld>();
#endif
  return run_program(*world, program_path, options, json);
}
