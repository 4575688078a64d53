// Offline training data, validated: a character tokenizer over text files
// (default corpus: the fortunes package; the word tokenizer is in
// word_tokenizer.hpp) and Fashion-MNIST's IDX files
// (gzipped or not). Every bad file is a plait::Error naming it and the reason.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace plait::training {

inline constexpr std::size_t max_corpus_bytes = std::size_t(1) << 30;  // 1 GiB of text
inline constexpr std::size_t max_idx_bytes = std::size_t(1) << 30;     // decompressed

// The text of `path`: a file, or every regular file of a directory whose name
// has no '.' (fortune's .dat/.u8 index files are skipped), in name order.
std::string load_text_corpus(const std::string& path);

// Byte-level characters: the vocabulary is the sorted set of bytes in the text it was built from.
class CharTokenizer {
 public:
  explicit CharTokenizer(const std::string& text);  // throws on empty text
  int vocab_size() const { return int(alphabet_.size()); }
  // Throws plait::Error naming the first byte outside the vocabulary.
  std::vector<std::int32_t> encode(const std::string& text) const;
  std::string decode(const std::vector<std::int32_t>& ids) const;
  const std::string& alphabet() const { return alphabet_; }

 private:
  std::string alphabet_;
  std::vector<std::int32_t> id_of_;  // 256 entries, -1 where absent
};

// An IDX array of unsigned bytes (type 0x08): dims and the values, row-major.
struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> values;
};
// Parses IDX bytes (already decompressed); `origin` names the file in errors.
IdxArray parse_idx(const std::vector<std::uint8_t>& bytes, const std::string& origin);
// Reads a file, gunzipping it when it starts with the gzip magic, at most max_idx_bytes.
std::vector<std::uint8_t> read_maybe_gzipped(const std::string& path);

struct ImageSet {
  std::int64_t count = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;  // count * rows * cols
  std::vector<std::uint8_t> labels;  // count, each < classes
};
// "<dir>/<split>-images-idx3-ubyte[.gz]" and "<dir>/<split>-labels-idx1-ubyte[.gz]"
// (split "train" or "t10k"): image and label counts must agree, labels < classes.
ImageSet load_idx_images(const std::string& dir, const std::string& split, int classes);

}  // namespace plait::training
