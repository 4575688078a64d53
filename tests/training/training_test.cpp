// The torch-free half of training: configs (every bad value its own error),
// the text corpus and its character and word tokenizers, IDX files (real Fashion-MNIST where the
// package is installed, and broken copies), tensor files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <zlib.h>

#include "config_errors.hpp"
#include "error_text.hpp"
#include "plait/training/config.hpp"
#include "plait/training/datasets.hpp"
#include "plait/training/tensor_file.hpp"
#include "plait/training/word_tokenizer.hpp"

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

TEST(TrainConfig, TheTokenizerIsCharUnlessTheDataSaysWord) {
  const TrainConfig plain = parse_train_config(valid_config, "c.json");
  EXPECT_EQ(plain.data.tokenizer, "char");
  EXPECT_EQ(plain.data.vocabulary, 4096);
  const TrainConfig word = parse_train_config(
      R"({"format": "plait.train", "version": 1, "data": {"tokenizer": "word", "vocabulary": 1000}})", "w.json");
  EXPECT_EQ(word.data.tokenizer, "word");
  EXPECT_EQ(word.data.vocabulary, 1000);
  const TrainConfig again = parse_train_config(dump_train_config(word), "dump");
  EXPECT_EQ(again.data.tokenizer, "word");
  EXPECT_EQ(again.data.vocabulary, 1000);
}

TEST(TrainConfig, BadTokenizerSettingsAreOneLineErrors) {
  const std::string config = R"({"format": "plait.train", "version": 1, "data": {"tokenizer": "word", "vocabulary": 4096}})";
  auto error_for = [&](const std::string& from, const std::string& to) {
    return error_after_replacing(config, from, to, "w.json");
  };
  EXPECT_EQ(error_for("\"word\"", "\"bpe\""), "w.json: /data/tokenizer: must be \"char\" or \"word\"");
  EXPECT_EQ(error_for("4096", "256"), "w.json: /data/vocabulary: must be an integer in 257..65536");
  EXPECT_EQ(error_for("4096", "65537"), "w.json: /data/vocabulary: must be an integer in 257..65536");
  EXPECT_EQ(error_for("4096", "300.5"), "w.json: /data/vocabulary: must be an integer in 257..65536");
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

std::vector<std::string> pieces_of(const std::string& text) {
  std::vector<std::string> pieces;
  for_each_piece(text, [&](std::string_view piece) { pieces.emplace_back(piece); });
  return pieces;
}

TEST(WordTokenizer, CutsWordsWithOneLeadingSpaceAndEveryOtherByteAlone) {
  EXPECT_EQ(pieces_of("Hello, the  world42\n\xc3\xa9t\xc3\xa9 x"),
            (std::vector<std::string>{"Hello", ",", " the", " ", " world42", "\n", "\xc3", "\xa9", "t", "\xc3", "\xa9",
                                      " x"}));
  EXPECT_EQ(pieces_of(" "), (std::vector<std::string>{" "}));
}

TEST(WordTokenizer, RanksWordsByCountThenByTheirBytes) {
  const std::string text = " the cat the dog the cat dog ox";
  const WordTokenizer all(text, 4096);
  EXPECT_EQ(all.vocab_size(), 256 + 4);  // " the", " cat", " dog", " ox"; fewer words than asked for
  EXPECT_EQ(all.piece(256), " the");
  EXPECT_EQ(all.piece(257), " cat");  // 2 each: " cat" < " dog"
  EXPECT_EQ(all.piece(258), " dog");
  EXPECT_EQ(all.piece(259), " ox");
  const WordTokenizer two(text, 258);
  EXPECT_EQ(two.vocab_size(), 258);
  EXPECT_EQ(two.encode(" the cat"), (std::vector<std::int32_t>{256, 257}));
  // A word outside the vocabulary is its bytes.
  EXPECT_EQ(two.encode(" dog."), (std::vector<std::int32_t>{' ', 'd', 'o', 'g', '.'}));
  EXPECT_EQ(two.decode(two.encode(" dog. the")), " dog. the");
}

TEST(WordTokenizer, RoundTripsEveryByteAndRefusesBadInput) {
  std::string bytes;
  for (int byte = 0; byte < 256; ++byte) bytes += char(byte) + std::string(" w") + std::to_string(byte % 7);
  const WordTokenizer tokenizer(bytes, 300);
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(bytes)), bytes);
  const WordTokenizer other("abc abc", 257);
  EXPECT_EQ(other.decode(other.encode(bytes)), bytes);
  EXPECT_EQ(error_of([&] { other.decode({'a', 257}); }), "tokenizer: id 257 is not in the vocabulary");
  EXPECT_EQ(error_of([&] { other.decode({-1}); }), "tokenizer: id -1 is not in the vocabulary");
  EXPECT_EQ(error_of([] { WordTokenizer("abc", 256); }), "tokenizer: a vocabulary of 256 is outside 257..65536");
  EXPECT_EQ(error_of([] { WordTokenizer("abc", 65537); }), "tokenizer: a vocabulary of 65537 is outside 257..65536");
  EXPECT_EQ(error_of([] { WordTokenizer("", 4096); }), "tokenizer: cannot build a vocabulary from empty text");
}

TEST(WordTokenizer, HalvesTheFortunesCorpus) {
  const std::string path = "/usr/share/games/fortunes";
  if (!fs::exists(path)) GTEST_SKIP() << "fortunes-min is not installed";
  const std::string text = load_text_corpus(path);
  const WordTokenizer tokenizer(text, 4096);
  EXPECT_EQ(tokenizer.vocab_size(), 4096);
  EXPECT_EQ(tokenizer.piece(256), " the");  // the most frequent word
  const auto ids = tokenizer.encode(text);
  EXPECT_EQ(tokenizer.decode(ids), text);
  // 0.51 tokens per byte (2.58 MB): the rare words are spelled out in bytes.
  EXPECT_LT(double(ids.size()) / double(text.size()), 0.55);
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
