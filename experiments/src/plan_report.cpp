// report.md of `plait plan`: the best split of each kind at each GPU count,
// the refusals by reason, and two plots: the best step against GPUs (one line
// per kind) and memory against step time with the Pareto front marked.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "detail/report.hpp"
#include "plait/experiments/plan.hpp"
#include "plait/schedule/files.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::experiments {
namespace {

namespace fs = std::filesystem;

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", seconds);
  return text;
}

// kind -> gpus -> its fastest kept candidate.
std::map<std::string, std::map<int, const Candidate*>> best_of_each_kind(const std::vector<Candidate>& kept) {
  std::map<std::string, std::map<int, const Candidate*>> best;
  for (const Candidate& c : kept) {
    const Candidate*& slot = best[c.kind][c.gpus];
    if (!slot || c.step_s() < slot->step_s()) slot = &c;
  }
  return best;
}

// Kept candidates no other beats on both step time and memory.
std::vector<const Candidate*> pareto_front(const std::vector<const Candidate*>& candidates) {
  std::vector<const Candidate*> sorted = candidates, front;
  std::sort(sorted.begin(), sorted.end(), [](const Candidate* x, const Candidate* y) {
    return x->step_s() != y->step_s() ? x->step_s() < y->step_s() : x->memory_bytes < y->memory_bytes;
  });
  for (const Candidate* c : sorted)
    if (front.empty() || c->memory_bytes < front.back()->memory_bytes) front.push_back(c);
  return front;
}

const char* preamble = "set terminal pngcairo size 1100,650 font ',11'\nset grid\nset key outside right top\n";

}  // namespace

