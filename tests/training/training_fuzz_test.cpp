// Every file training reads: 10,000 mutated and truncated inputs each for the
// config, IDX files and checkpoint tensor files load or give one located
// plait::Error (see tests/support/loader_fuzz.hpp); mutated texts build a word
// tokenizer that round-trips them.
#include <gtest/gtest.h>

#include "loader_fuzz.hpp"
#include "plait/training/config.hpp"
#include "plait/training/datasets.hpp"
#include "plait/training/tensor_file.hpp"
#include "plait/training/word_tokenizer.hpp"

namespace plait::training {
namespace {

TEST(TrainingFuzz, MutatedConfigsLoadOrGiveOneLocatedError) {
  TrainConfig config;
  config.detector.interval = 10;
  const auto summary = plait::testing::fuzz_loader(dump_train_config(config), "train.json", 10000,
                                                   [](const std::string& text) { parse_train_config(text, "train.json"); });
  EXPECT_GT(summary.refused, 5000);
}

TEST(TrainingFuzz, MutatedWordTokenizerConfigsLoadOrGiveOneLocatedError) {
  TrainConfig config;
  config.data.tokenizer = "word";
  config.data.vocabulary = 1024;
  const auto summary = plait::testing::fuzz_loader(dump_train_config(config), "train.json", 10000,
                                                   [](const std::string& text) { parse_train_config(text, "train.json"); });
  EXPECT_GT(summary.refused, 5000);
}

TEST(TrainingFuzz, MutatedTextsRoundTripThroughAWordTokenizer) {
  const std::string valid = "Q: What's \"the\" answer?\n\tA: 42, the answer -- as\xff always.\n%\n the end";
  const WordTokenizer fixed(valid, 260);
  const auto summary = plait::testing::fuzz_loader(valid, "tokenizer", 10000, [&](const std::string& text) {
    EXPECT_EQ(fixed.decode(fixed.encode(text)), text);
    const WordTokenizer own(text, 257 + int(text.size() % 5));
    EXPECT_EQ(own.decode(own.encode(text)), text);
  });
  EXPECT_GT(summary.loaded, 9000);  // only an empty text is refused
}

TEST(TrainingFuzz, MutatedMultilevelConfigsLoadOrGiveOneLocatedError) {
  TrainConfig config;
  config.solver.mode = "multilevel";
  config.solver.multilevel = {.levels = 3, .cf = 2, .coarse_steps = 2, .fine_steps = 1, .restriction = "alternate",
                              .coarse_batch = "cycle", .line_search = true, .momentum = "restrict"};
  config.steps = 200;
  config.checkpoint_interval = 40;
  const auto summary = plait::testing::fuzz_loader(dump_train_config(config), "train.json", 10000,
                                                   [](const std::string& text) { parse_train_config(text, "train.json"); });
  EXPECT_GT(summary.refused, 5000);
}

TEST(TrainingFuzz, MutatedIdxFilesLoadOrGiveOneLocatedError) {
  std::string valid{'\0', '\0', '\x08', '\x03', '\0', '\0', '\0', '\x02', '\0', '\0', '\0', '\x04', '\0', '\0', '\0', '\x04'};
  valid += std::string(32, '\x11');
  const auto summary = plait::testing::fuzz_loader(valid, "images.idx", 10000, [](const std::string& text) {
    parse_idx(std::vector<std::uint8_t>(text.begin(), text.end()), "images.idx");
  });
  EXPECT_GT(summary.refused, 2000);  // a flipped pixel is still a valid file
}

TEST(TrainingFuzz, MutatedTensorFilesLoadOrGiveOneLocatedError) {
  TensorFile file;
  file.meta_json = R"({"step": 12, "rank": 0})";
  file.tensors.push_back({"block0.0", {4, 2}, std::vector<float>(8, 0.5f)});
  file.tensors.push_back({"adam_m.block0.0", {4, 2}, std::vector<float>(8, -1.0f)});
  const auto summary = plait::testing::fuzz_loader(serialize_tensor_file(file), "rank-0.bin", 10000,
                                                   [](const std::string& text) { parse_tensor_file(text, "rank-0.bin"); });
  EXPECT_GT(summary.refused, 3000);
}

}  // namespace
}  // namespace plait::training
