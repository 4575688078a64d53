#include "detail/mpi_shards.hpp"

#include <algorithm>
#include <climits>
#include <cstring>

#include "plait/schedule/error.hpp"

namespace plait::executor::detail {

void check_mpi(int code, const std::string& where) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(where, std::string(text, std::size_t(length)));
}

namespace {

// The layout of one sharded buffer as this rank sees it.
struct Shards {
  std::size_t elements = 0;  // n, unpadded
  std::size_t shard = 0;     // c
  std::size_t mine = 0;      // k
  int me = 0;                // this rank in `comm`
  std::vector<float> padded; // D c: the values, then zeros

  Shards(MPI_Comm comm, std::span<const int> group, std::span<const std::byte> values, const std::string& where)
      : elements(values.size() / sizeof(float)) {
    if (values.size() % sizeof(float) != 0) throw Error(where, "a buffer of " + std::to_string(values.size()) + " bytes is not fp32");
    MPI_Comm_rank(comm, &me);
    const auto found = std::find(group.begin(), group.end(), me);
    if (found == group.end()) throw Error(where, "rank " + std::to_string(me) + " is not in its own group");
    mine = std::size_t(found - group.begin());
    shard = (elements + group.size() - 1) / group.size();
    if (shard > std::size_t(INT_MAX)) throw Error(where, "a shard of over 2^31 elements");
    padded.assign(group.size() * shard, 0.0f);
    if (elements > 0) std::memcpy(padded.data(), values.data(), values.size());
  }

  const float* of(std::size_t member) const { return padded.data() + member * shard; }

  // The first n of D c elements, as bytes.
  std::vector<std::byte> unpadded(const float* values) const {
    std::vector<std::byte> out(elements * sizeof(float));
    if (elements > 0) std::memcpy(out.data(), values, out.size());
    return out;
  }
};

// Posts to each other member the shard `shard_for(member)` points at (it
// must stay alive until the requests complete).
template <class ShardFor>
std::vector<MPI_Request> send_to_others(const Shards& shards, std::span<const int> group, MPI_Comm comm, int tag,
                                        const std::string& where, ShardFor shard_for) {
  std::vector<MPI_Request> sends;
  for (std::size_t member = 0; member < group.size(); ++member)
    if (member != shards.mine)
      check_mpi(MPI_Isend(shard_for(member), int(shards.shard), MPI_FLOAT, group[member], tag, comm, &sends.emplace_back()),
                where);
  return sends;
}

void receive(float* into, int count, int peer, MPI_Comm comm, int tag, const std::string& where) {
  MPI_Status status;
  check_mpi(MPI_Recv(into, count, MPI_FLOAT, peer, tag, comm, &status), where);
  int got = 0;
  MPI_Get_count(&status, MPI_FLOAT, &got);
  if (got != count)
    throw Error(where, "rank " + std::to_string(peer) + " sent a shard of " + std::to_string(got) +
                           " elements, this rank's is " + std::to_string(count));
}

}  // namespace

std::vector<std::byte> reduce_scatter_fp32(MPI_Comm comm, int tag, std::span<const int> group,
                                           std::span<const std::byte> values, const std::string& where) {
  const Shards shards(comm, group, values, where);
  if (shards.elements == 0) return {};
  const int count = int(shards.shard);
  std::vector<MPI_Request> sends =
      send_to_others(shards, group, comm, tag, where, [&](std::size_t member) { return shards.of(member); });
  std::vector<float> sum(shards.shard), part(shards.shard);
  for (std::size_t member = 0; member < group.size(); ++member) {
    const float* values_of = shards.of(member);
    if (member != shards.mine) {
      receive(part.data(), count, group[member], comm, tag, where);
      values_of = part.data();
    }
    if (member == 0) std::copy(values_of, values_of + shards.shard, sum.begin());
    else
      for (std::size_t i = 0; i < shards.shard; ++i) sum[i] += values_of[i];
  }
  check_mpi(MPI_Waitall(int(sends.size()), sends.data(), MPI_STATUSES_IGNORE), where);
  std::vector<float> whole(group.size() * shards.shard, 0.0f);
  std::copy(sum.begin(), sum.end(), whole.begin() + std::ptrdiff_t(shards.mine * shards.shard));
  return shards.unpadded(whole.data());
}

std::vector<std::byte> all_gather_fp32(MPI_Comm comm, int tag, std::span<const int> group,
                                       std::span<const std::byte> values, const std::string& where) {
  const Shards shards(comm, group, values, where);
  if (shards.elements == 0) return {};
  const int count = int(shards.shard);
  std::vector<MPI_Request> sends =
      send_to_others(shards, group, comm, tag, where, [&](std::size_t) { return shards.of(shards.mine); });
  std::vector<float> whole(shards.padded.size());
  for (std::size_t member = 0; member < group.size(); ++member) {
    float* into = whole.data() + member * shards.shard;
    if (member == shards.mine) std::copy(shards.of(member), shards.of(member) + shards.shard, into);
    else receive(into, count, group[member], comm, tag, where);
  }
  check_mpi(MPI_Waitall(int(sends.size()), sends.data(), MPI_STATUSES_IGNORE), where);
  return shards.unpadded(whole.data());
}

}  // namespace plait::executor::detail
