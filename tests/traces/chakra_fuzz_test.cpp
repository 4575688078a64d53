// Chakra ET files: mutated and truncated copies of the real samples each load
// or give one located plait::Error (see tests/support/loader_fuzz.hpp). The
// mutator's token changes are meant for text; on protobuf they still shift
// lengths and change digits inside strings, and its byte flips, inserts,
// deletes and cuts are format-blind.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "detail/compressed_file.hpp"  // the gzipped sample's bytes
#include "loader_fuzz.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/traces/chakra.hpp"

namespace plait::traces {
namespace {

const std::string data = std::string(PLAIT_TRACE_DATA) + "/chakra/";

// The GlobalMetadata and first `nodes` Nodes of a file, cut at a message boundary.
std::string first_messages(const std::string& file, int nodes) {
  std::size_t at = 0;
  for (int message = 0; message <= nodes && at < file.size(); ++message) {
    std::uint64_t length = 0;
    for (int shift = 0; at < file.size(); shift += 7) {
      const auto byte = static_cast<std::uint8_t>(file[at++]);
      length |= std::uint64_t{byte & 0x7fu} << shift;
      if (byte < 0x80) break;
    }
    at += length;
  }
  return file.substr(0, at);
}

const auto load_as = [](const std::string& origin) {
  return [origin](const std::string& bytes) { parse_chakra(bytes, 0, origin); };
};

TEST(ChakraFuzz, MutatedAllReduceLoadsOrGivesOneLocatedError) {
  const std::string valid = read_text_file(data + "all_reduce.0.et");
  ASSERT_EQ(parse_chakra(valid, 0, "all_reduce.0.et").events.size(), 1u);
  const auto summary = testing::fuzz_loader(valid, "all_reduce.0.et", 10000, load_as("all_reduce.0.et"));
  EXPECT_GT(summary.refused, 5000);
}

TEST(ChakraFuzz, MutatedFeederTracePrefixLoadsOrGivesOneLocatedError) {
  const std::string valid = first_messages(detail::read_possibly_gzipped(data + "chakra.0.et.gz"), 50);
  ASSERT_EQ(valid.size(), 56485u);
  ASSERT_EQ(parse_chakra(valid, 0, "chakra.0.et").events.size(), 50u);  // its deps stay within the prefix
  const auto summary = testing::fuzz_loader(valid, "chakra.0.et", 3000, load_as("chakra.0.et"));
  EXPECT_GT(summary.refused, 1500);
}

}  // namespace
}  // namespace plait::traces
