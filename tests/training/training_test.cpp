// The torch-free half of training: configs (every bad value its own error),
// the character corpus and tokenizer, IDX files (real Fashion-MNIST where the
// package is installed, and broken copies), tensor files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <zlib.h>

#include "error_text.hpp"
#include "plait/training/config.hpp"
#include "plait/training/datasets.hpp"
#include "plait/training/multilevel.hpp"
#include "plait/training/tensor_file.hpp"

namespace plait::training {
namespace {

namespace fs = std::filesystem;
using plait::testing::error_of;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string valid_config = R"({
  "format": "plait.train", "version": 1, "task": "char-lm",
  "model": {"d_model": 32, "heads": 4, "seq": 16, "batch": 4, "ode_layers": 8, "buffer_before": 1, "buffer_after": 1},
  "solver": {"mode": "mgrit", "forward": {"levels": 2, "cf": 2, "relax": "FCF", "iterations": 2},
             "adjoint": {"levels": 2, "cf": 4, "relax": "F", "iterations": 1}},
  "optimizer": {"kind": "sgd", "lr": 0.1, "warmup_steps": 2},
  "detector": {"interval": 5, "policy": "raise-iterations", "max_iterations": 4},
  "steps": 10, "seed": 3, "out": "somewhere"
})";

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("plait-training-test-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

TEST(TrainConfig, ParsesEveryFieldItNames) {
  const TrainConfig c = parse_train_config(valid_config, "c.json");
  EXPECT_EQ(c.model.d_model, 32);
  EXPECT_EQ(c.model.ode_layers, 8);
  EXPECT_EQ(c.solver.forward.relax, schedule::Relax::FCF);
  EXPECT_EQ(c.solver.adjoint.coarsening_factor, 4);
  EXPECT_EQ(c.optimizer.kind, "sgd");
  EXPECT_EQ(c.detector.policy, "raise-iterations");
  EXPECT_EQ(c.seed, 3u);
  EXPECT_EQ(c.out, "somewhere");
  EXPECT_EQ(total_blocks(c.model), 10);
  // What a checkpoint records parses back to the same config.
  const TrainConfig again = parse_train_config(dump_train_config(c), "dump");
  EXPECT_EQ(dump_train_config(again), dump_train_config(c));
}

TEST(TrainConfig, VitTakesItsSequenceFromThePatches) {
  const TrainConfig c = parse_train_config(
      R"({"format": "plait.train", "version": 1, "task": "vit", "model": {"patch": 4, "ode_layers": 4}})", "v.json");
  EXPECT_EQ(c.model.seq, 7 * 7 + 1);
}

// The error of parsing `text` with `from` replaced by `to`.
std::string error_after_replacing(std::string text, const std::string& from, const std::string& to,
                                  const std::string& origin) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return error_of([&] { parse_train_config(text, origin); });
}

TEST(TrainConfig, EachBadValueIsItsOwnError) {
  auto error_for = [](const std::string& from, const std::string& to) {
    return error_after_replacing(valid_config, from, to, "c.json");
  };
  EXPECT_THAT(error_for("\"plait.train\"", "\"plait.sweep\""), StartsWith("c.json: /format: must be \"plait.train\""));
  EXPECT_THAT(error_for("\"task\": \"char-lm\"", "\"task\": \"gpt\""), HasSubstr("/task: must be \"char-lm\" or \"vit\""));
  EXPECT_THAT(error_for("\"heads\": 4", "\"heads\": 5"), HasSubstr("/model/heads: must divide d_model (32)"));
  EXPECT_THAT(error_for("\"seq\": 16", "\"sequence\": 16"), HasSubstr("/model/sequence: unknown field"));
  EXPECT_THAT(error_for("\"cf\": 4", "\"cf\": 1"), HasSubstr("/solver/adjoint/cf: must be an integer in 2.."));
  EXPECT_THAT(error_for("\"relax\": \"F\"", "\"relax\": \"C\""), HasSubstr("/solver/adjoint/relax: must be \"F\" or \"FCF\""));
  EXPECT_THAT(error_for("\"lr\": 0.1", "\"lr\": -1"), HasSubstr("/optimizer/lr: must be a number > 0"));
  EXPECT_THAT(error_for("\"steps\": 10", "\"steps\": 1"), HasSubstr("/optimizer/warmup_steps: must not exceed steps"));
  EXPECT_THAT(error_for("\"max_iterations\": 4", "\"max_iterations\": 1"),
              HasSubstr("/detector/max_iterations: must be at least the configured iterations"));
  EXPECT_THAT(error_for("\"mode\": \"mgrit\"", "\"mode\": \"serial\""),
              HasSubstr("/detector/interval: the detector watches MGRIT solves"));
  EXPECT_THAT(error_for("\"seed\": 3", "\"seed\": -3"), HasSubstr("/seed: must be a non-negative integer"));
  EXPECT_THAT(error_for("\"buffer_before\": 1", "\"buffer_before\": 1.5"), HasSubstr("/model/buffer_before: must be an integer"));
  EXPECT_THAT(error_of([] { parse_train_config("{\"format\": ", "c.json"); }), StartsWith("c.json: not valid JSON"));
  EXPECT_THAT(error_of([] {
                parse_train_config(R"({"format": "plait.train", "version": 1, "task": "vit", "model": {"patch": 5}})", "v.json");
              }),
              HasSubstr("/model/patch: must divide the image side 28"));
  // Several problems at once are all reported.
  EXPECT_THAT(error_for("\"lr\": 0.1", "\"lr\": 0, \"beta1\": 2"), HasSubstr("/optimizer/beta1"));
}

