#include "detail/json_reader.hpp"

#include <cmath>

#include "plait/schedule/error.hpp"

namespace plait::costmodels::detail {
namespace {

std::string pointer_text(const JsonReader::Pointer& at) {
  const std::string text = at.to_string();
  return text.empty() ? "/" : text;
}

}  // namespace

void JsonReader::problem(const Pointer& at, std::string why) {
  problems_.push_back(pointer_text(at) + ": " + std::move(why));
}

void JsonReader::throw_if_problems() const {
  if (problems_.empty()) return;
  if (problems_.size() == 1) throw Error(origin_, problems_.front());
  std::string all = std::to_string(problems_.size()) + " problems: ";
  for (std::size_t i = 0; i < problems_.size(); ++i) all += (i ? "; " : "") + problems_[i];
  throw Error(origin_, all);
}

const JsonReader::json* JsonReader::member(const json& object, const Pointer& at,
                                           std::string_view key, bool optional) {
  if (!object.is_object()) {
    problem(at, "expected an object");
    return nullptr;
  }
  const auto found = object.find(std::string(key));
  if (found == object.end()) {
    if (!optional) problem(at, "missing key \"" + std::string(key) + "\"");
    return nullptr;
  }
  return &*found;
}

const JsonReader::json* JsonReader::object(const json& parent, const Pointer& at,
                                           std::string_view key, bool optional) {
  const json* value = member(parent, at, key, optional);
  if (value && !value->is_object()) {
    problem(at / std::string(key), "expected an object");
    return nullptr;
  }
  return value;
}

const JsonReader::json* JsonReader::array(const json& parent, const Pointer& at,
                                          std::string_view key) {
  const json* value = member(parent, at, key);
  if (value && !value->is_array()) {
    problem(at / std::string(key), "expected an array");
    return nullptr;
  }
  return value;
}

std::string JsonReader::string(const json& parent, const Pointer& at, std::string_view key) {
  const json* value = member(parent, at, key);
  if (!value) return "";
  if (!value->is_string()) {
    problem(at / std::string(key), "expected a string");
    return "";
  }
  return value->get<std::string>();
}

bool JsonReader::boolean(const json& parent, const Pointer& at, std::string_view key) {
  const json* value = member(parent, at, key);
  if (!value) return false;
  if (!value->is_boolean()) {
    problem(at / std::string(key), "expected true or false");
    return false;
  }
  return value->get<bool>();
}

double JsonReader::number(const json& parent, const Pointer& at, std::string_view key,
                          std::optional<double> minimum, std::string_view what) {
  const json* value = member(parent, at, key);
  if (!value) return 0;
  if (!value->is_number()) {
    problem(at / std::string(key), "expected a number");
    return 0;
  }
  const double number = value->get<double>();
  if (!std::isfinite(number)) {
    problem(at / std::string(key), "not a finite number");
  } else if (minimum && number < *minimum) {
    problem(at / std::string(key), (number < 0 ? "negative " : "too small ") +
                                       std::string(what) + " (" + value->dump() + ")");
  }
  return number;
}

double JsonReader::seconds(const json& parent, const Pointer& at, std::string_view key) {
  return number(parent, at, key, 0.0, "time");
}

std::int64_t JsonReader::integer(const json& parent, const Pointer& at, std::string_view key,
                                 std::int64_t minimum, std::int64_t maximum) {
  const json* value = member(parent, at, key);
  if (!value) return 0;
  if (!value->is_number_integer()) {
    problem(at / std::string(key), "expected an integer");
    return 0;
  }
  const bool too_large = value->is_number_unsigned()
                             ? value->get<std::uint64_t>() > static_cast<std::uint64_t>(maximum)
                             : value->get<std::int64_t>() > maximum;
  if (too_large) {
    problem(at / std::string(key), value->dump() + " above the limit of " + std::to_string(maximum));
    return 0;
  }
  const auto number = value->get<std::int64_t>();
  if (number < minimum) {
    problem(at / std::string(key),
            "expected at least " + std::to_string(minimum) + ", got " + std::to_string(number));
  }
  return number;
}

}  // namespace plait::costmodels::detail
