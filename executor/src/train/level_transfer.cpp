#include "level_transfer.hpp"

#include <string>

#include <ATen/core/grad_mode.h>

#include "plait/schedule/error.hpp"

namespace plait::executor::detail {

LevelTransfer::LevelTransfer(training::BlockTransfer transfer, int cf, int per_block, int fine_first, int coarse_first,
                             int coarse_blocks)
    : transfer_(std::move(transfer)), cf_(cf), per_block_(per_block), fine_first_(fine_first), coarse_first_(coarse_first),
      coarse_blocks_(coarse_blocks) {
  if (fine_first != coarse_first * cf)
    throw Error("multilevel", "coarse block " + std::to_string(coarse_first) + " stands for fine block " +
                                  std::to_string(coarse_first * cf) + ", but this rank's fine blocks start at " +
                                  std::to_string(fine_first));
}

std::size_t LevelTransfer::fine_index(int block, int j, int i) const {
  return std::size_t(block * cf_ + j - fine_first_) * std::size_t(per_block_) + std::size_t(i);
}

std::size_t LevelTransfer::coarse_index(int block, int i) const {
  return std::size_t(block - coarse_first_) * std::size_t(per_block_) + std::size_t(i);
}

std::vector<at::Tensor> LevelTransfer::restrict_blocks(const std::vector<at::Tensor>& fine, const std::vector<int>& from,
                                                       bool mean, bool shared) const {
  if (fine.size() < fine_ode())
    throw Error("multilevel", "restriction of " + std::to_string(fine.size()) + " tensors, fewer than the fine level's " +
                                  std::to_string(fine_ode()) + " block tensors on this rank");
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> coarse(coarse_ode() + (fine.size() - fine_ode()));
  for (int block = coarse_first_; block < coarse_first_ + coarse_blocks_; ++block)
    for (int i = 0; i < per_block_; ++i) {
      at::Tensor sum;
      for (int j : from) {
        const at::Tensor& part = fine[fine_index(block, j, i)];
        if (!part.defined()) continue;
        sum = sum.defined() ? sum + part : part.clone();
      }
      if (sum.defined() && mean && from.size() > 1) sum.div_(double(from.size()));
      coarse[coarse_index(block, i)] = sum;
    }
  for (std::size_t s = fine_ode(); s < fine.size() && shared; ++s)
    if (fine[s].defined()) coarse[coarse_ode() + (s - fine_ode())] = fine[s].clone();
  return coarse;
}

std::vector<at::Tensor> LevelTransfer::restrict_values(const std::vector<at::Tensor>& fine, bool shared) const {
  return restrict_blocks(fine, transfer_.restrict_from, true, shared);
}

std::vector<at::Tensor> LevelTransfer::restrict_gradient(const std::vector<at::Tensor>& fine) const {
  return restrict_blocks(fine, transfer_.prolong_to, false, true);
}

void LevelTransfer::prolong(const std::vector<at::Tensor>& change, std::vector<at::Tensor>& fine, bool shared) const {
  if (change.size() < coarse_ode() || fine.size() < fine_ode() || change.size() - coarse_ode() != fine.size() - fine_ode())
    throw Error("multilevel", "prolongation of " + std::to_string(change.size()) + " coarse tensors onto " +
                                  std::to_string(fine.size()) + " fine ones: the levels' slots do not match");
  at::NoGradGuard no_grad;
  for (int block = coarse_first_; block < coarse_first_ + coarse_blocks_; ++block)
    for (int i = 0; i < per_block_; ++i) {
      const at::Tensor& delta = change[coarse_index(block, i)];
      if (!delta.defined()) continue;
      for (int j : transfer_.prolong_to) fine[fine_index(block, j, i)].add_(delta);
    }
  for (std::size_t s = coarse_ode(); s < change.size() && shared; ++s)
    if (change[s].defined()) fine[fine_ode() + (s - coarse_ode())].add_(change[s]);
}

}  // namespace plait::executor::detail
