// The breakdown's per-rank stacked bar (gnuplot): each rank's whole-trace
// span split into compute, communication and memory not under compute, idle.
#pragma once

#include <string>

#include "plait/traces/breakdown.hpp"

namespace plait::experiments {

// Writes PNG (and beside it the .gp script and its data); false when gnuplot
// is missing or fails (why: PNG with .log for .png).
bool write_breakdown_plot(const traces::Breakdown& breakdown, const std::string& png_path);

}  // namespace plait::experiments
