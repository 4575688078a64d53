// plait import | breakdown: traces recorded by other tools (Kineto, Chakra)
// into plait's format, and where their time went.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "plait/experiments/breakdown_plot.hpp"
#include "plait/schedule/error.hpp"
#include "plait/traces/breakdown.hpp"
#include "plait/traces/chakra.hpp"
#include "plait/traces/dependency_replay.hpp"
#include "plait/traces/import.hpp"

namespace plait::cli {
namespace {

bool is_chakra(const std::string& path) { return path.ends_with(".et") || path.ends_with(".et.gz"); }

std::string format_of(const std::vector<std::string>& paths, const std::string& asked) {
  if (asked != "auto") return asked;
  const auto chakra = std::count_if(paths.begin(), paths.end(), is_chakra);
  if (chakra > 0 && chakra < static_cast<long>(paths.size())) {
    throw Error("plait import", "Chakra (.et) and other files mixed: import one format at a time");
  }
  return chakra ? "chakra" : "kineto";
}

void print_summary(const traces::Trace& trace, const std::string& format, double seconds) {
  std::map<std::string, long> kinds;
  std::set<std::int64_t> instances;
  std::set<int> ranks, steps;
  for (const traces::Event& event : trace.events) {
    ranks.insert(event.rank);
    if (event.kind == "step") steps.insert(event.repetition);
    kinds[event.kind] += 1;
    if (event.collective >= 0) instances.insert(event.collective);
  }
  std::printf("imported %s: %zu events on %zu of %d ranks in %.2f s", format.c_str(), trace.events.size(), ranks.size(),
              trace.ranks, seconds);
  if (!steps.empty()) std::printf(", steps %d..%d", *steps.begin(), *steps.rbegin());
  std::printf("\n ");
  for (const auto& [kind, count] : kinds) std::printf(" %s %ld", kind.empty() ? "other" : kind.c_str(), count);
  std::printf("; %zu collective instances\n", instances.size());
}

}  // namespace

void add_import_commands(CLI::App& app) {
  struct ImportArgs {
    std::vector<std::string> inputs;
    std::string output, format = "auto";
    int step = -1;
  };
  auto args = std::make_shared<ImportArgs>();
  auto* command = app.add_subcommand("import", "import PyTorch profiler (Kineto) or Chakra traces into plait's format");
  command->add_option("traces", args->inputs, "one file per rank: Kineto .json/.json.gz, or Chakra {prefix}.{rank}.et")
      ->required();
  command->add_option("-o,--output", args->output, "plait trace to write")->required();
  command->add_option("--format", args->format, "auto (.et: chakra), kineto or chakra")
      ->check(CLI::IsMember({"auto", "kineto", "chakra"}))->capture_default_str();
  command->add_option("--step", args->step, "keep ProfilerStep#N only (Kineto; default: every step)");
  command->callback([args] {
    const auto started = std::chrono::steady_clock::now();
    const std::string format = format_of(args->inputs, args->format);
    traces::Trace trace;
    traces::ImportNotes notes;
    if (format == "chakra") {
      if (args->step >= 0) throw Error("plait import", "--step: Chakra traces have no profiler steps");
      trace = traces::schedule_as_soon_as_possible(traces::read_chakra(args->inputs));
    } else {
      traces::KinetoImportOptions options;
      if (args->step >= 0) options.step = args->step;
      trace = traces::import_kineto(args->inputs, options, notes);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    traces::save_trace(trace, args->output);
    print_summary(trace, format, seconds);
    if (format == "kineto") {
      std::printf("  collectives matched across ranks %d, seen on one rank only %d", notes.matched_collectives,
                  notes.unmatched_collectives);
      for (std::size_t r = 0; r < notes.clock_offsets_s.size(); ++r) {
        if (notes.clock_offsets_s[r] != 0) std::printf("; rank %zu's clock %+.1f us", r, notes.clock_offsets_s[r] * 1e6);
      }
      std::printf("\n");
    }
  });

  struct BreakdownArgs {
    std::string trace, plot;
    int top = 10;
    bool json = false;
  };
  auto breakdown_args = std::make_shared<BreakdownArgs>();
  auto* breakdown = app.add_subcommand(
      "breakdown", "where an imported trace's time went: per rank and step, collective waits, stragglers, top kernels");
  breakdown->add_option("trace", breakdown_args->trace, "imported trace (plait import)")->required();
  breakdown->add_option("--top", breakdown_args->top, "kernels and ops listed by time")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  breakdown->add_option("--plot", breakdown_args->plot, "PNG: per-rank stacked bar (gnuplot)");
  breakdown->add_flag("--json", breakdown_args->json, "machine-readable output");
  breakdown->callback([breakdown_args] {
    const traces::Trace trace = traces::load_trace(breakdown_args->trace);
    traces::Breakdown result;
    try {
      result = traces::breakdown(trace, breakdown_args->top);
    } catch (const Error& error) {
      throw error.within(breakdown_args->trace);
    }
    if (breakdown_args->json) {
      std::cout << nlohmann::json(result).dump(2) << '\n';
    } else {
      std::cout << traces::format_breakdown(result);
    }
    if (!breakdown_args->plot.empty() && !experiments::write_breakdown_plot(result, breakdown_args->plot)) {
      throw Error(breakdown_args->plot, "gnuplot could not draw it (see the .log beside it)");
    }
  });
}

}  // namespace plait::cli
