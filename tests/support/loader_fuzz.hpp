// Deterministic fuzzing of plait's file loaders (GoogleTest).
//
// From one valid file, `Mutator` derives inputs with a fixed seed: truncations,
// byte flips, inserted and deleted bytes, a value replaced by a huge, negative,
// non-finite, off-by-one or differently typed one, a member renamed (so it goes
// missing). `fuzz_loader` feeds them to a loader: each must load, or throw
// plait::Error whose message starts with the file's origin and gives a reason.
// Anything else fails the test with the input's index and text: another
// exception type, a crash (the sanitizer build turns memory errors into crashes),
// an input slower than `slowest_allowed_s` (a hang), or an allocation above the
// limit of allocation_limit.cpp (std::bad_alloc: unbounded allocation).
// PLAIT_FUZZ_FAILURES=DIR keeps each failing input as DIR/input-<index>.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <typeinfo>
#include <vector>

#include "plait/schedule/error.hpp"

namespace plait::testing {

class Mutator {
 public:
  Mutator(std::string valid, std::uint64_t seed) : valid_(std::move(valid)), random_(seed) {
    find_tokens();
  }

  std::string next() {
    std::string text = valid_;
    const int mutations = 1 + static_cast<int>(below(3));
    for (int m = 0; m < mutations; ++m) {
      const auto kind = below(100);
      if (kind < 20) {
        text.resize(below(text.size()));  // truncated
        break;
      } else if (kind < 40) {
        mutate_bytes(text);
      } else {
        text = replace_token(below(100) < 85);  // a token of the valid file
        if (below(2) == 0) break;  // one token change, often alone
      }
    }
    return text;
  }

 private:
  struct Token {
    std::size_t begin, end;
    char first;
    bool key;
  };

  std::size_t below(std::size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(random_); }

  // Numbers, strings, true/false/null, and object keys (a string followed by ':').
  void find_tokens() {
    for (std::size_t i = 0; i < valid_.size();) {
      const char c = valid_[i];
      std::size_t end = i + 1;
      if (c == '"') {
        while (end < valid_.size() && valid_[end] != '"') end += valid_[end] == '\\' ? 2 : 1;
        ++end;
        std::size_t after = end;
        while (after < valid_.size() && (valid_[after] == ' ' || valid_[after] == '\n')) ++after;
        tokens_.push_back({i, end, c, after < valid_.size() && valid_[after] == ':'});
      } else if (c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n') {
        while (end < valid_.size() && std::string_view("0123456789.eE+-truefalsn").find(valid_[end]) !=
                                          std::string_view::npos)
          ++end;
        tokens_.push_back({i, end, c, false});
      }
      i = end;
    }
  }

  std::string replace_token(bool value) {
    std::vector<const Token*> candidates;
    for (const Token& token : tokens_) {
      if (token.key != value) candidates.push_back(&token);
    }
    if (candidates.empty()) return valid_;
    const Token& token = *candidates[below(candidates.size())];
    std::string replacement;
    if (token.key) {
      replacement = "\"zz_renamed\"";
    } else if (token.first != '"' && below(4) == 0) {
      // The same number off by one or doubled: values the validator must judge.
      const double number = std::strtod(valid_.c_str() + token.begin, nullptr);
      const double changed[] = {number + 1, number - 1, number * 2, -number};
      char text[32];
      std::snprintf(text, sizeof text, "%.17g", changed[below(4)]);
      replacement = text;
    } else {
      static const char* const replacements[] = {
          "1e999", "-1e999", "1e308", "-1", "0", "-0", "0.5", "-0.5", "1e-320", "NaN", "Infinity",
          "2147483647", "2147483648", "-2147483649", "4294967296", "1000000000", "16777217",
          "9223372036854775807", "18446744073709551615", "-9223372036854775808",
          "123456789012345678901234567890", "\"\"", "\"7\"", "\"x\"", "true", "null", "[]", "{}",
          "[1,2]", "{\"a\":1}", "\"u[999999999][2147483647]\"", "\"reg[-1]\"", "\"tmp[\"",
          "\"d999999999.h1.s999999999.b999999999.r1.fp32.causal\""};
      replacement = replacements[below(std::size(replacements))];
    }
    return valid_.substr(0, token.begin) + replacement + valid_.substr(token.end);
  }

