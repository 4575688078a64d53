// The executor's level transfer on tensors: which fine blocks a coarse block
// is restricted from, where its change lands, and that the gradient's
// restriction is the prolongation's transpose, for every restriction.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "../../executor/src/train/level_transfer.hpp"
#include "plait/schedule/error.hpp"

namespace plait::executor::detail {
namespace {

constexpr int per_block = 2, cf = 2;

// A rank holding fine blocks 4..7 and coarse blocks 2..3, one shared tensor
// after them; block b's tensors are filled with 10 b + i.
std::vector<at::Tensor> fine_tensors() {
  std::vector<at::Tensor> out;
  for (int block = 4; block < 8; ++block)
    for (int i = 0; i < per_block; ++i) out.push_back(at::full({3}, 10.0 * block + i));
  out.push_back(at::full({2}, -1.0));
  return out;
}

LevelTransfer transfer_for(const char* restriction, int cycle) {
  training::MultilevelConfig ml;
  ml.cf = cf;
  ml.restriction = restriction;
  return LevelTransfer(training::block_transfer(ml, cycle), cf, per_block, 4, 2, 2);
}

double value(const at::Tensor& t) { return t.mean().item<double>(); }

TEST(LevelTransfer, RestrictsEachCoarseBlockFromItsFineBlocks) {
  const auto fine = fine_tensors();
  const std::vector<std::pair<const char*, double>> expected_offset = {
      {"injection", 0}, {"even", 0}, {"odd", 10}, {"average", 5}};
  for (const auto& [restriction, offset] : expected_offset) {
    const auto coarse = transfer_for(restriction, 0).restrict_values(fine, true);
    ASSERT_EQ(coarse.size(), 5u);
    // Coarse block 2 stands for fine blocks 4 and 5, coarse block 3 for 6 and 7.
    EXPECT_DOUBLE_EQ(value(coarse[0]), 40 + offset) << restriction;
    EXPECT_DOUBLE_EQ(value(coarse[1]), 41 + offset) << restriction;
    EXPECT_DOUBLE_EQ(value(coarse[2]), 60 + offset) << restriction;
    EXPECT_DOUBLE_EQ(value(coarse[4]), -1) << "shared tensors restrict to themselves";
    EXPECT_FALSE(coarse[4].is_same(fine[8])) << "restriction copies";
    EXPECT_FALSE(transfer_for(restriction, 0).restrict_values(fine, false)[4].defined()) << "parameters: shared left alone";
  }
  EXPECT_DOUBLE_EQ(value(transfer_for("alternate", 0).restrict_values(fine, true)[2]), 60);
  EXPECT_DOUBLE_EQ(value(transfer_for("alternate", 1).restrict_values(fine, true)[2]), 70);
}

TEST(LevelTransfer, AZeroChangeChangesNothingAndAChangeLandsOnItsBlocks) {
  const std::vector<std::pair<const char*, std::vector<int>>> changed_blocks = {
      {"injection", {4, 5, 6, 7}}, {"average", {4, 5, 6, 7}}, {"even", {4, 6}}, {"odd", {5, 7}}};
  for (const auto& [restriction, blocks] : changed_blocks) {
    const LevelTransfer transfer = transfer_for(restriction, 0);
    auto fine = fine_tensors();
    std::vector<at::Tensor> zero;
    for (int s = 0; s < 4; ++s) zero.push_back(at::zeros({3}));
    zero.push_back(at::zeros({2}));
    transfer.prolong(zero, fine, true);
    const auto before = fine_tensors();
    for (std::size_t s = 0; s < fine.size(); ++s) EXPECT_TRUE(fine[s].equal(before[s])) << restriction << ", slot " << s;
    // Coarse block 2's first tensor moves by 1, coarse block 3's second by 100.
    auto change = zero;
    change[0] = at::ones({3});
    change[3] = at::full({3}, 100.0);
    change[4] = at::full({2}, 7.0);
    transfer.prolong(change, fine, false);
    for (int block = 4; block < 8; ++block) {
      const bool lands = std::find(blocks.begin(), blocks.end(), block) != blocks.end();
      const double moved0 = value(fine[std::size_t(2 * (block - 4))]) - (10.0 * block);
      const double moved1 = value(fine[std::size_t(2 * (block - 4) + 1)]) - (10.0 * block + 1);
      EXPECT_DOUBLE_EQ(moved0, lands && block < 6 ? 1 : 0) << restriction << ", block " << block;
      EXPECT_DOUBLE_EQ(moved1, lands && block >= 6 ? 100 : 0) << restriction << ", block " << block;
    }
    EXPECT_DOUBLE_EQ(value(fine[8]), -1) << "parameters: the shared tensors are the coarse level's own";
    transfer.prolong(change, fine, true);
    EXPECT_DOUBLE_EQ(value(fine[8]), 6) << "optimizer states: the shared change is added";
  }
}

TEST(LevelTransfer, TheGradientsRestrictionIsTheProlongationsTranspose) {
  at::manual_seed(3);
  for (const char* restriction : {"injection", "average", "even", "odd"}) {
    const LevelTransfer transfer = transfer_for(restriction, 0);
    std::vector<at::Tensor> gradient, change, moved;
    for (int s = 0; s < 8; ++s) gradient.push_back(at::randn({3}, at::kDouble));
    gradient.push_back(at::randn({2}, at::kDouble));
    for (int s = 0; s < 4; ++s) change.push_back(at::randn({3}, at::kDouble));
    change.push_back(at::randn({2}, at::kDouble));
    for (const auto& g : gradient) moved.push_back(at::zeros_like(g));
    transfer.prolong(change, moved, true);  // moved = P e
    const auto restricted = transfer.restrict_gradient(gradient);
    double fine_side = 0, coarse_side = 0;  // <g, P e> and <R g, e>
    for (std::size_t s = 0; s < gradient.size(); ++s) fine_side += (gradient[s] * moved[s]).sum().item<double>();
    for (std::size_t s = 0; s < change.size(); ++s) coarse_side += (restricted[s] * change[s]).sum().item<double>();
    EXPECT_NEAR(fine_side, coarse_side, 1e-12) << restriction;
  }
}

TEST(LevelTransfer, RefusesLevelsThatDoNotLineUp) {
  training::MultilevelConfig ml;
  EXPECT_THROW(LevelTransfer(training::block_transfer(ml, 0), cf, per_block, 3, 2, 2), plait::Error);
  std::vector<at::Tensor> too_few(3), fine = fine_tensors();
  EXPECT_THROW(transfer_for("even", 0).restrict_values(too_few, true), plait::Error);
  EXPECT_THROW(transfer_for("even", 0).prolong(too_few, fine, false), plait::Error);
}

}  // namespace
}  // namespace plait::executor::detail
