// plait schedule | inspect | validate | solve
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "plait/costmodels/steps.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/reference.hpp"
#include "plait/schedule/summary.hpp"

namespace plait::cli {
namespace {

using schedule::BuildSpec;

// --recompute's value: bare, full or selective; not given: none.
void apply_recompute(const CLI::Option& option, const std::string& value, BuildSpec& spec) {
  if (option.count() == 0) return;
  if (value.empty() || value == "true" || value == "full") spec.recompute = true;
  else if (value == "selective") spec.model.selective_recompute = true;
  else throw Error("--recompute", "expected full or selective, got \"" + value + "\"");
}

// Options shared by `schedule` and `solve`: the solver settings.
void add_solver_options(CLI::App& command, BuildSpec& spec, std::string& relax,
                        std::string& backward_relax, int& backward_levels) {
  command.add_option("--layers,-N", spec.layers, "number of blocks (ODE steps)")->capture_default_str();
  command.add_option("--levels,-L", spec.forward.levels, "MGRIT levels (forward; 1 = serial sweep)")
      ->capture_default_str();
  command.add_option("--cf", spec.forward.coarsening_factor, "coarsening factor")->capture_default_str();
  command.add_option("--relax", relax, "relaxation: F or FCF")->check(CLI::IsMember({"F", "FCF"}))
      ->capture_default_str();
  command.add_option("--ranks,-P", spec.ranks, "ranks the layers are split over")->capture_default_str();
  command.add_option("--bwd-levels", backward_levels, "adjoint levels (default: forward levels)");
  command.add_option("--bwd-relax", backward_relax, "adjoint relaxation (default: --relax)")
      ->check(CLI::IsMember({"F", "FCF"}));
  command.add_flag("!--no-skip", spec.forward.skip_first_down_relax,
                   "relax on the first down-cycle too (XBraid skip=0)");
}

void finish_phases(BuildSpec& spec, const std::string& relax, const std::string& backward_relax,
                   int backward_levels) {
  spec.forward.relax = schedule::parse_relax(relax);
  spec.adjoint.levels = backward_levels > 0 ? backward_levels : spec.forward.levels;
  spec.adjoint.coarsening_factor = spec.forward.coarsening_factor;
  spec.adjoint.relax = schedule::parse_relax(backward_relax.empty() ? relax : backward_relax);
  spec.adjoint.skip_first_down_relax = spec.forward.skip_first_down_relax;
}

void print_json(const nlohmann::json& value) { std::cout << value.dump(2) << '\n'; }

std::string format_vector(const std::vector<double>& values) {
  std::string out = "[";
  char number[32];
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::snprintf(number, sizeof number, "%s%.15g", i ? ", " : "", values[i]);
    out += number;
  }
  return out + "]";
}

// --from-step FILE.csv:LINE: the Megatron step that row of measured steps ran.
schedule::Program measured_step_program(const std::string& file_and_line) {
  const auto colon = file_and_line.rfind(':');
  const std::string path = file_and_line.substr(0, colon);
  const std::string line = colon == std::string::npos ? "" : file_and_line.substr(colon + 1);
  if (line.empty() || line.find_first_not_of("0123456789") != std::string::npos || line.size() > 9)
    throw Error("--from-step", "\"" + file_and_line + "\" is not FILE.csv:LINE");
  const int number = std::stoi(line);
  for (const costmodels::StepMeasurement& step : costmodels::load_step_csv(path))
    if (step.line == number) return schedule::build_kind(costmodels::megatron_step_kind, costmodels::megatron_step_spec(step));
  throw Error("--from-step", path + " has no measured step on line " + line);
}

void add_schedule(CLI::App& app) {
  struct Options {
    BuildSpec spec;
    std::string kind = "mgrit", relax = "F", backward_relax, output, mask = "causal", model = "transformer";
    std::string dp_allreduce = "packed", ends = "split";
    int backward_levels = 0;
    std::int32_t vocab = 50304;  // GPT-2's 50,257 padded to a multiple of 128, as Megatron does
    CLI::Option* vocab_option = nullptr;
    std::string from_step;
    std::string recompute;  // full (or empty: bare) or selective
    CLI::Option* recompute_option = nullptr;
    bool fsdp = false;
  };
  auto options = std::make_shared<Options>();
  options->spec.forward.iterations = 2;
  auto* command = app.add_subcommand("schedule", "compile a training step (MGRIT, serial or a pipeline) into a Program (JSON)");
  command->add_option("--kind", options->kind,
                      "mgrit, serial, gpipe, 1f1b, 1f1b-interleaved or zb-h1 (pipelines: --ranks stages)")
      ->check(CLI::IsMember({"mgrit", "serial", "gpipe", "1f1b", "1f1b-interleaved", "zb-h1"}))
      ->capture_default_str();
  command->add_option("--virtual-stages,-v", options->spec.virtual_stages,
                      "1f1b-interleaved: chunks of blocks each stage holds (micro-batches a multiple of the stages)")
      ->capture_default_str();
  options->recompute_option = command->add_option("--recompute", options->recompute,
                      "activation checkpointing: full (bare --recompute: keep no forward graph, recompute each "
                      "block's forward in its backward step) or selective (keep the graph but attention's scores, "
                      "softmax and dropout, recomputed in the backward)")
      ->expected(0, 1);
  command->add_option("--frozen", options->spec.frozen_blocks,
                      "pipelines: the first K blocks are frozen (forward only, no gradients or all-reduce); "
                      "stages balanced by work")
      ->capture_default_str();
  command->add_flag("--repack", options->spec.repack,
                    "with --frozen: the trained blocks on the fewest stages that hold no more work each, the freed "
                    "devices as more replicas (PipeTransformer)");
  command->add_option("--micro-batches,-M", options->spec.micro_batches,
                      "pipelines: micro-batches the batch is split into (must divide --batch)")
      ->capture_default_str();
  command->add_option("--dp", options->spec.replicas,
                      "data parallelism: replicas of the --ranks layout (ranks x dp in all), each on batch / dp "
                      "samples, gradients summed at the end of the step (mgrit and pipelines)")
      ->capture_default_str();
  command->add_flag("--dp-overlap", options->spec.dp_overlap,
                    "with --dp: sum the gradients in buckets as the backward finishes them, overlapped with the rest "
                    "of the step (DDP); the executor sums each bucket in place");
  command->add_option("--bucket-bytes", options->spec.bucket_bytes,
                      "with --dp-overlap: gradient bytes of a bucket (e.g. 25MiB, DDP's default)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  command->add_option("--dp-allreduce", options->dp_allreduce,
                      "with --dp: how gradients are summed: packed (one all-reduce of each rank's gradients at the "
                      "end), bucketed (as --dp-overlap) or per-tensor (TorchBraid: one blocking all-reduce per "
                      "parameter tensor, fp32, at the end)")
      ->check(CLI::IsMember({"packed", "bucketed", "per-tensor"}))
      ->capture_default_str();
  command->add_option("--zero", options->spec.zero_stage,
                      "with --dp: sharded data parallelism (ZeRO): 1 the optimizer state, 2 also the gradients "
                      "(reduce-scattered), 3 also the parameters (all-gathered before each block step)")
      ->check(CLI::Range(0, 3))
      ->capture_default_str();
  command->add_flag("--fsdp", options->fsdp, "with --dp: PyTorch FSDP, the name of --zero 3");
  command->add_flag("--prefetch", options->spec.prefetch,
                    "with --zero 3: all-gather each block's parameters one block step early, overlapped (FSDP's "
                    "forward and backward prefetch)");
  command->add_flag("--sequence-parallel", options->spec.model.sequence_parallel,
                    "with --tp: Megatron's sequence parallelism (LayerNorms and dropouts on 1 / tp of the "
                    "sequence, each activation all-reduce a reduce-scatter and an all-gather)");
  command->add_option("--ends", options->ends,
                      "mgrit, serial: where the input and loss (and a GPT's embedding and head) run: split (the "
                      "first and the last rank) or first-rank (TorchBraid: the output state is sent to the first "
                      "rank and the loss gradient back)")
      ->check(CLI::IsMember({"split", "first-rank"}))
      ->capture_default_str();
  add_solver_options(*command, options->spec, options->relax, options->backward_relax, options->backward_levels);
  command->add_option("--fwd-iters", options->spec.forward.iterations, "forward MGRIT iterations")
      ->capture_default_str();
  command->add_option("--bwd-iters", options->spec.adjoint.iterations, "adjoint MGRIT iterations")
      ->capture_default_str();
  auto& model = options->spec.model;
  command->add_option("--model", options->model, "transformer (the block stack, mean-squared loss), gpt (a full "
                      "training step: embeddings, output layer over --vocab, cross-entropy, Adam), linear or mlp")
      ->check(CLI::IsMember({"transformer", "gpt", "linear", "mlp"}))->capture_default_str();
  options->vocab_option = command->add_option("--vocab", options->vocab, "--model gpt: vocabulary of the output layer")->capture_default_str();
  command->add_option("--tp", model.tensor_parallel,
                      "tensor parallelism (Megatron): ranks each block is split over; ranks x dp x tp in all, "
                      "tensor-parallel ranks adjacent")
      ->capture_default_str();
  command->add_option("--buffer-blocks", model.buffer_blocks,
                      "--model gpt: TorchBraid's open and close layers: this many blocks after the embedding and as "
                      "many before the head, run serially with them (priced by the simulator; the executor refuses)")
      ->capture_default_str();
  command->add_option("--d-model", model.d_model, "transformer width")->capture_default_str();
  command->add_option("--heads", model.heads, "attention heads")->capture_default_str();
  command->add_option("--seq", model.seq, "sequence length")->capture_default_str();
  command->add_option("--batch", model.batch, "batch size")->capture_default_str();
  command->add_option("--dtype", model.dtype, "fp32, bf16 or fp16")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}))->capture_default_str();
  command->add_option("--tstop", model.tstop, "ODE end time T (h = T/N)")->capture_default_str();
  command->add_option("--mask", options->mask, "attention mask: causal (decoders) or none (encoders, ViT)")
      ->check(CLI::IsMember({"causal", "none"}))->capture_default_str();
  command->add_option("--init", model.init, "block weights: normal, pytorch or depth-scaled")
      ->check(CLI::IsMember({"normal", "pytorch", "depth-scaled"}))->capture_default_str();
  command->add_option("--seed", model.seed, "weight, input and target seed")->capture_default_str();
  command->add_flag("--final-relax", options->spec.forward.final_relax,
                    "recompute the fine F-points from the final C-points after the forward solve "
                    "(more accurate gradients, N - N/cf more steps)");
  command->add_option("--memory-budget", options->spec.memory_budget_bytes,
                      "bytes per rank (e.g. 512MiB, 4GiB): keep forward graphs only within it, "
                      "recompute the rest in the adjoint")
      ->transform(CLI::AsSizeValue(false));
  command->add_option("--from-step", options->from_step,
                      "FILE.csv:LINE: the Megatron step a measured row ran (calibrate --from-steps' CSV): "
                      "1F1B, its TP, PP, DP and micro-batches, GPT, fp16, recompute; other settings ignored");
  command->add_option("-o,--output", options->output, "where to write the Program")->required();
  command->callback([options] {
    if (!options->from_step.empty()) return schedule::save_program(measured_step_program(options->from_step), options->output);
    finish_phases(options->spec, options->relax, options->backward_relax, options->backward_levels);
    options->spec.model.causal = options->mask == "causal";
    options->spec.model.kind = options->model == "gpt" ? "transformer" : options->model;
    if (options->model != "gpt" && options->vocab_option->count() > 0)
      throw Error("--vocab", "only --model gpt has a vocabulary");
    options->spec.model.vocab = options->model == "gpt" ? options->vocab : 0;
    options->spec.dp_overlap = options->spec.dp_overlap || options->dp_allreduce == "bucketed";
    options->spec.dp_per_tensor = options->dp_allreduce == "per-tensor";
    options->spec.ends_on_first_rank = options->ends == "first-rank";
    if (options->fsdp && options->spec.zero_stage != 0 && options->spec.zero_stage != 3)
      throw Error("--fsdp", "is --zero 3, not --zero " + std::to_string(options->spec.zero_stage));
    if (options->fsdp) options->spec.zero_stage = 3;
    apply_recompute(*options->recompute_option, options->recompute, options->spec);
    const std::string& kind = options->kind;
    if (!schedule::is_pipeline_kind(kind) && options->spec.micro_batches != 1)
      throw Error("--micro-batches",
                  "only pipelines (" + schedule::pipeline_kind_list() + ") split the batch, not " + kind);
    if (kind == "serial" && options->spec.replicas != 1)
      throw Error("--dp", "the serial step has no replicas: it is the one-device baseline");
    schedule::save_program(schedule::build_kind(kind, options->spec), options->output);
  });
}

}  // namespace