const std::string multilevel_config = R"({
  "format": "plait.train", "version": 1,
  "model": {"ode_layers": 12},
  "solver": {"mode": "multilevel", "levels": 3, "cf": 2, "coarse_steps": 2, "fine_steps": 1,
             "correction": false, "restriction": "average", "level_solver": "mgrit", "coarse_lr_factor": 0.5},
  "steps": 40, "checkpoint_interval": 8
})";

TEST(TrainConfig, ParsesAMultilevelSolverAndItsLevels) {
  const TrainConfig c = parse_train_config(multilevel_config, "m.json");
  const auto& ml = c.solver.multilevel;
  EXPECT_EQ(ml.levels, 3);
  EXPECT_EQ(ml.coarse_steps, 2);
  EXPECT_FALSE(ml.correction);
  EXPECT_EQ(ml.restriction, "average");
  EXPECT_EQ(ml.coarse_lr_factor, 0.5);
  EXPECT_EQ(initial_settings(c).mode, "mgrit");
  EXPECT_EQ(training_levels(c), 3);
  EXPECT_EQ(level_config(c, 2).model.ode_layers, 3);
  EXPECT_EQ(parse_train_config(dump_train_config(c), "again").solver.multilevel.restriction, "average");
  // Cycles of 4 steps: 2 on level 2, then 1 on level 1 and 1 on level 0, each after a prolongation.
  EXPECT_EQ(cycle_steps(c), 4);
  const std::vector<std::tuple<int, bool, int>> plan = {{2, true, -1}, {2, false, -1}, {1, false, 2}, {0, false, 1}};
  for (int step = 0; step < 8; ++step) {
    const CycleStep where = cycle_step(c, step);
    EXPECT_EQ(std::make_tuple(where.level, where.starts_cycle, where.prolong_from), plan[step % 4]) << "step " << step;
  }
}