std::vector<std::string> write_plan_report(const std::string& output_dir, const PlanRequest& request,
                                           const PlanResult& result) {
  const fs::path dir(output_dir);
  fs::create_directories(dir / "plots");
  std::vector<std::string> written;
  const auto best = best_of_each_kind(result.kept);

  // Best step against GPUs, one line per kind.
  std::ostringstream data, script;
  script << preamble << "set output 'best_step_vs_gpus.png'\nset logscale xy\nset xlabel 'GPUs'\n"
         << "set autoscale xfix\nset offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\nset ylabel 'best step time (s)'\nset title '" << request.model.name
         << ": the fastest split of each kind that fits'\nplot ";
  int index = 0;
  for (const auto& [kind, by_gpus] : best) {
    data << "# " << kind << '\n';
    for (const auto& [gpus, c] : by_gpus) data << gpus << ' ' << c->step_s() << '\n';
    data << "\n\n";
    script << (index ? ", " : "") << "'best_step_vs_gpus.dat' index " << index << " using 1:2 with linespoints pt 7 lw 2 title '"
           << kind << "'";
    ++index;
  }
  write_text_file((dir / "plots" / "best_step_vs_gpus.dat").string(), data.str());
  if (index > 0 && detail::draw_plot((dir / "plots").string(), "best_step_vs_gpus", script.str() + "\n"))
    written.push_back("plots/best_step_vs_gpus.png");

  // Memory against step time at the largest GPU count, the Pareto front as a line.
  const int gpus = request.gpus.empty() ? 0 : *std::max_element(request.gpus.begin(), request.gpus.end());
  std::vector<const Candidate*> at_gpus;
  for (const Candidate& c : result.kept)
    if (c.gpus == gpus) at_gpus.push_back(&c);
  if (!at_gpus.empty()) {
    std::ostringstream points;
    std::set<std::string> kinds;
    for (const Candidate* c : at_gpus) kinds.insert(c->kind);
    std::ostringstream plot;
    plot << preamble << "set output 'memory_vs_step.png'\nset logscale x\nset xlabel 'step time (s)'\n"
         << "set ylabel 'memory of the fullest GPU (GiB)'\nset title '" << request.model.name << " on " << gpus
         << " GPUs: every split that fits, the Pareto front joined'\nplot ";
    int block = 0;
    for (const std::string& kind : kinds) {
      points << "# " << kind << '\n';
      for (const Candidate* c : at_gpus)
        if (c->kind == kind) points << c->step_s() << ' ' << c->memory_bytes / 1073741824.0 << '\n';
      points << "\n\n";
      plot << (block ? ", " : "") << "'memory_vs_step.dat' index " << block << " using 1:2 with points pt 7 ps 0.6 title '"
           << kind << "'";
      ++block;
    }
    points << "# pareto\n";
    for (const Candidate* c : pareto_front(at_gpus)) points << c->step_s() << ' ' << c->memory_bytes / 1073741824.0 << '\n';
    plot << ", 'memory_vs_step.dat' index " << block << " using 1:2 with linespoints lc 'black' lw 2 pt 6 title 'Pareto front'\n";
    write_text_file((dir / "plots" / "memory_vs_step.dat").string(), points.str());
    if (detail::draw_plot((dir / "plots").string(), "memory_vs_step", plot.str())) written.push_back("plots/memory_vs_step.png");
  }

  std::ostringstream report;
  report << "# plait plan: " << request.model.name << " (" << request.model.layers << " layers, width "
         << request.model.d_model << ", " << request.model.heads << " heads, sequence " << request.model.seq
         << "), global batch " << request.global_batch << ", platform " << request.platform.name << "\n\n"
         << "Profile `" << request.profile << "`, per-kernel host overhead priced " << result.host_overhead_s * 1e6
         << " us" << (request.host_overhead_s ? " (--host-overhead)" : " (the profile's fitted value)") << ".\n\n"
         << "## The fastest split of each kind\n\n| GPUs | kind | split | step (s) | SimGrid (s) | memory | grad error |\n"
         << "| ---: | --- | --- | ---: | ---: | ---: | ---: |\n";
  for (const int g : request.gpus)
    for (const auto& [kind, by_gpus] : best)
      if (const auto found = by_gpus.find(g); found != by_gpus.end()) {
        const Candidate& c = *found->second;
        report << "| " << g << " | " << kind << " | " << c.label() << " | " << seconds_text(c.estimated_s) << " | "
               << (c.simulated_s ? seconds_text(*c.simulated_s) : "-") << " | "
               << schedule::format_bytes(double(c.memory_bytes)) << " | " << c.grad_error << " |\n";
      }
  if (!result.lean.empty()) {
    report << "\n## With a lean host: " << result.lean_host_overhead_s * 1e6 << " us a kernel instead of "
           << result.host_overhead_s * 1e6 << " us\n\nThe same splits (memory and gradient error do not depend "
           << "on it), estimated again.\n\n| GPUs | kind | best at " << result.host_overhead_s * 1e6
           << " us | step (s) | best at " << result.lean_host_overhead_s * 1e6 << " us | step (s) |\n"
           << "| ---: | --- | --- | ---: | --- | ---: |\n";
    const auto lean = best_of_each_kind(result.lean);
    for (const int g : request.gpus)
      for (const auto& [kind, by_gpus] : best)
        if (const auto found = by_gpus.find(g); found != by_gpus.end()) {
          const Candidate& fitted = *found->second;
          const Candidate& leaner = *lean.at(kind).at(g);
          report << "| " << g << " | " << kind << " | " << fitted.label() << " | " << seconds_text(fitted.estimated_s)
                 << " | " << (leaner.label() == fitted.label() ? "the same" : leaner.label()) << " | "
                 << seconds_text(leaner.estimated_s) << " |\n";
        }
  }
  report << "\n## The ten best of each GPU count (every candidate: plan.csv)\n\n```\n" << plan_table(result, 10) << "```\n";
  // kind -> reason -> count, with the kept as "kept".
  std::map<std::string, std::map<std::string, int>> counts;
  for (const Candidate& c : result.kept) ++counts[c.kind]["kept"];
  for (const Candidate& c : result.refused) ++counts[c.kind][c.refused.substr(0, c.refused.find(':'))];
  report << "\n## Searched, kept and refused, by kind\n\n";
  for (const auto& [kind, by_reason] : counts) {
    report << "- " << kind << ":";
    for (const auto& [reason, count] : by_reason) report << " " << count << " " << reason << ";";
    report << "\n";
  }
  for (const std::string& png : written) report << "\n![" << png << "](" << png << ")\n";
  write_text_file((dir / "report.md").string(), report.str());
  written.insert(written.begin(), "report.md");
  return written;
}

}  // namespace plait::experiments