  void mutate_bytes(std::string& text) {
    if (text.empty()) return;
    static const std::string_view interesting = "{}[]:,\"\\0123456789-.eE \xff";
    const std::size_t at = below(text.size());
    switch (below(4)) {
      case 0: text[at] = static_cast<char>(text[at] ^ (1 << below(8))); break;
      case 1: text[at] = interesting[below(interesting.size())]; break;
      case 2: text.insert(at, 1, interesting[below(interesting.size())]); break;
      default: text.erase(at, 1 + below(16)); break;
    }
  }

  std::string valid_;
  std::mt19937_64 random_;
  std::vector<Token> tokens_;
};

struct FuzzSummary {
  int loaded = 0, refused = 0;
  double slowest_s = 0;
  std::map<std::string, int> reasons;  // first words of each refusal's reason
};

// Feeds `count` inputs derived from `valid` to `load(text)`; see the top of this file.
inline FuzzSummary fuzz_loader(const std::string& valid, const std::string& origin, int count,
                               const std::function<void(const std::string&)>& load,
                               double slowest_allowed_s = 2.0, std::uint64_t seed = 12) {
  FuzzSummary summary;
  Mutator mutator(valid, seed);
  int failures = 0;
  for (int i = 0; i < count && failures < 5; ++i) {
    const std::string input = mutator.next();
    const auto describe = [&] {
      // Where the input differs from the valid file, with some context.
      std::size_t first = 0;
      while (first < input.size() && first < valid.size() && input[first] == valid[first]) ++first;
      std::size_t tail = 0;
      while (tail < input.size() - first && tail < valid.size() - first &&
             input[input.size() - 1 - tail] == valid[valid.size() - 1 - tail])
        ++tail;
      const std::size_t from = first > 80 ? first - 80 : 0;
      if (const char* directory = std::getenv("PLAIT_FUZZ_FAILURES")) {  // keep it, to reproduce
        std::FILE* out = std::fopen((std::string(directory) + "/input-" + std::to_string(i)).c_str(), "wb");
        if (out) std::fwrite(input.data(), 1, input.size(), out), std::fclose(out);
      }
      return "input #" + std::to_string(i) + " (" + std::to_string(input.size()) + " bytes), differs from byte " +
             std::to_string(first) + ": ..." + input.substr(from, input.size() - tail - from + 80).substr(0, 1000) +
             "...";
    };
    const auto start = std::chrono::steady_clock::now();
    try {
      load(input);
      ++summary.loaded;
    } catch (const Error& error) {
      ++summary.refused;
      const std::string message = error.what();
      if (message.rfind(origin + ": ", 0) != 0 || error.why().empty()) {
        ADD_FAILURE() << "message does not name " << origin << " and a reason: \"" << message << "\"\n"
                      << describe();
        ++failures;
      }
      summary.reasons[error.why().substr(0, error.why().find_first_of("(\"0123456789"))] += 1;
    } catch (const std::exception& other) {
      ADD_FAILURE() << "not a plait::Error: " << typeid(other).name() << ": " << other.what() << "\n"
                    << describe();
      ++failures;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    summary.slowest_s = std::max(summary.slowest_s, seconds);
    if (seconds > slowest_allowed_s) {
      ADD_FAILURE() << "took " << seconds << " s (a hang?)\n" << describe();
      ++failures;
    }
  }
  std::printf("%s: %d inputs, %d loaded, %d refused, slowest %.3f s; %zu kinds of refusal\n", origin.c_str(),
              summary.loaded + summary.refused, summary.loaded, summary.refused, summary.slowest_s,
              summary.reasons.size());
  return summary;
}

}  // namespace plait::testing
