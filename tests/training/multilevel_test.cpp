// The multilevel solver's settings (every bad value its own error), its
// cycle plan and which fine blocks a coarse block comes from and goes back to.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <tuple>

#include "config_errors.hpp"
#include "plait/training/multilevel.hpp"

namespace plait::training {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string multilevel_config = R"({
  "format": "plait.train", "version": 1,
  "model": {"ode_layers": 12},
  "solver": {"mode": "multilevel", "levels": 3, "cf": 2, "coarse_steps": 2, "fine_steps": 1,
             "correction": false, "restriction": "average", "level_solver": "mgrit", "coarse_lr_factor": 0.5,
             "coarse_batch": "cycle", "line_search": true, "momentum": "restrict"},
  "steps": 40, "checkpoint_interval": 8
})";

TEST(TrainConfig, ParsesAMultilevelSolverAndItsLevels) {
  const TrainConfig c = parse_train_config(multilevel_config, "m.json");
  const auto& ml = c.solver.multilevel;
  EXPECT_EQ(ml.levels, 3);
  EXPECT_EQ(ml.coarse_steps, 2);
  EXPECT_FALSE(ml.correction);
  EXPECT_EQ(ml.restriction, "average");
  EXPECT_EQ(ml.coarse_lr_factor, 0.5);
  EXPECT_EQ(ml.coarse_batch, "cycle");
  EXPECT_TRUE(ml.line_search);
  EXPECT_EQ(ml.momentum, "restrict");
  const auto defaults = parse_train_config(R"({"format": "plait.train", "version": 1, "solver": {"mode": "multilevel"}})", "d");
  EXPECT_EQ(defaults.solver.multilevel.coarse_batch, "fresh");
  EXPECT_FALSE(defaults.solver.multilevel.line_search);
  EXPECT_EQ(defaults.solver.multilevel.momentum, "keep");
  EXPECT_EQ(initial_settings(c).mode, "mgrit");
  EXPECT_EQ(training_levels(c), 3);
  EXPECT_EQ(level_config(c, 2).model.ode_layers, 3);
  const auto again = parse_train_config(dump_train_config(c), "again").solver.multilevel;
  EXPECT_EQ(again.restriction, "average");
  EXPECT_EQ(std::make_tuple(again.coarse_batch, again.line_search, again.momentum), std::make_tuple(ml.coarse_batch, true, ml.momentum));
  // Cycles of 4 steps: 2 on level 2, then 1 on level 1 and 1 on level 0, each after a prolongation.
  EXPECT_EQ(cycle_steps(c), 4);
  const std::vector<std::tuple<int, bool, int>> plan = {{2, true, -1}, {2, false, -1}, {1, false, 2}, {0, false, 1}};
  for (int step = 0; step < 8; ++step) {
    const CycleStep where = cycle_step(c, step);
    EXPECT_EQ(std::make_tuple(where.level, where.starts_cycle, where.prolong_from), plan[step % 4]) << "step " << step;
  }
}

