// plait plan: which split to run. Wires the platform (simulator) and the
// request into experiments::plan, and prints or writes what it found.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "plait/costmodels/costmodels.hpp"
#include "plait/experiments/plan.hpp"
#include "plait/experiments/sweep.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/simulator/platform.hpp"

namespace plait::cli {
namespace {

experiments::PlanPlatform plan_platform(const std::string& name) {
  const simulator::PlatformSpec spec = simulator::load_platform(simulator::find_platform(name));
  if (spec.node_devices.empty() || spec.node_devices.front().sheet.empty())
    throw Error("--platform " + name, "its devices name no device sheet (a platform file with nodes of devices is needed)");
  experiments::PlanPlatform platform;
  platform.name = name;
  platform.devices_per_node = int(spec.node_devices.size());
  platform.device_sheet = spec.node_devices.front().sheet;
  platform.device_memory_bytes = costmodels::device_sheet(platform.device_sheet).memory_bytes;
  platform.intra_latency_s = spec.intra_node.latency_s;
  platform.intra_bytes_per_s = spec.intra_node.bandwidth_bytes_per_s;
  platform.allreduce_pass_bytes_per_s = spec.allreduce_pass_bytes_per_s;
  if (spec.nodes > 1 && spec.inter_node.topology == simulator::Topology::star) {
    platform.inter_latency_s = spec.inter_node.link.latency_s;
    platform.inter_bytes_per_s = spec.inter_node.link.bandwidth_bytes_per_s;
    platform.hierarchical_collectives = spec.inter_node.hierarchical_collectives;
    platform.inter_collective_overhead_s = spec.inter_node.collective_overhead_s;
  }
  return platform;
}

std::vector<int> parse_gpu_counts(const std::string& text) {
  std::vector<int> out;
  std::stringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    const auto value = number_of_field(item);
    if (!value || *value < 1 || *value != double(int(*value)))
      throw Error("--gpus " + text, "\"" + item + "\" is not a positive whole number");
    out.push_back(int(*value));
  }
  return out;
}

std::vector<int> parse_zero_stages(const std::string& text) {
  std::vector<int> out;
  std::stringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    const auto value = number_of_field(item);
    if (!value || *value < 0 || *value > 3 || *value != double(int(*value)))
      throw Error("--zero " + text, "\"" + item + "\" is not a ZeRO stage (0, 1, 2 or 3)");
    out.push_back(int(*value));
  }
  if (out.empty()) throw Error("--zero", "expected stages, e.g. 0,1,3");
  return out;
}

std::vector<std::string> parse_kinds(const std::string& text) {
  if (text == "all") return {"gpipe", "1f1b", "1f1b-interleaved", "zb-h1", "mgrit"};
  std::vector<std::string> out;
  std::stringstream items(text);
  for (std::string item; std::getline(items, item, ',');) out.push_back(item);
  return out;
}

std::string models_help() {
  std::string text = "gpt (with --layers, --d-model, --heads, --seq, --vocab) or a named shape:";
  for (const experiments::PlannedModel& m : experiments::named_models()) text += " " + m.name;
  return text;
}

}  // namespace

