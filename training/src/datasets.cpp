#include "plait/training/datasets.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <zlib.h>

#include "plait/schedule/error.hpp"

namespace plait::training {

namespace fs = std::filesystem;

namespace {

std::string read_file_limited(const fs::path& path, std::size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string(), "cannot open");
  std::string text;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, std::size_t(in.gcount()));
    if (text.size() > limit) throw Error(path.string(), "larger than " + std::to_string(limit) + " bytes");
  }
  if (in.bad()) throw Error(path.string(), "read error");
  return text;
}

}  // namespace

std::string load_text_corpus(const std::string& path) {
  std::error_code error;
  const auto status = fs::status(path, error);
  if (error || !fs::exists(status)) throw Error(path, "no such corpus file or directory");
  std::string text;
  if (fs::is_directory(status)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(path, error))
      if (entry.is_regular_file() && entry.path().filename().string().find('.') == std::string::npos)
        files.push_back(entry.path());
    if (error) throw Error(path, "cannot list: " + error.message());
    std::sort(files.begin(), files.end());
    if (files.empty()) throw Error(path, "no text files (names without '.') in this directory");
    for (const auto& file : files) {
      text += read_file_limited(file, max_corpus_bytes - text.size());
    }
  } else {
    text = read_file_limited(path, max_corpus_bytes);
  }
  if (text.empty()) throw Error(path, "the corpus is empty");
  return text;
}

CharTokenizer::CharTokenizer(const std::string& text) : id_of_(256, -1) {
  if (text.empty()) throw Error("tokenizer", "cannot build a vocabulary from empty text");
  std::vector<bool> seen(256, false);
  for (unsigned char c : text) seen[c] = true;
  for (int byte = 0; byte < 256; ++byte)
    if (seen[byte]) {
      id_of_[byte] = int(alphabet_.size());
      alphabet_.push_back(char(byte));
    }
}

std::vector<std::int32_t> CharTokenizer::encode(const std::string& text) const {
  std::vector<std::int32_t> ids(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const int id = id_of_[static_cast<unsigned char>(text[i])];
    if (id < 0)
      throw Error("tokenizer", "byte " + std::to_string(static_cast<unsigned char>(text[i])) + " at offset " +
                                   std::to_string(i) + " is not in the vocabulary");
    ids[i] = id;
  }
  return ids;
}

std::string CharTokenizer::decode(const std::vector<std::int32_t>& ids) const {
  std::string text;
  for (std::int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) throw Error("tokenizer", "id " + std::to_string(id) + " is not in the vocabulary");
    text.push_back(alphabet_[std::size_t(id)]);
  }
  return text;
}

IdxArray parse_idx(const std::vector<std::uint8_t>& bytes, const std::string& origin) {
  if (bytes.size() < 4) throw Error(origin, "not an IDX file: shorter than its 4-byte magic");
  if (bytes[0] != 0 || bytes[1] != 0) throw Error(origin, "not an IDX file: the magic must start with two zero bytes");
  if (bytes[2] != 0x08) throw Error(origin, "IDX element type " + std::to_string(bytes[2]) + " is not unsigned byte (8)");
  const int ndim = bytes[3];
  if (ndim < 1 || ndim > 4) throw Error(origin, "IDX with " + std::to_string(ndim) + " dimensions (1 to 4 supported)");
  const std::size_t header = 4 + 4 * std::size_t(ndim);
  if (bytes.size() < header) throw Error(origin, "truncated IDX header");
  IdxArray array;
  std::uint64_t elements = 1;
  for (int d = 0; d < ndim; ++d) {
    const std::uint8_t* p = bytes.data() + 4 + 4 * d;
    const std::uint64_t size = (std::uint64_t(p[0]) << 24) | (std::uint64_t(p[1]) << 16) | (std::uint64_t(p[2]) << 8) | p[3];
    elements *= size;  // at most 2^32 per factor and 4 factors: checked against the data below
    if (elements > max_idx_bytes) throw Error(origin, "IDX dimensions ask for more than " + std::to_string(max_idx_bytes) + " values");
    array.dims.push_back(std::int64_t(size));
  }
  if (bytes.size() - header != elements)
    throw Error(origin, "IDX dimensions need " + std::to_string(elements) + " bytes of data, the file has " +
                            std::to_string(bytes.size() - header));
  array.values.assign(bytes.begin() + long(header), bytes.end());
  return array;
}

std::vector<std::uint8_t> read_maybe_gzipped(const std::string& path) {
  const std::string raw = read_file_limited(path, max_idx_bytes);
  if (raw.size() < 2 || static_cast<unsigned char>(raw[0]) != 0x1f || static_cast<unsigned char>(raw[1]) != 0x8b)
    return std::vector<std::uint8_t>(raw.begin(), raw.end());
  z_stream stream{};
  if (inflateInit2(&stream, 15 + 16) != Z_OK) throw Error(path, "cannot start gzip decompression");
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  stream.avail_in = uInt(raw.size());
  std::vector<std::uint8_t> out;
  std::uint8_t buffer[1 << 16];
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    stream.next_out = buffer;
    stream.avail_out = sizeof buffer;
    status = inflate(&stream, Z_NO_FLUSH);
    if (status != Z_OK && status != Z_STREAM_END) {
      inflateEnd(&stream);
      throw Error(path, status == Z_BUF_ERROR ? "truncated gzip data" : "corrupt gzip data");
    }
    out.insert(out.end(), buffer, buffer + (sizeof buffer - stream.avail_out));
    if (out.size() > max_idx_bytes) {
      inflateEnd(&stream);
      throw Error(path, "decompresses to more than " + std::to_string(max_idx_bytes) + " bytes");
    }
  }
  inflateEnd(&stream);
  return out;
}

ImageSet load_idx_images(const std::string& dir, const std::string& split, int classes) {
  auto find = [&](const std::string& stem) {
    const fs::path plain = fs::path(dir) / stem, gzipped = fs::path(dir) / (stem + ".gz");
    if (fs::exists(gzipped)) return gzipped.string();
    if (fs::exists(plain)) return plain.string();
    throw Error(gzipped.string(), "missing (nor is there " + plain.filename().string() + ")");
  };
  const std::string images_path = find(split + "-images-idx3-ubyte"), labels_path = find(split + "-labels-idx1-ubyte");
  IdxArray images = parse_idx(read_maybe_gzipped(images_path), images_path);
  IdxArray labels = parse_idx(read_maybe_gzipped(labels_path), labels_path);
  if (images.dims.size() != 3) throw Error(images_path, "images must be a 3-dimensional IDX array [count, rows, cols]");
  if (labels.dims.size() != 1) throw Error(labels_path, "labels must be a 1-dimensional IDX array");
  if (images.dims[0] != labels.dims[0])
    throw Error(labels_path, std::to_string(labels.dims[0]) + " labels for " + std::to_string(images.dims[0]) + " images");
  if (images.dims[0] == 0) throw Error(images_path, "holds no images");
  for (std::size_t i = 0; i < labels.values.size(); ++i)
    if (labels.values[i] >= classes)
      throw Error(labels_path, "label " + std::to_string(labels.values[i]) + " of item " + std::to_string(i) +
                                   " is not below " + std::to_string(classes));
  return {images.dims[0], images.dims[1], images.dims[2], std::move(images.values), std::move(labels.values)};
}

}  // namespace plait::training
