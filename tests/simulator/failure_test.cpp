// Runs that cannot finish, and input the simulator refuses, are errors that say why.
#include <gtest/gtest.h>

#include "error_text.hpp"
#include "plait/schedule/error.hpp"
#include "plait/simulator/simulator.hpp"
#include "support.hpp"

namespace plait::simulator {
namespace {

using namespace testing;
using schedule::OpKind;

using plait::testing::error_of;

TEST(SimulatorFailure, DeadlockNamesTheWaitingRanksAndOps) {
  // Both ranks receive first: neither ever sends.
  const auto program = program_of({{message_op(OpKind::recv, 1, 64, 0), message_op(OpKind::send, 1, 64, 0)},
                                   {step_op(0), message_op(OpKind::recv, 0, 64, 0),
                                    message_op(OpKind::send, 0, 64, 0)}}, 1);
  const std::string message = error_of([&] {
    simulate(program, cluster(1, 2, link(1e-6, 1e9)), constant_pricers({{"block.fwd", 1e-3}}));
  });
  EXPECT_NE(message.find("deadlock at t=0.001"), std::string::npos) << message;
  EXPECT_NE(message.find("2 rank(s) cannot go on"), std::string::npos) << message;
  EXPECT_NE(message.find("rank 0 in section 'sweep' op 0 (recv) waits for recv from rank 1"), std::string::npos)
      << message;
  EXPECT_NE(message.find("rank 1 in section 'sweep' op 1 (recv) waits for recv from rank 0"), std::string::npos)
      << message;
}

TEST(SimulatorFailure, AllreduceMissingOnOneRankIsADeadlock) {
  const auto program = program_of({{allreduce_op(8)}, {allreduce_op(8)}, {step_op(0)}}, 1);
  const std::string message = error_of([&] {
    simulate(program, cluster(1, 3, link(1e-6, 1e9)), constant_pricers({{"block.fwd", 1e-3}}));
  });
  EXPECT_NE(message.find("deadlock"), std::string::npos) << message;
  EXPECT_NE(message.find("(allreduce) waits for allreduce message from rank"), std::string::npos) << message;
}

TEST(SimulatorFailure, ToleranceModeProgramsAreRefused) {
  auto program = pipelined_sweep(2, 1, 8);
  program.tolerance = 1e-6;
  const std::string message =
      error_of([&] { simulate(program, cluster(1, 2, link(1e-6, 1e9)), constant_pricers({})); });
  EXPECT_NE(message.find("program: tolerance mode"), std::string::npos) << message;
  EXPECT_NE(message.find("fixed iteration counts (tolerance 0)"), std::string::npos) << message;
}

TEST(SimulatorFailure, MoreRanksThanDevicesIsRefused) {
  const std::string message = error_of([&] {
    simulate(pipelined_sweep(5, 1, 8), cluster(2, 2, link(1e-6, 1e9)), constant_pricers({}));
  });
  EXPECT_EQ(message, "test-platform: the program has 5 ranks but the platform has 4 devices (one rank per device)");
}

TEST(SimulatorFailure, ANegativePriceNamesTheOp) {
  // The serial counterpart is priced first, so it meets the bad price first.
  const std::string message = error_of([&] {
    simulate(pipelined_sweep(2, 2, 8), cluster(1, 2, link(1e-6, 1e9)), constant_pricers({{"block.fwd_keep", -1.0}}));
  });
  EXPECT_EQ(message,
            "serial counterpart on rank 0's device: cost model: op step (block.fwd_keep) priced at -1.000000 s");
}

TEST(SimulatorFailure, AnErrorInsideARankNamesTheRank) {
  const auto program = program_of({{step_op(0), message_op(OpKind::send, 7, 8, 0)}, {step_op(1)}}, 2);
  const std::string message = error_of([&] {
    simulate(program, cluster(1, 2, link(1e-6, 1e9)), constant_pricers({{"block.fwd", 1e-3}}));
  });
  EXPECT_EQ(message, "simulation: rank 0: rank 0: send to invalid peer 7");
}

TEST(SimulatorFailure, ASecondSimulationInOneProcessIsRefused) {
  const auto program = pipelined_sweep(2, 1, 8);
  simulate(program, cluster(1, 2, link(1e-6, 1e9)), constant_pricers({{"block.fwd", 1e-3}}));
  const std::string message =
      error_of([&] { simulate(program, cluster(1, 2, link(1e-6, 1e9)), constant_pricers({})); });
  EXPECT_EQ(message, "simulator: SimGrid allows one simulation per process; run another process for the next one");
}

TEST(SimulatorFailure, UnknownNetworkModelIsRefusedBeforeSimGridSeesIt) {
  SimulateOptions options;
  options.network_model = "Foo";
  EXPECT_EQ(error_of([&] {
              simulate(pipelined_sweep(2, 1, 8), cluster(1, 2, link(1e-6, 1e9)), constant_pricers({}), options);
            }),
            "network model: unknown model \"Foo\" (expected CM02, LV08, Constant, SMPI or IB)");
  options.network_model = "CM02";
  options.simgrid_config = {"network/model:ns3"};
  EXPECT_NE(error_of([&] {
              simulate(pipelined_sweep(2, 1, 8), cluster(1, 2, link(1e-6, 1e9)), constant_pricers({}), options);
            }).find("unknown model \"ns3\""),
            std::string::npos);
}

TEST(SimulatorFailure, UnknownAllreduceAlgorithmIsRefused) {
  EXPECT_EQ(error_of([] { parse_allreduce_algorithm("tree"); }),
            "allreduce: unknown algorithm \"tree\" (expected auto, ring or recursive-doubling)");
  EXPECT_EQ(parse_allreduce_algorithm("recursive-doubling"), AllreduceAlgorithm::recursive_doubling);
}

}  // namespace
}  // namespace plait::simulator