void add_plan_command(CLI::App& app) {
  struct Options {
    std::string model = "gpt", gpus, kinds = "all", output = "plan-out", zero = "0";
    experiments::PlannedModel shape{"custom", 0, 0, 0, 2048, 51200, ""};
    experiments::PlanRequest request;
    double host_overhead_s = -1;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  auto& request = options->request;
  request.profile = "docs/gpu/a100-node-fitted.json";
  request.platform.name = "a100-cluster";
  auto* plan = app.add_subcommand("plan", "which split to run: every kind, TP/PP/DP and micro-batch searched, sized and ranked; the best simulated");
  plan->add_option("--model", options->model, models_help())->capture_default_str();
  plan->add_option("--layers", options->shape.layers, "--model gpt: blocks");
  plan->add_option("--d-model", options->shape.d_model, "--model gpt: width");
  plan->add_option("--heads", options->shape.heads, "--model gpt: attention heads");
  plan->add_option("--seq", options->shape.seq, "--model gpt: sequence length")->capture_default_str();
  plan->add_option("--vocab", options->shape.vocab, "--model gpt: vocabulary")->capture_default_str();
  plan->add_option("--global-batch", request.global_batch, "samples a step (all replicas)")->required();
  plan->add_option("--gpus", options->gpus, "GPU counts, comma-separated (e.g. 64,128,256)")->required();
  plan->add_option("--platform", request.platform.name, "platform name or file (nodes of devices; a star cluster grows to the GPUs)")
      ->capture_default_str();
  plan->add_option("--profile", request.profile, "fitted GPU profile pricing the ops")->capture_default_str();
  plan->add_option("--kinds", options->kinds, "all, or some of mgrit,gpipe,1f1b,1f1b-interleaved,zb-h1")->capture_default_str();
  plan->add_option("--max-grad-error", request.max_grad_error, "MGRIT: largest relative gradient error kept")->capture_default_str();
  plan->add_option("--memory-fraction", request.memory_fraction, "of a GPU's memory a split may use")->capture_default_str();
  plan->add_option("--frozen", request.frozen_blocks, "the first K blocks frozen (forward only; pipelines: MGRIT solves over every block)")
      ->capture_default_str();
  plan->add_option("--zero", options->zero,
                   "ZeRO stages searched where dp > 1, comma-separated (e.g. 0,1,3: plain, Megatron's distributed "
                   "optimizer, FSDP with prefetch)")
      ->capture_default_str();
  plan->add_flag("--sequence-parallel", request.sequence_parallel,
                 "also search Megatron's sequence parallelism beside each tp > 1");
  plan->add_flag("--selective-recompute", request.selective_recompute,
                 "also search selective recompute (attention's core) beside none and full");
  plan->add_option("--host-overhead", options->host_overhead_s, "seconds the host adds to each kernel (default: the profile's fitted value)");
  plan->add_option("--top", request.top, "the best of each GPU count simulated with SimGrid (0: none)")->capture_default_str();
  plan->add_option("-j,--jobs", request.jobs, "threads estimating, and simulations at a time")->capture_default_str();
  plan->add_option("-o,--output", options->output, "directory for plan.csv, report.md, plots/")->capture_default_str();
  plan->add_flag("--json", options->json, "print the plan as JSON instead of the table");
  plan->callback([options] {
    auto& request = options->request;
    if (options->model == "gpt") {
      request.model = options->shape;
      if (request.model.layers < 1 || request.model.d_model < 1 || request.model.heads < 1)
        throw Error("--model gpt", "needs --layers, --d-model and --heads (or a named model: " + models_help() + ")");
    } else {
      request.model = experiments::find_model(options->model);
    }
    request.gpus = parse_gpu_counts(options->gpus);
    request.kinds = parse_kinds(options->kinds);
    request.zero_stages = parse_zero_stages(options->zero);
    if (options->host_overhead_s >= 0) request.host_overhead_s = options->host_overhead_s;
    request.platform = plan_platform(request.platform.name);
    if (!std::filesystem::exists(request.profile))
      throw Error("--profile " + request.profile, "no such file (the shipped fits are in docs/gpu/)");
    request.output_dir = options->output;
    request.plait_binary = this_binary();
    const bool progress = experiments::progress_on_terminal();
    const experiments::PlanResult result = experiments::plan(
        request, [progress](std::size_t done, std::size_t total, const std::string& what) {
          if (progress) std::fprintf(stderr, "\r%zu/%zu %-60.60s", done, total, what.c_str());
          if (progress && done == total) std::fputc('\n', stderr);
        });
    std::filesystem::create_directories(options->output);
    write_text_file(options->output + "/plan.csv", experiments::plan_csv(result));
    experiments::write_plan_report(options->output, request, result);
    if (options->json) {
      std::cout << experiments::plan_json(result) << '\n';
      return;
    }
    std::cout << experiments::plan_table(result, 5) << "wrote " << options->output << "/plan.csv, "
              << options->output << "/report.md\n";
  });
}

}  // namespace plait::cli
