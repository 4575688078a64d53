#include "plait/simulator/memory_fit.hpp"

#include <unistd.h>

#include "plait/costmodels/costmodels.hpp"
#include "plait/schedule/error.hpp"

namespace plait::simulator {
namespace {

double machine_memory_bytes() {
  return double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
}

}  // namespace

std::vector<RankFit> memory_fit(const schedule::Program& program, const PlatformSpec& platform,
                                int optimizer_states_per_parameter) {
  const auto needed = schedule::estimate_memory(program, optimizer_states_per_parameter);
  std::vector<RankFit> fits;
  if (platform.node_devices.empty()) return fits;  // a SimGrid XML platform: no sheets
  const std::vector<int> device_of_rank = place_ranks(platform, program.ranks);
  const int per_node = int(platform.node_devices.size());
  for (int rank = 0; rank < program.ranks; ++rank) {
    const DeviceSpec& device = platform.node_devices[device_of_rank[rank] % per_node];
    const costmodels::DeviceSheet sheet = costmodels::device_sheet(device.sheet);
    const double available = sheet.memory_bytes > 0 ? sheet.memory_bytes : machine_memory_bytes() / per_node;
    fits.push_back({rank, device.sheet, needed[rank], available});
  }
  return fits;
}

void check_memory_fits(const std::vector<RankFit>& fits) {
  for (const RankFit& fit : fits) {
    if (double(fit.needed.total()) <= fit.available_bytes) continue;
    const auto& m = fit.needed;
    throw Error("memory", "rank " + std::to_string(fit.rank) + " needs " + schedule::format_bytes(double(m.total())) +
                              " (parameters and gradients " + schedule::format_bytes(double(m.parameters + m.gradients)) +
                              (m.optimizer > 0 ? ", optimizer " + schedule::format_bytes(double(m.optimizer)) : "") +
                              ", states " + schedule::format_bytes(double(m.states)) + ", kept graphs " +
                              schedule::format_bytes(double(m.kept_graphs)) +
                              (m.messages > 0 ? ", messages in flight " + schedule::format_bytes(double(m.messages)) : "") +
                              ") but its " + fit.device + " has " +
                              schedule::format_bytes(fit.available_bytes) +
                              "; plait schedule --memory-budget recomputes graphs, --ignore-memory simulates anyway");
  }
}

}  // namespace plait::simulator
