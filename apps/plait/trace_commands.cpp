// plait compare | export
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "plait/schedule/files.hpp"
#include "plait/traces/trace.hpp"

namespace plait::cli {

void add_trace_commands(CLI::App& app) {
  struct CompareOptions {
    std::string measured, predicted;
    bool as_json = false;
  };
  auto compare = std::make_shared<CompareOptions>();
  auto* compare_command = app.add_subcommand("compare", "predicted vs measured trace: the step and each cost key");
  compare_command->add_option("measured", compare->measured, "measured trace (plait-exec --trace)")->required();
  compare_command->add_option("predicted", compare->predicted, "predicted trace (plait simulate --trace)")->required();
  compare_command->add_flag("--json", compare->as_json, "machine-readable output");
  compare_command->callback([compare] {
    const auto comparison = traces::compare(traces::load_trace(compare->measured), traces::load_trace(compare->predicted));
    if (compare->as_json) {
      std::cout << nlohmann::json(comparison).dump(2) << '\n';
    } else {
      std::cout << traces::format_comparison(comparison);
    }
  });

  struct ExportOptions {
    std::string trace, output;
  };
  auto export_options = std::make_shared<ExportOptions>();
  auto* export_command = app.add_subcommand("export", "write a trace as Chrome/Perfetto JSON (ui.perfetto.dev)");
  export_command->add_option("trace", export_options->trace, "plait trace")->required();
  export_command->add_option("-o,--output", export_options->output, "Perfetto JSON to write")->required();
  export_command->callback([export_options] {
    write_text_file(export_options->output, traces::dump_perfetto(traces::load_trace(export_options->trace)));
  });
}

}  // namespace plait::cli
