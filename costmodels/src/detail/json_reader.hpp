// Reads a JSON document field by field, gathering every problem with its JSON
// pointer, so a bad file gets one error listing all that is wrong with it.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace plait::costmodels::detail {

class JsonReader {
 public:
  using json = nlohmann::json;
  using Pointer = json::json_pointer;

  explicit JsonReader(std::string origin) : origin_(std::move(origin)) {}

  void problem(const Pointer& at, std::string why);
  bool ok() const { return problems_.empty(); }
  // Throws plait::Error naming the origin and every problem's pointer; no-op if ok.
  void throw_if_problems() const;

  // A member of `object` (reported missing unless optional); nullptr if absent.
  const json* member(const json& object, const Pointer& at, std::string_view key,
                     bool optional = false);
  const json* object(const json& parent, const Pointer& at, std::string_view key,
                     bool optional = false);
  const json* array(const json& parent, const Pointer& at, std::string_view key);
  std::string string(const json& parent, const Pointer& at, std::string_view key);
  bool boolean(const json& parent, const Pointer& at, std::string_view key);
  // A finite number; with `minimum`, values below it are problems ("what" names them).
  double number(const json& parent, const Pointer& at, std::string_view key,
                std::optional<double> minimum = std::nullopt, std::string_view what = "value");
  // Seconds: finite and >= 0 ("negative time").
  double seconds(const json& parent, const Pointer& at, std::string_view key);
  // An integer in [minimum, maximum] (by default what an int holds): floats and
  // larger values are problems, never truncated.
  std::int64_t integer(const json& parent, const Pointer& at, std::string_view key,
                       std::int64_t minimum, std::int64_t maximum = std::numeric_limits<int>::max());

 private:
  std::string origin_;
  std::vector<std::string> problems_;
};

}  // namespace plait::costmodels::detail
