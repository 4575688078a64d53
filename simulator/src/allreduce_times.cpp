#include "plait/simulator/allreduce_times.hpp"

#include <algorithm>
#include <numeric>
#include <set>

#include <simgrid/s4u/Actor.hpp>
#include <simgrid/s4u/Barrier.hpp>
#include <simgrid/s4u/Engine.hpp>
#include <simgrid/s4u/Mailbox.hpp>

#include "collectives.hpp"
#include "engine.hpp"
#include "plait/schedule/error.hpp"
#include "platform_build.hpp"
#include "rank_actor.hpp"

namespace plait::simulator {

namespace sg4 = simgrid::s4u;

std::vector<double> simulate_allreduces(const PlatformSpec& platform, const std::vector<AllreduceCase>& cases,
                                        const SimulateOptions& options) {
  int ranks = 0;
  for (const AllreduceCase& c : cases) {
    if (c.devices < 2 || c.devices > platform.device_count())
      throw Error("all-reduce", std::to_string(c.devices) + " devices: the platform " + platform.name + " has " +
                                    std::to_string(platform.device_count()) + " (2 or more needed)");
    if (c.bytes < 1) throw Error("all-reduce", "a case of " + std::to_string(c.bytes) + " bytes");
    ranks = std::max(ranks, c.devices);
  }
  if (cases.empty()) return {};
  const std::unique_ptr<sg4::Engine> engine = detail::start_engine(options);
  const detail::BuiltPlatform built = detail::build_platform(*engine, platform);
  const std::vector<int> device_of_rank = place_ranks(platform, ranks);

  std::vector<detail::RankState> states(static_cast<std::size_t>(ranks));
  std::vector<std::vector<double>> ends(cases.size(), std::vector<double>(static_cast<std::size_t>(ranks), 0));
  std::vector<double> starts(cases.size(), 0);
  const sg4::BarrierPtr barrier = sg4::Barrier::create(static_cast<unsigned>(ranks));
  std::vector<sg4::ActorPtr> actors;
  for (int r = 0; r < ranks; ++r) {
    states[static_cast<std::size_t>(r)].rank = r;
    actors.push_back(sg4::Actor::create(
        "rank" + std::to_string(r), built.devices[static_cast<std::size_t>(device_of_rank[static_cast<std::size_t>(r)])],
        [&, r] {
          detail::RankState& state = states[static_cast<std::size_t>(r)];
          detail::SimGridComm comm(state, ranks, options.allreduce, options.eager_limit_bytes, nullptr,
                                   {.pass_bytes_per_s = platform.allreduce_pass_bytes_per_s});
          try {
            for (std::size_t i = 0; i < cases.size(); ++i) {
              barrier->wait();
              if (r == 0) starts[i] = sg4::Engine::get_clock();
              if (r >= cases[i].devices) continue;
              std::vector<int> group(static_cast<std::size_t>(cases[i].devices));
              std::iota(group.begin(), group.end(), 0);
              const schedule::Op op{.kind = schedule::OpKind::grad_allreduce, .block = 0, .span = 1,
                                    .bytes = cases[i].bytes};
              comm.collective(detail::Channel::collective, op, group, 0);
              ends[i][static_cast<std::size_t>(r)] = sg4::Engine::get_clock();
            }
            state.finished = true;
          } catch (const std::exception& error) {
            state.error = error.what();
          }
        }));
  }
  // Eager messages flow at send time: every rank receives from its ring and
  // recursive-doubling partners of every group size.
  std::set<int> sizes;
  for (const AllreduceCase& c : cases) sizes.insert(c.devices);
  for (const int size : sizes)
    for (int r = 0; r < size; ++r)
      for (const int source : detail::allreduce_sources(r, size))
        detail::mailbox_of(detail::Channel::collective, false, source, r)->set_receiver(actors[static_cast<std::size_t>(r)]);
  engine->run();
  for (const detail::RankState& state : states)
    if (!state.finished)
      throw Error("all-reduce simulation: rank " + std::to_string(state.rank),
                  state.error.empty() ? "did not finish" : state.error);
  std::vector<double> seconds;
  for (std::size_t i = 0; i < cases.size(); ++i)
    seconds.push_back(*std::max_element(ends[i].begin(), ends[i].begin() + cases[i].devices) - starts[i]);
  return seconds;
}

}  // namespace plait::simulator