TEST(TrainConfig, BadMultilevelSettingsAreOneLineErrors) {
  auto error_for = [](const std::string& from, const std::string& to) {
    return error_after_replacing(multilevel_config, from, to, "m.json");
  };
  EXPECT_THAT(error_for("\"levels\": 3", "\"levels\": 4"),
              StartsWith("m.json: /solver/cf: 2 must divide the 3 ODE blocks of level 2 (ode_layers 12, levels 4)"));
  EXPECT_THAT(error_for("\"levels\": 3", "\"levels\": 0"), HasSubstr("/solver/levels: must be an integer in 1..16"));
  EXPECT_THAT(error_for("\"cf\": 2", "\"cf\": 5"), HasSubstr("/solver/cf: 5 must divide the 12 ODE blocks of level 0"));
  EXPECT_THAT(error_for("\"steps\": 40", "\"steps\": 42"),
              HasSubstr("/steps: must be a whole number of cycles of 4 optimizer steps"));
  EXPECT_THAT(error_for("\"checkpoint_interval\": 8", "\"checkpoint_interval\": 6"),
              HasSubstr("/checkpoint_interval: must be a whole number of cycles of 4"));
  EXPECT_THAT(error_for("\"fine_steps\": 1", "\"fine_steps\": 0"), HasSubstr("/solver/fine_steps: must be an integer in 1.."));
  EXPECT_THAT(error_for("\"restriction\": \"average\"", "\"restriction\": \"mean\""),
              HasSubstr("/solver/restriction: must be \"alternate\" or \"average\" or \"even\" or \"injection\" or \"odd\""));
  EXPECT_THAT(error_after_replacing(R"({"format": "plait.train", "version": 1, "model": {"ode_layers": 12},
                    "solver": {"mode": "multilevel", "cf": 3, "restriction": "even"}})", "even", "odd", "m.json"),
              StartsWith("m.json: /solver/restriction: \"odd\" keeps one block of each pair: it needs cf 2, not 3"));
  EXPECT_THAT(error_for("\"momentum\": \"restrict\"", "\"momentum\": \"nesterov\""),
              HasSubstr("/solver/momentum: must be \"keep\" or \"reset\" or \"restrict\""));
  EXPECT_THAT(error_for("\"coarse_batch\": \"cycle\"", "\"coarse_batch\": \"same\""),
              HasSubstr("/solver/coarse_batch: must be \"cycle\" or \"fresh\""));
  EXPECT_THAT(error_for("\"line_search\": true", "\"line_search\": 1"), HasSubstr("/solver/line_search: must be"));
  EXPECT_THAT(error_for("\"mode\": \"multilevel\"", "\"mode\": \"mgrit\""),
              HasSubstr("/solver: levels, cf, coarse_steps, fine_steps, correction, restriction, level_solver, coarse_lr_factor, "
                        "coarse_batch, line_search and momentum belong to mode \"multilevel\""));
  EXPECT_THAT(error_for("\"steps\": 40", "\"steps\": 40, \"detector\": {\"interval\": 4}"),
              HasSubstr("/detector/interval: the detector watches single-level MGRIT runs"));
  // One line, whatever the count of problems.
  EXPECT_EQ(error_for("\"cf\": 2", "\"cf\": 5").find('\n'), std::string::npos);
}

TEST(BlockTransfer, SaysWhichFineBlocksACoarseBlockComesFromAndGoesBackTo) {
  MultilevelConfig ml;
  ml.cf = 2;
  const auto transfer = [&](const char* restriction, int cycle) {
    ml.restriction = restriction;
    const BlockTransfer t = block_transfer(ml, cycle);
    return std::make_pair(t.restrict_from, t.prolong_to);
  };
  using Offsets = std::pair<std::vector<int>, std::vector<int>>;
  // injection and average: the change lands on both blocks of the pair.
  EXPECT_EQ(transfer("injection", 0), Offsets({0}, {0, 1}));
  EXPECT_EQ(transfer("average", 3), Offsets({0, 1}, {0, 1}));
  // even and odd: the coarse block is one of the pair, and only it changes.
  EXPECT_EQ(transfer("even", 1), Offsets({0}, {0}));
  EXPECT_EQ(transfer("odd", 0), Offsets({1}, {1}));
  // alternate: even in even-numbered cycles, odd in the others.
  for (int cycle = 0; cycle < 4; ++cycle)
    EXPECT_EQ(transfer("alternate", cycle), cycle % 2 == 0 ? Offsets({0}, {0}) : Offsets({1}, {1})) << "cycle " << cycle;
  ml.cf = 3;
  EXPECT_EQ(transfer("injection", 0), Offsets({0}, {0, 1, 2}));
  EXPECT_THAT(plait::testing::error_of([&] { transfer("median", 0); }), HasSubstr("unknown restriction \"median\""));
}

}  // namespace
}  // namespace plait::training
