#include "data.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include "../detail/transformer.hpp"
#include "plait/schedule/error.hpp"
#include "plait/training/word_tokenizer.hpp"

namespace plait::executor::detail {
namespace {
constexpr std::uint64_t batch_stream = 1ULL << 42;
}

TrainingData::TrainingData(const training::TrainConfig& config) : config_(config) {
  const int seq = config.model.seq;
  if (config.task == "char-lm") {
    const std::string text = training::load_text_corpus(config.data.corpus);
    std::size_t tokens = 0;
    if (config.data.tokenizer == "word") {
      // The vocabulary comes from the training text only: validation words it
      // lacks are encoded as their bytes, as unseen text would be.
      const auto validation = std::size_t(double(text.size()) * config.data.validation_fraction);
      const std::string train_text = text.substr(0, text.size() - validation);
      const training::WordTokenizer tokenizer(train_text, config.data.vocabulary);
      vocab_ = tokenizer.vocab_size();
      train_ids_ = tokenizer.encode(train_text);
      validation_ids_ = tokenizer.encode(std::string_view(text).substr(text.size() - validation));
      tokens = train_ids_.size() + validation_ids_.size();
    } else {
      const training::CharTokenizer tokenizer(text);
      vocab_ = tokenizer.vocab_size();
      const auto ids = tokenizer.encode(text);
      const auto validation = std::size_t(double(ids.size()) * config.data.validation_fraction);
      train_ids_.assign(ids.begin(), ids.end() - long(validation));
      validation_ids_.assign(ids.end() - long(validation), ids.end());
      tokens = ids.size();
    }
    for (const auto* part : {&train_ids_, &validation_ids_})
      if (part->size() < std::size_t(seq) + 2)
        throw Error(config.data.corpus, "too short: " + std::to_string(tokens) + " " + token_unit() +
                                            " leave a split shorter than one window of seq + 1 = " +
                                            std::to_string(seq + 1));
  } else {
    train_images_ = training::load_idx_images(config.data.dataset, "train", training::vit_classes);
    test_images_ = training::load_idx_images(config.data.dataset, "t10k", training::vit_classes);
    for (const auto* set : {&train_images_, &test_images_})
      if (set->rows != training::vit_image_side || set->cols != training::vit_image_side)
        throw Error(config.data.dataset, "images are " + std::to_string(set->rows) + "x" + std::to_string(set->cols) +
                                             ", the ViT expects 28x28");
    if (test_images_.count < config.model.batch)
      throw Error(config.data.dataset, "the test set holds fewer images than one batch");
  }
}

const char* TrainingData::token_unit() const {
  return config_.data.tokenizer == "word" ? "tokens" : "characters";
}

std::string TrainingData::describe() const {
  if (config_.task == "char-lm")
    return std::to_string(train_ids_.size()) + " training and " + std::to_string(validation_ids_.size()) +
           " validation " + token_unit() + (config_.data.tokenizer == "word" ? ", word vocabulary " : ", vocabulary ") +
           std::to_string(vocab_);
  return std::to_string(train_images_.count) + " training and " + std::to_string(test_images_.count) + " test images";
}

Batch TrainingData::lm_batch(const std::vector<std::int64_t>& offsets, const std::vector<std::int32_t>& ids) const {
  const int seq = config_.model.seq;
  at::Tensor inputs = at::empty({std::int64_t(offsets.size()), seq}, at::kLong);
  at::Tensor targets = at::empty_like(inputs);
  auto in = inputs.accessor<std::int64_t, 2>();
  auto out = targets.accessor<std::int64_t, 2>();
  for (std::size_t b = 0; b < offsets.size(); ++b)
    for (int t = 0; t < seq; ++t) {
      in[long(b)][t] = ids[std::size_t(offsets[b] + t)];
      out[long(b)][t] = ids[std::size_t(offsets[b] + t + 1)];
    }
  return {inputs, targets};
}

Batch TrainingData::image_batch(const std::vector<std::int64_t>& indices, const training::ImageSet& set) const {
  const std::int64_t pixels = set.rows * set.cols;
  at::Tensor images = at::empty({std::int64_t(indices.size()), 1, set.rows, set.cols}, at::kFloat);
  at::Tensor labels = at::empty({std::int64_t(indices.size())}, at::kLong);
  float* image = images.data_ptr<float>();
  for (std::size_t b = 0; b < indices.size(); ++b) {
    const std::uint8_t* source = set.pixels.data() + indices[b] * pixels;
    for (std::int64_t i = 0; i < pixels; ++i) image[std::int64_t(b) * pixels + i] = float(source[i]) / 255.0f;
    labels[long(b)] = std::int64_t(set.labels[std::size_t(indices[b])]);
  }
  return {images, labels};
}

Batch TrainingData::train_batch(int step) const {
  at::Generator generator = at::detail::createCPUGenerator(mix_seed(config_.seed, batch_stream + std::uint64_t(step)));
  const std::int64_t batch = config_.model.batch;
  const std::int64_t range = config_.task == "char-lm" ? std::int64_t(train_ids_.size()) - config_.model.seq - 1
                                                        : train_images_.count;
  const at::Tensor drawn = at::randint(range, {batch}, generator, at::TensorOptions().dtype(at::kLong));
  const std::vector<std::int64_t> picks(drawn.data_ptr<std::int64_t>(), drawn.data_ptr<std::int64_t>() + batch);
  return config_.task == "char-lm" ? lm_batch(picks, train_ids_) : image_batch(picks, train_images_);
}

std::vector<Batch> TrainingData::evaluation_batches() const {
  const std::int64_t batch = config_.model.batch;
  std::vector<Batch> batches;
  if (config_.task == "char-lm") {
    const std::int64_t windows = std::int64_t(config_.eval_batches > 0 ? config_.eval_batches : 8) * batch;
    const std::int64_t range = std::int64_t(validation_ids_.size()) - config_.model.seq - 1;
    std::vector<std::int64_t> offsets;
    for (std::int64_t w = 0; w < windows; ++w) {
      offsets.push_back(range * w / windows);
      if (std::int64_t(offsets.size()) == batch) {
        batches.push_back(lm_batch(offsets, validation_ids_));
        offsets.clear();
      }
    }
    return batches;
  }
  std::int64_t full = test_images_.count / batch;
  if (config_.eval_batches > 0) full = std::min<std::int64_t>(full, config_.eval_batches);
  for (std::int64_t b = 0; b < full; ++b) {
    std::vector<std::int64_t> indices(static_cast<std::size_t>(batch));
    for (std::int64_t i = 0; i < batch; ++i) indices[std::size_t(i)] = b * batch + i;
    batches.push_back(image_batch(indices, test_images_));
  }
  return batches;
}

}  // namespace plait::executor::detail
