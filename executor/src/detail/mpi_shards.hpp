// Sharded data parallelism's collectives on MPI (plait::executor_mpi):
// reduce-scatter and all-gather of packed fp32 buffers over a group of ranks.
// Executor-private: it includes mpi.h.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include <mpi.h>

namespace plait::executor::detail {

// Errors come back as return codes (MPI_ERRORS_RETURN) and become plait::Error.
void check_mpi(int code, const std::string& where);

// `values` is n fp32 elements, padded with zeros to D c (c = ceil(n / D), D =
// group.size()); member k (this rank's place in `group`, ascending) owns
// elements [k c, (k + 1) c). Both run as point-to-point messages on `comm`
// under `tag` (every member calls them in the same order), so that no other
// rank takes part and the sums are added in group order, bit for bit as the
// group-order gradient all-reduce adds them.
//
// Returns n elements: this member's shard summed over the group, zeros elsewhere.
std::vector<std::byte> reduce_scatter_fp32(MPI_Comm comm, int tag, std::span<const int> group,
                                           std::span<const std::byte> values, const std::string& where);
// Returns n elements: every shard taken from its member's `values`.
std::vector<std::byte> all_gather_fp32(MPI_Comm comm, int tag, std::span<const int> group,
                                       std::span<const std::byte> values, const std::string& where);

}  // namespace plait::executor::detail
