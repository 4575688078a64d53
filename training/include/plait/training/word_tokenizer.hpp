// A word/byte-level tokenizer for char-lm: it stands in for GPT-2's byte-pair
// tokenizer (whose merges are not available offline) so a study can train on a
// vocabulary of a few thousand tokens instead of ~100 characters.
//
// The text is cut into pieces as GPT-2's pre-tokenizer does: a word is an
// optional single leading space and a maximal run of ASCII letters and digits
// (" the" is one piece); every other byte is a piece of its own. Ids 0..255
// are the 256 bytes, so every text encodes (losslessly); then come the most
// frequent word pieces of two or more bytes. A piece outside the vocabulary
// is encoded as its bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace plait::training {

inline constexpr int byte_tokens = 256;
inline constexpr int min_word_vocabulary = byte_tokens + 1;
inline constexpr int max_word_vocabulary = 65536;

class WordTokenizer {
 public:
  // The 256 bytes and the `vocabulary - 256` most frequent word pieces of
  // `text` (ties: the piece's bytes in lexicographic order), fewer where the
  // text has fewer. Throws plait::Error("tokenizer", ...) on empty text or a
  // vocabulary outside 257..65536.
  WordTokenizer(const std::string& text, int vocabulary);
  int vocab_size() const { return int(pieces_.size()); }  // the real size, at most `vocabulary`
  std::vector<std::int32_t> encode(std::string_view text) const;  // never fails
  // Throws plait::Error("tokenizer", "id N is not in the vocabulary").
  std::string decode(const std::vector<std::int32_t>& ids) const;
  const std::string& piece(std::int32_t id) const { return pieces_.at(std::size_t(id)); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::string> pieces_;  // id -> its bytes
  std::unordered_map<std::string, std::int32_t, Hash, std::equal_to<>> word_ids_;  // pieces of >= 2 bytes
};

// Calls `each` with the pieces of `text` in order; they concatenate to `text`.
void for_each_piece(std::string_view text, const std::function<void(std::string_view)>& each);

}  // namespace plait::training
