// plait-exec: runs a plait Program on LibTorch tensors, one MPI rank per
// Program rank. Only wiring: parse, start MPI, call plait::executor, print.
//
//   mpirun -n P plait-exec program.json [--steps K --warmup W] [--device cpu|cuda]
//          [--threads T] [--check-serial] [--trace trace.json] [--json]
//
//   mpirun -n P plait-exec train config.json [--out DIR] [--steps N] [--mode serial|mgrit]
//          [--device cpu|cuda] [--resume] [--force] [--threads T] [--predictions FILE]
//
// Further tools are subcommands (`plait-exec pingpong ...` comes from costmodels/).
// Exit codes: 0 done, 1 bad input (program, config, data, checkpoint, a
// non-finite loss), 2 usage, 3 a rank failed mid-run.
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "plait/executor/exec.hpp"
#include "plait/executor/train.hpp"
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
int guarded(plait::executor::World& world, const std::function<void()>& run) {
  using plait::executor::AgreedError;
  try {
    run();
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

int run_program(plait::executor::World& world, const std::string& path,
                const plait::executor::ExecOptions& options, bool json) {
  using namespace plait::executor;
  return guarded(world, [&] {
    const auto program = load_program_on_all(world, path);
    check_run(world, program, options);
    const ExecReport report = execute(world, program, options);
    if (world.rank() == 0) {
      std::fputs((json ? report_json(report) + "\n" : report_text(report)).c_str(), stdout);
      std::fflush(stdout);
    }
  });
}

int run_training(plait::executor::World& world, const std::string& path,
                 const plait::executor::TrainOverrides& overrides) {
  using namespace plait::executor;
  return guarded(world, [&] {
    const auto config = load_train_config_on_all(world, path, overrides);
    const TrainSummary summary = train(world, config, overrides);
    if (world.rank() == 0) {
      std::fputs(summary_text(summary).c_str(), stdout);
      std::printf("results in %s (metrics.jsonl, metrics.csv, summary.json, checkpoint/)\n", config.out.c_str());
      std::fflush(stdout);
    }
  });
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
  app.add_flag("--speed-probe", options.speed_probe,
               "before and after the timed steps, time a forward step of each block on every rank (speed_probe_s in --json)");
  app.add_flag("--json", json, "print one JSON line instead of text");
  app.add_flag("!--recompute", options.keep_step_graphs,
               "adjoint steps recompute their forward step instead of keeping its graph (less memory)");
  app.add_option("--fail-rank", options.fail_rank, "fault injection for tests: this rank throws")
      ->group("");  // hidden
  app.add_flag("--fail-signal", options.fail_by_signal, "with --fail-rank: the rank dies by SIGKILL")->group("");
  // Subcommands (e.g. pingpong) are added here by their components; a run
  // without one needs the program file.
  auto* train = app.add_subcommand("train", "layer-parallel training from a config (plait.train JSON)");
  std::string config_path;
  plait::executor::TrainOverrides overrides;
  std::string out, mode, device;
  int steps = 0;
  train->add_option("config", config_path, "training config (e.g. experiments/train-char-lm.json)")->required();
  train->add_option("--out", out, "output directory (overrides the config's out)");
  train->add_option("--steps", steps, "optimizer steps (overrides the config)");
  train->add_option("--mode", mode, "serial or mgrit (overrides the config; a multilevel config trains single-level)");
  train->add_option("--device", device, "cpu, cuda or cuda:N (overrides the config)");
  train->add_flag("--resume", overrides.resume, "continue from the output directory's checkpoint");
  train->add_flag("--force", overrides.force, "replace another run's results in the output directory");
  train->add_option("--threads", overrides.threads, "intra-op threads per rank")->capture_default_str();
  train->add_option("--predictions", overrides.predictions_path,
                    "predicted step times per solver setting (written by plait train --profile)");
  train->add_option("--inject-nan-at", overrides.inject_nan_at_step, "fault injection for tests")->group("");
  train->add_flag("--check-correction", overrides.check_correction,
                  "multilevel: record how far each cycle's coarse gradient is from the restricted fine gradient");
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
  const bool training = train->parsed();
  if (!training && !app.get_subcommands().empty()) return exit_ok;  // the subcommand's callback did the work
  if (!out.empty()) overrides.out = out;
  if (!mode.empty()) overrides.mode = mode;
  if (!device.empty()) overrides.device = device;
  if (train->count("--steps")) overrides.steps = steps;

#ifdef PLAIT_HAVE_MPI
  plait::executor::MpiSession session(argc, argv);
  const auto world = plait::executor::make_mpi_world();
#else
  const auto world = std::make_unique<plait::executor::SelfWorld>();
#endif
  if (training) return run_training(*world, config_path, overrides);
  return run_program(*world, program_path, options, json);
}