TEST(TrainConfig, BadMultilevelSettingsAreOneLineErrors) {
  auto error_for = [](const std::string& from, const std::string& to) {
    return error_after_replacing(multilevel_config, from, to, "m.json");
  };
  EXPECT_THAT(error_for("\"levels\": 3", "\"levels\": 4"),
              StartsWith("m.json: /solver/cf: 2 must divide the 3 ODE blocks of level 2 (ode_layers 12, levels 4)"));
  EXPECT_THAT(error_for("\"levels\": 3", "\"levels\": 0"), HasSubstr("/solver/levels: must be an integer in 1..16"));
  EXPECT_THAT(error_for("\"cf\": 2", "\"cf\": 5"), HasSubstr("/solver/cf: 5 must divide the 12 ODE blocks of level 0"));
  EXPECT_THAT(error_for("\"steps\": 40", "\"steps\": 42"),
              HasSubstr("/steps: must be a whole number of cycles of 4 optimizer steps"));
  EXPECT_THAT(error_for("\"checkpoint_interval\": 8", "\"checkpoint_interval\": 6"),
              HasSubstr("/checkpoint_interval: must be a whole number of cycles of 4"));
  EXPECT_THAT(error_for("\"fine_steps\": 1", "\"fine_steps\": 0"), HasSubstr("/solver/fine_steps: must be an integer in 1.."));
  EXPECT_THAT(error_for("\"restriction\": \"average\"", "\"restriction\": \"mean\""),
              HasSubstr("/solver/restriction: must be \"average\" or \"injection\""));
  EXPECT_THAT(error_for("\"mode\": \"multilevel\"", "\"mode\": \"mgrit\""),
              HasSubstr("/solver: levels, cf, coarse_steps, fine_steps, correction, restriction, level_solver and coarse_lr_factor belong to mode \"multilevel\""));
  EXPECT_THAT(error_for("\"steps\": 40", "\"steps\": 40, \"detector\": {\"interval\": 4}"),
              HasSubstr("/detector/interval: the detector watches single-level MGRIT runs"));
  // One line, whatever the count of problems.
  EXPECT_EQ(error_for("\"cf\": 2", "\"cf\": 5").find('\n'), std::string::npos);
}

TEST(TextCorpus, ReadsADirectoryOfTextFilesSkippingIndexFiles) {
  const fs::path dir = scratch("corpus");
  write(dir / "b", "world\n");
  write(dir / "a", "hello ");
  write(dir / "a.dat", std::string("\x00\x01\x02", 3));
  EXPECT_EQ(load_text_corpus(dir.string()), "hello world\n");
  EXPECT_EQ(load_text_corpus((dir / "b").string()), "world\n");
  EXPECT_THAT(error_of([&] { load_text_corpus((dir / "missing").string()); }),
              HasSubstr("missing: no such corpus file or directory"));
  write(dir / "empty", "");
  EXPECT_THAT(error_of([&] { load_text_corpus((dir / "empty").string()); }), HasSubstr("empty: the corpus is empty"));
  const fs::path none = scratch("corpus-none");
  write(none / "only.dat", "x");
  EXPECT_THAT(error_of([&] { load_text_corpus(none.string()); }), HasSubstr("no text files"));
}

TEST(CharTokenizer, RoundTripsAndRefusesUnknownBytes) {
  const CharTokenizer tokenizer("banana band");
  EXPECT_EQ(tokenizer.vocab_size(), 5);  // ' ', a, b, d, n
  const auto ids = tokenizer.encode("bad nab");
  EXPECT_EQ(tokenizer.decode(ids), "bad nab");
  EXPECT_EQ(ids[0], 2);
  EXPECT_THAT(error_of([&] { tokenizer.encode("bax"); }), HasSubstr("byte 120 at offset 2 is not in the vocabulary"));
  EXPECT_THAT(error_of([] { CharTokenizer(""); }), HasSubstr("empty text"));
}

std::string idx_header(const std::vector<std::uint32_t>& dims) {
  std::string bytes{'\0', '\0', '\x08', char(dims.size())};
  for (auto d : dims)
    for (int shift : {24, 16, 8, 0}) bytes.push_back(char((d >> shift) & 0xff));
  return bytes;
}

std::string idx_bytes(const std::vector<std::uint32_t>& dims, std::uint8_t value = 3) {
  std::size_t count = 1;
  for (auto d : dims) count *= d;
  return idx_header(dims) + std::string(count, char(value));
}

std::vector<std::uint8_t> as_bytes(const std::string& text) { return {text.begin(), text.end()}; }