void add_optimizer_option(CLI::App& command, std::string& optimizer) {
  command.add_option("--optimizer", optimizer,
                     "optimizer state counted in each rank's memory: none, sgd-momentum (1 state a parameter), "
                     "adamw (2) or auto (adamw for a full GPT step, whose update op is Adam; none otherwise)")
      ->check(CLI::IsMember({"auto", "none", "sgd-momentum", "adamw"}))
      ->capture_default_str();
}

int optimizer_states(const schedule::Program& program, const std::string& optimizer) {
  if (optimizer == "auto") return schedule::optimizer_states_per_parameter(program.model.vocab > 0 ? "adamw" : "none");
  return schedule::optimizer_states_per_parameter(optimizer);
}

namespace {

void add_inspect(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto optimizer = std::make_shared<std::string>("auto");
  auto* command = app.add_subcommand("inspect", "per-rank op counts, messages, bytes, memory, critical path");
  command->add_option("program", *path, "Program JSON")->required();
  command->add_flag("--json", *as_json, "machine-readable output");
  add_optimizer_option(*command, *optimizer);
  command->callback([path, as_json, optimizer] {
    const auto program = schedule::load_program(*path);
    const auto summary = schedule::summarize(program, optimizer_states(program, *optimizer));
    if (*as_json) {
      print_json(summary);
    } else {
      std::cout << schedule::format_summary(program, summary);
    }
  });
}

void add_validate(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto* command = app.add_subcommand("validate", "check a Program: exit 0 when valid, 1 with the error when not");
  command->add_option("program", *path, "Program JSON")->required();
  command->callback([path] {
    const auto program = schedule::load_program(*path);
    std::cout << *path << ": valid (" << program.ranks << " ranks)\n";
  });
}

void add_solve(CLI::App& app) {
  struct Options {
    BuildSpec spec;
    std::string relax = "F", backward_relax;
    int backward_levels = 0, max_iterations = 0;
    bool as_json = false;
  };
  auto options = std::make_shared<Options>();
  auto& spec = options->spec;
  spec.model.kind = "linear";
  spec.forward.iterations = 2;
  auto* command = app.add_subcommand("solve", "run MGRIT on a test problem (reference backend) and compare with serial");
  command->add_option("--problem", spec.model.kind, "linear (u' = lambda u) or mlp (tanh MLP blocks)")
      ->check(CLI::IsMember({"linear", "mlp"}))->capture_default_str();
  command->add_option("--scheme", spec.model.scheme, "linear problem: forward-euler or backward-euler")
      ->check(CLI::IsMember({"forward-euler", "backward-euler"}))->capture_default_str();
  command->add_option("--lambda", spec.model.lambda, "decay rate of the linear problem")->capture_default_str();
  command->add_option("--tstop", spec.model.tstop, "end time T")->capture_default_str();
  command->add_option("--width", spec.model.width, "mlp state size")->capture_default_str();
  command->add_option("--seed", spec.model.seed, "mlp weight seed")->capture_default_str();
  add_solver_options(*command, spec, options->relax, options->backward_relax, options->backward_levels);
  command->add_option("--iters", spec.forward.iterations, "iterations per phase (fixed mode)")->capture_default_str();
  command->add_option("--tol", spec.tolerance, "stop below this residual norm (tolerance mode)");
  command->add_option("--max-iters", options->max_iterations, "iteration limit in tolerance mode (default 100)");
  command->add_flag("--json", options->as_json, "machine-readable output");
  command->callback([options] {
    auto& spec = options->spec;
    if (spec.tolerance > 0) spec.forward.iterations = options->max_iterations > 0 ? options->max_iterations : 100;
    finish_phases(spec, options->relax, options->backward_relax, options->backward_levels);
    spec.adjoint.iterations = spec.forward.iterations;
    const auto report = schedule::solve_reference(schedule::build_mgrit(spec));
    if (options->as_json) {
      print_json({{"iterations", report.iterations},
                  {"residual_norms", report.residual_norms},
                  {"adjoint_residual_norms", report.adjoint_residual_norms},
                  {"final", report.final_state},
                  {"serial_final", report.serial_final_state},
                  {"max_abs_error_vs_serial", report.max_abs_error_vs_serial},
                  {"max_abs_gradient_error_vs_serial", report.max_abs_gradient_error_vs_serial}});
      return;
    }
    std::printf("iteration  residual norm\n");
    const int offset = report.iterations - static_cast<int>(report.residual_norms.size());
    for (std::size_t i = 0; i < report.residual_norms.size(); ++i) {
      std::printf("%9zu  %.6e\n", i + 1 + offset, report.residual_norms[i]);
    }
    std::printf("final %s\nserial %s\nmax |error| vs serial: %.3e (gradients: %.3e)\n",
                format_vector(report.final_state).c_str(), format_vector(report.serial_final_state).c_str(),
                report.max_abs_error_vs_serial, report.max_abs_gradient_error_vs_serial);
  });
}

}  // namespace

void add_schedule_commands(CLI::App& app) {
  add_schedule(app);
  add_inspect(app);
  add_validate(app);
  add_solve(app);
}

}  // namespace plait::cli
