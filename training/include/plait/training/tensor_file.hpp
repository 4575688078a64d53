// The file behind every training checkpoint: named fp32 tensors and a JSON
// header, written atomically (temporary file, then rename) and validated on
// load (magic, header, shapes against the data, exact length).
//
// Layout: "PLAITTNS" | uint64 little-endian header length | header JSON
//   {"format": "plait.tensors", "version": 1, "meta": {...},
//    "tensors": [{"name", "shape": [...]}, ...]} | fp32 data, tensors in order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace plait::training {

inline constexpr std::uint64_t max_tensor_file_header = 16u << 20;     // bytes of header JSON
inline constexpr std::uint64_t max_tensor_file_values = 1ULL << 34;   // fp32 values in one file

struct NamedTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> values;  // row-major, product of shape
};

struct TensorFile {
  std::string meta_json = "{}";  // free-form metadata (step, settings, ...)
  std::vector<NamedTensor> tensors;
};

void save_tensor_file(const TensorFile& file, const std::string& path);
// Throws plait::Error "<path>: <reason>" on any malformed or truncated input.
TensorFile load_tensor_file(const std::string& path);
TensorFile parse_tensor_file(const std::string& bytes, const std::string& origin);
std::string serialize_tensor_file(const TensorFile& file);

}  // namespace plait::training
