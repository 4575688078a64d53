// Multilevel-in-depth training on one rank: the corrected coarse objective's
// value and gradient at the restricted parameters are the fine ones (char LM
// and ViT) for every restriction, a
// cycle without coarse steps leaves training as single-level training
// whatever the transfer, momentum and line search, coarse steps of a cycle
// can share its batch, each
// level's step costs the FLOPs the work table predicts, a resumed multilevel
// run repeats the uninterrupted losses.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "plait/schedule/cost_keys.hpp"
#include "plait/training/datasets.hpp"
#include "plait/training/multilevel.hpp"
#include "train_support.hpp"

namespace plait::executor {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TrainConfig multilevel_lm(const fs::path& dir, int levels, int coarse_steps, int fine_steps) {
  TrainConfig c = tiny_lm(dir);
  c.solver.mode = "multilevel";
  c.solver.multilevel = {.levels = levels, .cf = 2, .coarse_steps = coarse_steps, .fine_steps = fine_steps};
  c.optimizer.warmup_steps = 1;
  c.steps = 4 * training::cycle_steps(c);
  c.checkpoint_interval = c.steps;
  c.eval_interval = c.steps;
  return c;
}

std::vector<json> records_of(const fs::path& run) {
  std::ifstream in(run / "metrics.jsonl");
  std::vector<json> records;
  std::string line;
  while (std::getline(in, line)) records.push_back(json::parse(line));
  return records;
}

std::vector<json> run_records(TrainConfig config, const fs::path& out, TrainOverrides overrides = {}) {
  config.out = out.string();
  overrides.force = !overrides.resume;
  SelfWorld world;
  train(world, config, overrides);
  return records_of(out);
}

TEST(TrainMultilevel, TheCorrectedCoarseObjectiveIsFirstOrderCoherent) {
  const fs::path dir = scratch("ml-correction");
  TrainOverrides check;
  check.check_correction = true;
  for (const int levels : {2, 3}) {
    for (const bool correction : {true, false}) {
      for (const char* restriction : {"injection", "average", "even", "odd", "alternate"}) {
        TrainConfig config = multilevel_lm(dir, levels, 2, 1);
        config.model.dropout = 0.1;  // masks drawn per step must be the same in every run of the step
        config.solver.multilevel.correction = correction;
        config.solver.multilevel.restriction = restriction;
        const auto records = run_records(config, dir / "run", check);
        int checked = 0;
        for (const auto& r : records) {
          if (!r.contains("correction_error")) continue;
          ++checked;
          const double error = r["correction_error"].get<double>();
          std::printf("levels %d, correction %d, %s, step %d: |grad psi - R grad f| / |R grad f| = %.3g, transfer %.3g\n",
                      levels, correction, restriction, r["step"].get<int>(), error, r.value("transfer_error", -1.0));
          EXPECT_EQ(r["level"], levels - 1);
          if (correction) {
            EXPECT_LT(error, 1e-5);
            // psi's value at the restricted parameters is the finest loss on the same batch.
            EXPECT_LT(r["objective_error"].get<double>(), 1e-6);
            EXPECT_TRUE(r.contains("objective"));
          } else {
            EXPECT_GT(error, 1e-2);  // the plain coarse gradient is not the restricted fine one
            EXPECT_FALSE(r.contains("objective"));
          }
          // The fine loss's slope along a prolonged change is the restricted gradient's: R = P^T.
          if (levels == 2) EXPECT_LT(r["transfer_error"].get<double>(), 1e-2) << restriction;
          else EXPECT_FALSE(r.contains("transfer_error"));
        }
        EXPECT_EQ(checked, 4);  // one per cycle
      }
    }
  }
}

TEST(TrainMultilevel, AVitTrainsMultilevelWithTheCorrection) {
  const fs::path dir = scratch("ml-vit");
  TrainConfig config = multilevel_lm(dir, 2, 2, 1);
  config.task = "vit";
  config.model.patch = 7;
  config.model.seq = 17;
  config.model.batch = 8;
  config.eval_batches = 1;
  if (!fs::exists(fs::path(config.data.dataset) / "train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << config.data.dataset << ": Fashion-MNIST is not installed (scripts/bootstrap.sh installs it)";
  TrainOverrides check;
  check.check_correction = true;
  const auto records = run_records(config, dir / "run", check);
  ASSERT_EQ(records.size(), 12u);
  for (int cycle = 0; cycle < 4; ++cycle) {
    EXPECT_LT(records[3 * cycle]["correction_error"].get<double>(), 1e-5) << "cycle " << cycle;
    EXPECT_EQ(records[3 * cycle + 2]["level"], 0);
  }
  EXPECT_TRUE(records.back().contains("val_accuracy"));
}

TEST(TrainMultilevel, CyclesWithoutCoarseStepsTrainAsSingleLevel) {
  const fs::path dir = scratch("ml-zero");
  TrainConfig serial = tiny_lm(dir);
  serial.solver.mode = "serial";
  serial.optimizer.warmup_steps = 1;
  serial.steps = 8;
  serial.eval_interval = serial.checkpoint_interval = 8;
  const auto single = losses_of((run_records(serial, dir / "single"), dir / "single"));
  for (const char* restriction : {"injection", "average", "even", "odd", "alternate"}) {
    for (const char* momentum : {"keep", "restrict"}) {
      TrainConfig config = multilevel_lm(dir, 2, 0, 1);
      config.steps = 8;
      config.eval_interval = config.checkpoint_interval = 8;
      config.solver.multilevel.restriction = restriction;
      config.solver.multilevel.momentum = momentum;
      config.solver.multilevel.line_search = true;  // a zero change is kept whole
      const auto records = run_records(config, dir / "multilevel");
      const auto multilevel = losses_of(dir / "multilevel");
      ASSERT_EQ(multilevel.size(), single.size());
      for (std::size_t i = 0; i < single.size(); ++i) {
        EXPECT_EQ(multilevel[i], single[i]) << restriction << ", " << momentum << ", step " << i + 1;
        EXPECT_EQ(records[i]["line_search"], 1.0);
      }
    }
  }
}

TEST(TrainMultilevel, CoarseStepsShareTheCyclesBatchWhenAsked) {
  const fs::path dir = scratch("ml-batch");
  for (const char* batch : {"cycle", "fresh"}) {
    TrainConfig config = multilevel_lm(dir, 2, 3, 1);
    config.solver.multilevel.coarse_batch = batch;
    config.solver.multilevel.coarse_lr_factor = 0;  // coarse steps change nothing: equal losses mean equal batches
    const auto records = run_records(config, dir / batch);
    for (int cycle = 0; cycle < 4; ++cycle) {
      const double first = records[4 * cycle]["loss"].get<double>();
      for (int step = 1; step < 3; ++step) {
        const double loss = records[4 * cycle + step]["loss"].get<double>();
        if (std::string(batch) == "cycle") EXPECT_EQ(loss, first) << "cycle " << cycle << ", step " << step;
        else EXPECT_NE(loss, first) << "cycle " << cycle << ", step " << step;
      }
    }
  }
}

TEST(TrainMultilevel, TheLineSearchBacktracksAChangeThatMakesTheFineLossWorse) {
  const fs::path dir = scratch("ml-line-search");
  TrainConfig config = multilevel_lm(dir, 2, 2, 1);
  config.solver.multilevel.line_search = true;
  config.solver.multilevel.correction = false;
  config.solver.multilevel.coarse_lr_factor = 10;  // coarse steps far too long for the fine network
  config.optimizer.lr = 0.5;
  const auto records = run_records(config, dir / "run");
  config.solver.multilevel.line_search = false;
  const auto unsearched = run_records(config, dir / "unsearched");
  int backtracked = 0;
  for (int cycle = 0; cycle < 4; ++cycle) {
    const json& fine = records[3 * cycle + 2];
    const double kept = fine["line_search"].get<double>();
    EXPECT_THAT(std::vector<double>({1, 0.5, 0.25, 0}), ::testing::Contains(kept));
    backtracked += kept < 1;
    // Each try is one forward of the fine network: more FLOPs than the step without the search.
    EXPECT_GT(fine["flops"].get<double>(), unsearched[3 * cycle + 2]["flops"].get<double>());
    EXPECT_EQ(records[3 * cycle]["loss"], unsearched[3 * cycle]["loss"]) << "the cycles differ only after a search";
    if (kept < 1) break;
  }
  EXPECT_GT(backtracked, 0);
}

TEST(TrainMultilevel, EachLevelsStepCostsTheFlopsOfTheWorkTable) {
  const fs::path dir = scratch("ml-flops");
  const TrainConfig config = multilevel_lm(dir, 2, 2, 1);  // cycles: coarse (with the fine gradient), coarse, fine
  const auto records = run_records(config, dir / "run");
  ASSERT_EQ(records.size(), 12u);
  const auto& m = config.model;
  schedule::ModelDesc block{.d_model = m.d_model, .heads = m.heads, .seq = m.seq, .batch = m.batch, .mlp_ratio = m.mlp_ratio};
  const auto table = schedule::work_table(block);
  // A serial step runs each ODE block forward (keeping its graph) and back with parameter gradients.
  const double per_block = table.at(std::string(schedule::cost_keys::block_forward_keep)).flops +
                           table.at(std::string(schedule::cost_keys::block_gradient)).flops;
  const double d = m.d_model, block_parameters = (4.0 + 2 * m.mlp_ratio) * d * d + (9.0 + m.mlp_ratio) * d;
  const int vocab = training::CharTokenizer(training::load_text_corpus(config.data.corpus)).vocab_size();
  const double shared_parameters = (m.buffer_before + m.buffer_after) * block_parameters + double(vocab) * d +
                                   double(m.seq) * d + 2 * d + double(vocab) * d + vocab;
  const double tokens = double(m.batch) * m.seq, head = 3 * 2 * tokens * d * vocab;
  auto expected = [&](int ode_blocks) {
    const double parameters = ode_blocks * block_parameters + shared_parameters;
    return (ode_blocks + m.buffer_before + m.buffer_after) * per_block + head + 14 * parameters;
  };
  const double loss_op = table.at(std::string(schedule::cost_keys::loss)).flops;
  for (int cycle = 0; cycle < 4; ++cycle) {
    const json &first = records[3 * cycle], &coarse = records[3 * cycle + 1], &fine = records[3 * cycle + 2];
    EXPECT_EQ(first["level"], 1);
    EXPECT_EQ(coarse["level"], 1);
    EXPECT_EQ(fine["level"], 0);
    EXPECT_DOUBLE_EQ(coarse["flops"].get<double>(), expected(m.ode_layers / 2) + loss_op);
    EXPECT_DOUBLE_EQ(fine["flops"].get<double>(), expected(m.ode_layers) + loss_op);
    // The cycle's first step also computes the fine gradient its correction needs (no update).
    const double fine_gradient = expected(m.ode_layers) + loss_op - 14 * (m.ode_layers * block_parameters + shared_parameters);
    EXPECT_DOUBLE_EQ(first["flops"].get<double>(), coarse["flops"].get<double>() + fine_gradient);
  }
  double cumulative = 0;
  for (const auto& r : records) EXPECT_DOUBLE_EQ(r["cumulative_flops"].get<double>(), cumulative += r["flops"].get<double>());
}

TEST(TrainMultilevel, AResumedRunRepeatsTheUninterruptedLosses) {
  const fs::path dir = scratch("ml-resume");
  TrainConfig config = multilevel_lm(dir, 3, 2, 1);  // cycles of 4 steps: 2 on level 2, 1 on level 1, 1 on level 0
  config.solver.multilevel.restriction = "average";
  config.optimizer.kind = "sgd";
  config.steps = 12;
  config.checkpoint_interval = 4;
  const auto whole = run_records(config, dir / "whole");
  config.out = (dir / "interrupted").string();
  TrainOverrides faulty;
  faulty.inject_nan_at_step = 9;  // the second step of the third cycle
  EXPECT_THAT(error_of_training(config, faulty), HasSubstr("step 10: the loss is not finite; stopped, the last good checkpoint (step 8)"));
  TrainOverrides resume;
  resume.resume = true;
  const auto resumed = run_records(config, dir / "interrupted", resume);
  ASSERT_EQ(resumed.size(), whole.size());
  for (std::size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(resumed[i]["loss"], whole[i]["loss"]) << "step " << i + 1;
    EXPECT_EQ(resumed[i]["level"], whole[i]["level"]) << "step " << i + 1;
    EXPECT_EQ(resumed[i]["cumulative_flops"], whole[i]["cumulative_flops"]) << "step " << i + 1;
  }
}

}  // namespace
}  // namespace plait::executor
