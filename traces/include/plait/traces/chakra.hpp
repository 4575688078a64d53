// Reading MLCommons Chakra execution traces (ET) into plait's trace format.
#pragma once

#include <string>
#include <vector>

#include "plait/traces/trace.hpp"

namespace plait::traces {

// Chakra ET files ({prefix}.{rank}.et: varint-length-prefixed protobuf, one
// GlobalMetadata then Nodes, schema mlcommons/chakra et_def.proto), one per rank,
// each possibly gzipped ({prefix}.{rank}.et.gz). The rank is the number before
// ".et" in the file name (else an error saying so).
// Chakra nodes have durations, not times: every event gets start 0 and end = its
// duration in seconds; the caller schedules them by their dependencies.
// Dependencies are the nodes' data_deps, as Chakra's own feeder (and so
// ASTRA-sim) uses them; ctrl_deps are read but not followed (see chakra.cpp).
// Nodes with is_cpu_op true (the default) are "host" events on track "cpu";
// GPU nodes are "compute" and "memory" on "gpu 0 compute", "collective", "send"
// and "recv" on "gpu 0 comm". Collectives match across ranks by process group
// and order: the k-th GPU collective of a group on each rank is one instance.
Trace read_chakra(const std::vector<std::string>& paths);
// One file's bytes (for tests and fuzzing); `origin` names it in errors.
Trace parse_chakra(const std::string& bytes, int rank, const std::string& origin);

}  // namespace plait::traces