TEST(Idx, ParsesAndRefusesBrokenFiles) {
  const IdxArray array = parse_idx(as_bytes(idx_bytes({2, 3})), "x.idx");
  EXPECT_EQ(array.dims, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(array.values.size(), 6u);
  std::string bad = idx_bytes({2, 3});
  EXPECT_THAT(error_of([&] { parse_idx(as_bytes(bad.substr(0, bad.size() - 1)), "x.idx"); }),
              HasSubstr("x.idx: IDX dimensions need 6 bytes of data, the file has 5"));
  bad[2] = '\x0d';
  EXPECT_THAT(error_of([&] { parse_idx(as_bytes(bad), "x.idx"); }), HasSubstr("element type 13 is not unsigned byte"));
  EXPECT_THAT(error_of([] { parse_idx(as_bytes("\x01\x02"), "x.idx"); }), HasSubstr("shorter than its 4-byte magic"));
  EXPECT_THAT(error_of([] { parse_idx(as_bytes(idx_header({0xffffff, 0xffffff})), "x.idx"); }),
              HasSubstr("ask for more than"));
}

void write_gzipped(const fs::path& path, const std::string& bytes) {
  gzFile out = gzopen(path.c_str(), "wb");
  gzwrite(out, bytes.data(), unsigned(bytes.size()));
  gzclose(out);
}

TEST(Idx, LoadsImageSetsAndChecksThemAgainstEachOther) {
  const fs::path dir = scratch("idx");
  write_gzipped(dir / "train-images-idx3-ubyte.gz", idx_bytes({4, 28, 28}, 200));
  write(dir / "train-labels-idx1-ubyte", idx_bytes({4}, 7));
  const ImageSet set = load_idx_images(dir.string(), "train", 10);
  EXPECT_EQ(set.count, 4);
  EXPECT_EQ(set.rows, 28);
  EXPECT_EQ(set.pixels[5], 200);
  EXPECT_EQ(set.labels[3], 7);
  write(dir / "train-labels-idx1-ubyte", idx_bytes({3}, 7));
  EXPECT_THAT(error_of([&] { load_idx_images(dir.string(), "train", 10); }), HasSubstr("3 labels for 4 images"));
  write(dir / "train-labels-idx1-ubyte", idx_bytes({4}, 12));
  EXPECT_THAT(error_of([&] { load_idx_images(dir.string(), "train", 10); }), HasSubstr("label 12 of item 0 is not below 10"));
  EXPECT_THAT(error_of([&] { load_idx_images(dir.string(), "t10k", 10); }),
              HasSubstr("t10k-images-idx3-ubyte.gz: missing"));
  // A gzip stream cut short.
  std::ifstream in(dir / "train-images-idx3-ubyte.gz", std::ios::binary);
  const std::string gz((std::istreambuf_iterator<char>(in)), {});
  write(dir / "train-images-idx3-ubyte.gz", gz.substr(0, gz.size() / 2));
  EXPECT_THAT(error_of([&] { read_maybe_gzipped((dir / "train-images-idx3-ubyte.gz").string()); }),
              HasSubstr("truncated gzip data"));
}

TEST(Idx, ReadsTheInstalledFashionMnist) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir + "/t10k-labels-idx1-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const ImageSet test = load_idx_images(dir, "t10k", 10);
  EXPECT_EQ(test.count, 10000);
  EXPECT_EQ(test.rows, 28);
  EXPECT_EQ(test.cols, 28);
  std::vector<int> per_class(10, 0);
  for (auto label : test.labels) per_class[label] += 1;
  for (int count : per_class) EXPECT_EQ(count, 1000);  // the test split is balanced
}

TEST(TensorFile, RoundTripsAndRefusesDamage) {
  TensorFile file;
  file.meta_json = R"({"step":7})";
  file.tensors.push_back({"a", {2, 2}, {1, 2, 3, 4}});
  file.tensors.push_back({"b", {3}, {5, 6, 7}});
  const fs::path path = scratch("tensors") / "t.bin";
  save_tensor_file(file, path.string());
  const TensorFile loaded = load_tensor_file(path.string());
  EXPECT_EQ(loaded.meta_json, file.meta_json);
  ASSERT_EQ(loaded.tensors.size(), 2u);
  EXPECT_EQ(loaded.tensors[1].values, (std::vector<float>{5, 6, 7}));
  EXPECT_EQ(loaded.tensors[0].shape, (std::vector<std::int64_t>{2, 2}));
  const std::string bytes = serialize_tensor_file(file);
  EXPECT_THAT(error_of([&] { parse_tensor_file(bytes.substr(0, bytes.size() - 4), "t.bin"); }),
              HasSubstr("t.bin: tensor 1 (b): data runs past the end of the file"));
  EXPECT_THAT(error_of([&] { parse_tensor_file(bytes + "x", "t.bin"); }), HasSubstr("1 bytes after the last tensor"));
  EXPECT_THAT(error_of([&] { parse_tensor_file("PLAITTN", "t.bin"); }), HasSubstr("not a plait tensor file"));
}

}  // namespace
}  // namespace plait::training
