// JSON round trip and one-line errors for bad files.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "error_text.hpp"
#include "program_scanner.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"

namespace plait::schedule {
namespace {

Program sample_program() {
  BuildSpec spec;
  spec.layers = 24;
  spec.ranks = 3;
  spec.forward = {.levels = 3, .coarsening_factor = 2, .relax = Relax::FCF, .iterations = 2};
  spec.adjoint = {.levels = 2, .coarsening_factor = 2, .relax = Relax::F, .iterations = 1};
  spec.model.d_model = 64;
  spec.model.heads = 4;
  return build_mgrit(spec);
}

std::string error_of(const std::string& text) {
  return plait::testing::error_of([&] { parse_program(text, "p.json"); });
}

TEST(ProgramJson, RoundTripIsLossless) {
  const Program program = sample_program();
  const std::string text = dump_program(program);
  const Program again = parse_program(text);
  EXPECT_EQ(again, program);
  EXPECT_EQ(dump_program(again), text);
}

TEST(ProgramJson, CarriesFormatVersionAndMetadata) {
  const auto document = nlohmann::json::parse(dump_program(sample_program()));
  EXPECT_EQ(document["format"], "plait.program");
  EXPECT_EQ(document["version"], 1);
  EXPECT_EQ(document["model"]["d_model"], 64);
  EXPECT_EQ(document["forward"]["relax"], "FCF");
  EXPECT_GT(document["work"]["block.fwd"]["flops"].get<double>(), 0);
}

TEST(ProgramJson, TruncatedFileGetsOneLineError) {
  const std::string text = dump_program(sample_program());
  const std::string message = error_of(text.substr(0, text.size() / 2));
  EXPECT_EQ(message.rfind("p.json: not valid JSON: byte ", 0), 0u) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_EQ(error_of(""), "p.json: not valid JSON: byte 1: empty input");
}

TEST(ProgramJson, WrongTypesNameTheirPlace) {
  auto document = nlohmann::json::parse(dump_program(sample_program()));
  document["layers"] = "many";
  EXPECT_EQ(error_of(document.dump()), "p.json: /layers: wrong type (string)");

  document = nlohmann::json::parse(dump_program(sample_program()));
  document["rank_programs"][1]["sections"][2]["ops"][3]["block"] = nlohmann::json::array();
  EXPECT_EQ(error_of(document.dump()), "p.json: /rank_programs/1/sections/2/ops/3/block: wrong type (array)");

  document = nlohmann::json::parse(dump_program(sample_program()));
  document["rank_programs"][0]["sections"][0]["ops"][0]["dst"] = "q[0][0]";
  EXPECT_EQ(error_of(document.dump()),
            "p.json: /rank_programs/0/sections/0/ops/0/dst: buffer \"q[0][0]\": unknown space \"q\"");

  document = nlohmann::json::parse(dump_program(sample_program()));
  document["model"]["heads"] = 0;
  EXPECT_EQ(error_of(document.dump()), "p.json: /model: model.heads: must be >= 1");

  document = nlohmann::json::parse(dump_program(sample_program()));
  document["rank_programs"][0]["sections"][0]["ops"][0]["op"] = "jump";
  EXPECT_EQ(error_of(document.dump()), "p.json: /rank_programs/0/sections/0/ops/0: unknown op kind \"jump\"");
}

// Ops are read while the document is parsed (a large Program never holds them
// all as JSON values): elements that are not ops still name their index, and
// the ops land in their own sections.
TEST(ProgramJson, OpsReadWhileParsingKeepTheirPlaceAndErrors) {
  auto document = nlohmann::json::parse(dump_program(sample_program()));
  document["rank_programs"][1]["sections"][1]["ops"][2] = 7;
  EXPECT_EQ(error_of(document.dump()), "p.json: /rank_programs/1/sections/1/ops/2: expected an object");
  document = nlohmann::json::parse(dump_program(sample_program()));
  document["rank_programs"][0]["sections"][0]["ops"][1] = nlohmann::json::array({1});
  EXPECT_EQ(error_of(document.dump()), "p.json: /rank_programs/0/sections/0/ops/1: expected an object");

  const Program program = sample_program();
  const Program read = parse_program(dump_program(program), "p.json");
  ASSERT_EQ(read.rank_programs.size(), program.rank_programs.size());
  for (std::size_t r = 0; r < read.rank_programs.size(); ++r)
    for (std::size_t s = 0; s < read.rank_programs[r].sections.size(); ++s)
      EXPECT_EQ(read.rank_programs[r].sections[s].ops, program.rank_programs[r].sections[s].ops) << r << " " << s;
}

// The scanner reads the ops of what plait writes, spaced or not; text it does
// not read (an escape, non-ASCII, a float in an op) goes to the full JSON reader:
// both give the same Program, and a bad op the document reader's own error.
TEST(ProgramJson, TheScannerAndTheJsonReaderReadTheSameProgram) {
  const Program program = sample_program();
  const auto document = nlohmann::json::parse(dump_program(program));
  const auto scanned = detail::scan_ops(dump_program(program));
  ASSERT_TRUE(scanned.has_value());
  EXPECT_EQ(scanned->rest.find("\"op\""), std::string::npos) << "the ops are not left in the rest";
  std::size_t scanned_ops = 0, ops = 0;
  for (const detail::OpList& list : scanned->lists) scanned_ops += list.ops.size();
  for (const RankProgram& rank : program.rank_programs)
    for (const Section& section : rank.sections) ops += section.ops.size();
  EXPECT_EQ(scanned_ops, ops);
  ASSERT_TRUE(detail::scan_ops(document.dump(2)).has_value()) << "whitespace is read";
  EXPECT_EQ(parse_program(document.dump(2), "p.json"), program);

  auto unusual = document;  // an op with a field plait does not read, not ASCII: the JSON reader reads it
  unusual["rank_programs"][1]["sections"][0]["ops"][0]["note"] = "\u00e9t\u00e9";
  unusual["comment"] = "a \"quoted\" word";
  EXPECT_FALSE(detail::scan_ops(unusual.dump()).has_value());
  EXPECT_EQ(parse_program(unusual.dump(), "p.json"), program);

  for (const auto& [field, value] : {std::pair{"level", nlohmann::json(1.5)}, {"dst", nlohmann::json(5)},
                                     {"peer", nlohmann::json(nullptr)}, {"block", nlohmann::json::array()},
                                     {"grad", nlohmann::json("yes")}, {"tag", nlohmann::json(1e12)}}) {
    auto bad = document;
    bad["rank_programs"][2]["sections"][1]["ops"][3][field] = value;
    std::string expected;
    try {
      (void)bad.get<Program>();
    } catch (const Error& error) {
      expected = std::string("p.json: ") + error.what();
    }
    EXPECT_NE(expected.find("/rank_programs/2/sections/1/ops/3/" + std::string(field) + ": "), std::string::npos)
        << expected;
    EXPECT_EQ(error_of(bad.dump()), expected) << field;
    EXPECT_EQ(error_of(bad.dump(1)), expected) << field;
  }
}

TEST(ProgramJson, RejectsOtherFormatsAndVersions) {
  auto document = nlohmann::json::parse(dump_program(sample_program()));
  document["version"] = 7;
  EXPECT_EQ(error_of(document.dump()), "p.json: /version: unsupported version 7 (this plait reads 1)");
  document["format"] = "plait.trace";
  EXPECT_EQ(error_of(document.dump()), "p.json: /format: expected \"plait.program\", got \"plait.trace\"");
  EXPECT_EQ(error_of("[1, 2]"), "p.json: expected a JSON object");
  document.erase("format");
  EXPECT_EQ(error_of(document.dump()), "p.json: missing \"format\"");
}

TEST(ProgramJson, BufferNamesRoundTrip) {
  for (const std::string text : {"u[0][0]", "gw[3][4095]", "tmp[1]", "reg[0]", "w[1][7]"}) {
    EXPECT_EQ(to_string(parse_buffer(text)), text);
  }
  EXPECT_THROW(parse_buffer("u[1]"), Error);
  EXPECT_THROW(parse_buffer("u[-1][2]"), Error);
  EXPECT_THROW(parse_buffer("u"), Error);
}

}  // namespace
}  // namespace plait::schedule
