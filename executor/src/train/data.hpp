// Batches for training and evaluation, as tensors. Every rank loads the same
// data and draws the same batch for a step: batch `step` depends on (seed,
// step) only, so a resumed run sees exactly the batches an uninterrupted one does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "plait/training/config.hpp"
#include "plait/training/datasets.hpp"

namespace plait::executor::detail {

struct Batch {
  at::Tensor inputs;   // char-lm: ids [batch, seq] (long); vit: images [batch, 1, 28, 28] in [0, 1]
  at::Tensor targets;  // char-lm: next ids [batch, seq]; vit: labels [batch]
};

class TrainingData {
 public:
  explicit TrainingData(const training::TrainConfig& config);  // throws plait::Error naming a bad file
  int vocab() const { return vocab_; }
  Batch train_batch(int step) const;
  // char-lm: eval_batches fixed windows spread over the validation text;
  // vit: the test set in full batches (eval_batches > 0: at most that many).
  std::vector<Batch> evaluation_batches() const;
  std::string describe() const;

 private:
  const char* token_unit() const;  // char-lm: "tokens" (word tokenizer) or "characters"
  Batch lm_batch(const std::vector<std::int64_t>& offsets, const std::vector<std::int32_t>& ids) const;
  Batch image_batch(const std::vector<std::int64_t>& indices, const training::ImageSet& set) const;

  const training::TrainConfig& config_;
  int vocab_ = 0;
  std::vector<std::int32_t> train_ids_, validation_ids_;
  training::ImageSet train_images_, test_images_;
};

}  // namespace plait::executor::detail
