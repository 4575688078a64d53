#include "plait/training/word_tokenizer.hpp"

#include <algorithm>

#include "plait/schedule/error.hpp"

namespace plait::training {
namespace {

// ASCII letters and digits only: bytes of UTF-8 sequences stay pieces of their
// own, so the pieces never depend on the locale.
bool is_word_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

void for_each_piece(std::string_view text, const std::function<void(std::string_view)>& each) {
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t end = i;
    if (text[i] == ' ' && i + 1 < text.size() && is_word_byte(text[i + 1])) end = i + 1;
    while (end < text.size() && is_word_byte(text[end])) ++end;
    if (end == i) end = i + 1;  // a byte that starts no word
    each(text.substr(i, end - i));
    i = end;
  }
}

WordTokenizer::WordTokenizer(const std::string& text, int vocabulary) {
  if (vocabulary < min_word_vocabulary || vocabulary > max_word_vocabulary)
    throw Error("tokenizer", "a vocabulary of " + std::to_string(vocabulary) + " is outside " +
                                 std::to_string(min_word_vocabulary) + ".." + std::to_string(max_word_vocabulary));
  if (text.empty()) throw Error("tokenizer", "cannot build a vocabulary from empty text");
  for (int byte = 0; byte < byte_tokens; ++byte) pieces_.emplace_back(1, char(byte));
  std::unordered_map<std::string_view, std::int64_t> counts;
  for_each_piece(text, [&](std::string_view piece) {
    if (piece.size() >= 2) ++counts[piece];
  });
  std::vector<std::pair<std::string_view, std::int64_t>> ranked(counts.begin(), counts.end());
  const std::size_t words = std::min(ranked.size(), std::size_t(vocabulary - byte_tokens));
  // Most frequent first; equal counts in byte order, so the vocabulary depends on the text alone.
  auto before = [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; };
  std::partial_sort(ranked.begin(), ranked.begin() + long(words), ranked.end(), before);
  for (std::size_t w = 0; w < words; ++w) {
    word_ids_.emplace(std::string(ranked[w].first), std::int32_t(pieces_.size()));
    pieces_.emplace_back(ranked[w].first);
  }
}

std::vector<std::int32_t> WordTokenizer::encode(std::string_view text) const {
  std::vector<std::int32_t> ids;
  ids.reserve(text.size() / 2);
  for_each_piece(text, [&](std::string_view piece) {
    if (piece.size() >= 2)
      if (auto found = word_ids_.find(piece); found != word_ids_.end()) return ids.push_back(found->second);
    for (unsigned char byte : piece) ids.push_back(std::int32_t(byte));
  });
  return ids;
}

std::string WordTokenizer::decode(const std::vector<std::int32_t>& ids) const {
  std::string text;
  for (std::int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) throw Error("tokenizer", "id " + std::to_string(id) + " is not in the vocabulary");
    text += pieces_[std::size_t(id)];
  }
  return text;
}

}  // namespace plait::training
