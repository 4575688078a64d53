// Moving tensors between two adjacent levels of a multilevel run, on one
// rank: a level's tensors in slot order (its ODE blocks on this rank, each
// with `per_block` tensors, then the shared ones: embedding, buffer blocks,
// head, which are the same at every level). Parameters, gradients and
// optimizer states all move through here (training::BlockTransfer says which
// fine blocks a coarse block comes from and goes back to).
#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "plait/training/multilevel.hpp"

namespace plait::executor::detail {

class LevelTransfer {
 public:
  // The coarse level's ODE blocks on this rank are coarse_first ..
  // coarse_first + coarse_blocks - 1; block g stands for the fine blocks
  // g*cf .. g*cf + cf - 1, which this rank holds from fine_first on.
  LevelTransfer(training::BlockTransfer transfer, int cf, int per_block, int fine_first, int coarse_first,
                int coarse_blocks);

  // Coarse tensors from fine ones: each block the mean of its restrict_from
  // blocks, the shared tensors cloned when `shared` (else left undefined:
  // parameters are the same tensors at both levels). Undefined inputs give
  // undefined outputs.
  std::vector<at::Tensor> restrict_values(const std::vector<at::Tensor>& fine, bool shared) const;
  // A fine gradient restricted by the prolongation's transpose: each block the
  // sum over its prolong_to blocks, the shared gradients cloned.
  std::vector<at::Tensor> restrict_gradient(const std::vector<at::Tensor>& fine) const;
  // fine += P change: each coarse block's change added to its prolong_to
  // blocks; the shared tensors too when `shared` (parameters are the same
  // tensors at both levels and must not be added twice; optimizer states are not).
  void prolong(const std::vector<at::Tensor>& change, std::vector<at::Tensor>& fine, bool shared) const;

 private:
  std::size_t fine_index(int block, int j, int i) const;
  std::size_t coarse_index(int block, int i) const;
  std::size_t coarse_ode() const { return std::size_t(coarse_blocks_) * std::size_t(per_block_); }
  std::size_t fine_ode() const { return coarse_ode() * std::size_t(cf_); }
  std::vector<at::Tensor> restrict_blocks(const std::vector<at::Tensor>& fine, const std::vector<int>& from,
                                          bool mean, bool shared) const;

  training::BlockTransfer transfer_;
  int cf_, per_block_, fine_first_, coarse_first_, coarse_blocks_;
};

}  // namespace plait::executor::detail
