// JSON round trip and one-line errors for bad files.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "error_text.hpp"
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
