#include "plait/training/tensor_file.hpp"

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::training {

namespace {
constexpr char magic[8] = {'P', 'L', 'A', 'I', 'T', 'T', 'N', 'S'};
}

std::string serialize_tensor_file(const TensorFile& file) {
  nlohmann::json header{{"format", "plait.tensors"}, {"version", 1}, {"meta", nlohmann::json::parse(file.meta_json)}};
  header["tensors"] = nlohmann::json::array();
  for (const auto& t : file.tensors) header["tensors"].push_back({{"name", t.name}, {"shape", t.shape}});
  const std::string header_text = header.dump();
  std::string bytes(magic, sizeof magic);
  const std::uint64_t length = header_text.size();
  for (int i = 0; i < 8; ++i) bytes.push_back(char((length >> (8 * i)) & 0xff));
  bytes += header_text;
  for (const auto& t : file.tensors)
    if (!t.values.empty()) bytes.append(reinterpret_cast<const char*>(t.values.data()), t.values.size() * sizeof(float));
  return bytes;
}

void save_tensor_file(const TensorFile& file, const std::string& path) {
  write_text_file(path, serialize_tensor_file(file));  // atomic: temporary file, then rename
}

TensorFile parse_tensor_file(const std::string& bytes, const std::string& origin) {
  if (bytes.size() < 16 || std::memcmp(bytes.data(), magic, sizeof magic) != 0)
    throw Error(origin, "not a plait tensor file (magic \"PLAITTNS\" missing)");
  std::uint64_t length = 0;
  for (int i = 0; i < 8; ++i) length |= std::uint64_t(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
  if (length > max_tensor_file_header || length > bytes.size() - 16)
    throw Error(origin, "header length " + std::to_string(length) + " is beyond the file or the limit");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.substr(16, length));
  } catch (const nlohmann::json::exception& error) {
    throw Error(origin, std::string("header is not valid JSON: ") + error.what());
  }
  if (!header.is_object() || header.value("format", nlohmann::json()) != "plait.tensors" ||
      header.value("version", nlohmann::json()) != 1)
    throw Error(origin, "header must say {\"format\": \"plait.tensors\", \"version\": 1}");
  if (!header.contains("meta") || !header["meta"].is_object()) throw Error(origin, "header has no \"meta\" object");
  if (!header.contains("tensors") || !header["tensors"].is_array()) throw Error(origin, "header has no \"tensors\" list");
  TensorFile file;
  file.meta_json = header["meta"].dump();
  std::uint64_t offset = 16 + length, total = 0;
  std::set<std::string> names;
  for (const auto& entry : header["tensors"]) {
    const std::string where = "tensor " + std::to_string(file.tensors.size());
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() || !entry.contains("shape") ||
        !entry["shape"].is_array())
      throw Error(origin, where + ": needs \"name\" (string) and \"shape\" (list)");
    NamedTensor tensor{entry["name"].get<std::string>(), {}, {}};
    if (!names.insert(tensor.name).second) throw Error(origin, where + ": name \"" + tensor.name + "\" repeats");
    std::uint64_t count = 1;
    for (const auto& size : entry["shape"]) {
      if (!size.is_number_integer() || size.get<std::int64_t>() < 0 || size.get<std::int64_t>() > (1LL << 34))
        throw Error(origin, where + " (" + tensor.name + "): shape entries must be integers in 0..2^34");
      count *= std::uint64_t(size.get<std::int64_t>());
      if (count > max_tensor_file_values) throw Error(origin, where + " (" + tensor.name + "): too many values");
      tensor.shape.push_back(size.get<std::int64_t>());
    }
    total += count;
    if (total > max_tensor_file_values || offset + count * sizeof(float) > bytes.size())
      throw Error(origin, where + " (" + tensor.name + "): data runs past the end of the file (truncated?)");
    tensor.values.resize(count);
    if (count > 0) std::memcpy(tensor.values.data(), bytes.data() + offset, count * sizeof(float));
    offset += count * sizeof(float);
    file.tensors.push_back(std::move(tensor));
  }
  if (offset != bytes.size())
    throw Error(origin, std::to_string(bytes.size() - offset) + " bytes after the last tensor");
  return file;
}

TensorFile load_tensor_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, "cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_tensor_file(buffer.str(), path);
}

}  // namespace plait::training
