// Training on one rank (SelfWorld): the loss goes down, a resumed run repeats
// an uninterrupted one loss for loss, a NaN stops the run and keeps the last
// checkpoint, the detector fires on a solver that diverges and not on one
// that converges, bad inputs are clear errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "plait/executor/exec.hpp"
#include "plait/executor/train.hpp"
#include "plait/schedule/files.hpp"
#include "train_support.hpp"

namespace plait::executor {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using training::TrainConfig;

TEST(Train, AShortRunLowersTheLoss) {
  const fs::path dir = scratch("lowers");
  SelfWorld world;
  const TrainSummary summary = train(world, tiny_lm(dir), {});
  const auto losses = losses_of(dir / "run");
  ASSERT_EQ(losses.size(), 40u);
  const double first = (losses[0] + losses[1] + losses[2]) / 3, last = (losses[37] + losses[38] + losses[39]) / 3;
  std::printf("loss: first 3 steps %.4f, last 3 steps %.4f, validation %.4f\n", first, last, *summary.validation_loss);
  EXPECT_LT(last, 0.8 * first);
  ASSERT_TRUE(summary.validation_loss.has_value());
  EXPECT_LT(*summary.validation_loss, first);
  EXPECT_TRUE(fs::exists(dir / "run" / "metrics.csv"));
  EXPECT_TRUE(fs::exists(dir / "run" / "checkpoint" / "rank-0.bin"));
}

TEST(Train, ResumeAfterANanRepeatsTheUninterruptedLosses) {
  const fs::path dir = scratch("resume");
  TrainConfig config = tiny_lm(dir);
  config.steps = 12;
  config.checkpoint_interval = 4;
  config.eval_interval = 6;
  config.model.dropout = 0.1;  // masks drawn per step must repeat too
  config.out = (dir / "whole").string();
  {
    SelfWorld world;
    train(world, config, {});
  }
  config.out = (dir / "interrupted").string();
  TrainOverrides faulty;
  faulty.inject_nan_at_step = 9;  // the 10th step
  EXPECT_THAT(error_of_training(config, faulty),
              HasSubstr("step 10: the loss is not finite; stopped, the last good checkpoint (step 8) is kept"));
  const auto state = nlohmann::json::parse(read_text_file((dir / "interrupted" / "checkpoint" / "state.json").string()));
  EXPECT_EQ(state.at("step"), 8);
  EXPECT_FALSE(fs::exists(dir / "interrupted" / "checkpoint.partial"));

  TrainOverrides resume;
  resume.resume = true;
  {
    SelfWorld world;
    train(world, config, resume);
  }
  const auto whole = losses_of(dir / "whole"), resumed = losses_of(dir / "interrupted");
  ASSERT_EQ(resumed.size(), whole.size());
  for (std::size_t i = 0; i < whole.size(); ++i) EXPECT_EQ(resumed[i], whole[i]) << "step " << i + 1;
}

TEST(Train, RefusesAnotherRunsOutputWithoutForce) {
  const fs::path dir = scratch("refuses");
  TrainConfig config = tiny_lm(dir);
  config.steps = 2;
  config.optimizer.warmup_steps = 1;
  {
    SelfWorld world;
    train(world, config, {});
  }
  EXPECT_THAT(error_of_training(config), HasSubstr("holds another run's results (use --resume to continue it, --force"));
  TrainOverrides force;
  force.force = true;
  EXPECT_EQ(error_of_training(config, force), "no error");
}

// tstop 256 on 32 ODE blocks (h = 8, coarse steps of 16): the coarse
// propagator is far from the fine one and MGRIT's iterations diverge (factor
// > 1, a gradient far from serial); tstop 1 converges fast.
DetectorEvent first_probe(double tstop, const fs::path& dir, const std::string& policy = "switch-to-serial") {
  TrainConfig config = tiny_lm(dir);
  config.model.ode_layers = 32;
  config.model.tstop = tstop;
  config.model.init = "normal";
  config.steps = 3;
  config.optimizer.warmup_steps = 1;
  config.detector.interval = 2;
  config.detector.policy = policy;
  SelfWorld world;
  const TrainSummary summary = train(world, config, {});
  EXPECT_EQ(summary.probes.size(), 1u);
  return summary.probes.empty() ? DetectorEvent{} : summary.probes.front();
}

TEST(Train, TheDetectorFiresWhereMgritDivergesAndNotWhereItConverges) {
  const DetectorEvent calm = first_probe(1.0, scratch("calm"));
  const DetectorEvent wild = first_probe(256.0, scratch("wild"));
  std::printf("tstop 1: factors %.3g / %.3g, gradient error %.3g, cosine %.3f\n", calm.forward_factor,
              calm.adjoint_factor, calm.gradient_relative_error, calm.gradient_cosine);
  std::printf("tstop 256: factors %.3g / %.3g, gradient error %.3g, cosine %.3f\n", wild.forward_factor,
              wild.adjoint_factor, wild.gradient_relative_error, wild.gradient_cosine);
  EXPECT_EQ(calm.action, "none");
  EXPECT_LT(calm.forward_factor, 1.0);
  EXPECT_GT(calm.gradient_cosine, 0.9);
  EXPECT_EQ(wild.action, "switch-to-serial");
  EXPECT_GT(std::max(wild.forward_factor, wild.adjoint_factor), 1.0);
  EXPECT_GT(wild.gradient_relative_error, calm.gradient_relative_error);
  EXPECT_EQ(first_probe(256.0, scratch("wild-raise"), "raise-iterations").action, "raise-iterations");
}

TEST(Train, BadDataIsAClearError) {
  const fs::path dir = scratch("bad-data");
  TrainConfig config = tiny_lm(dir);
  config.data.corpus = (dir / "no-such-corpus").string();
  EXPECT_THAT(error_of_training(config), HasSubstr("no-such-corpus: no such corpus file or directory"));
  config = tiny_lm(dir);
  config.task = "vit";
  config.model.seq = 17;
  config.model.patch = 7;
  config.data.dataset = dir.string();
  EXPECT_THAT(error_of_training(config), HasSubstr("train-images-idx3-ubyte.gz: missing"));
}

}  // namespace
}  // namespace plait::executor
