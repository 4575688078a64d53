// Traces recorded by other tools, imported into plait's trace format so that
// breakdown, replay, export and compare work on them (docs/commands/import.md).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "plait/traces/trace.hpp"

namespace plait::traces {

struct KinetoImportOptions {
  std::optional<int> step;  // keep ProfilerStep#N only; all steps when empty
};

// PyTorch profiler (Kineto) Chrome-trace JSON, one file per rank (.json or
// .json.gz, older and newer layouts). Keeps GPU kernels, memcpy/memset and the
// runtime calls that launch or wait for them; on a trace without GPU events,
// each thread's outermost CPU ops. Collectives are matched across ranks (the
// k-th of a process group on each member is one instance) and, where the ranks'
// clocks are not one clock, the ranks are aligned on their collectives' ends.
// Dependencies rebuilt: track order, launch -> kernel, kernel -> the
// synchronize that waits for it, a kernel that started late just as another
// stream's event ended -> that event (cudaStreamWaitEvent, unlinked in the
// trace), a worker thread's collective -> the next op of the thread that
// waited for it. Errors name the file and what is wrong.
Trace import_kineto(const std::vector<std::string>& paths, const KinetoImportOptions& options = {});

// What linking did, for the importer's summary line.
struct ImportNotes {
  std::vector<double> clock_offsets_s;  // per rank, added to align its clock (0 on one clock)
  int matched_collectives = 0;          // instances with two or more members
  int unmatched_collectives = 0;        // collectives seen on one rank only
};
Trace import_kineto(const std::vector<std::string>& paths, const KinetoImportOptions& options, ImportNotes& notes);

}  // namespace plait::traces
