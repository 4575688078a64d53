// Located reads of a Program's JSON fields, and the one definition of how an
// op is read from its fields, shared by the document reader (program_json.cpp)
// and the streaming reader of ops (program_reader.cpp).
#pragma once

#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "plait/schedule/error.hpp"
#include "plait/schedule/program.hpp"

namespace plait::schedule::detail {

using nlohmann::json;

// An integer field must be a JSON integer within T's range: a float or an
// out-of-range number is refused, never truncated.
template <typename T>
T integer_value(const json& value, const std::string& where) {
  if (!value.is_number_integer()) {
    throw Error(where, value.is_number() ? "expected an integer, got " + value.dump()
                                         : std::string("wrong type (") + value.type_name() + ")");
  }
  const bool fits = value.is_number_unsigned() ? std::in_range<T>(value.get<std::uint64_t>())
                                               : std::in_range<T>(value.get<std::int64_t>());
  if (!fits) {
    throw Error(where, value.dump() + " is outside " + std::to_string(std::numeric_limits<T>::min()) + ".." +
                           std::to_string(std::numeric_limits<T>::max()));
  }
  return value.get<T>();
}

// Reads a required field with a located, one-line error.
template <typename T>
T field(const json& object, const char* key, const std::string& where) {
  if (!object.is_object()) throw Error(where, "expected an object");
  const auto it = object.find(key);
  if (it == object.end()) throw Error(where, std::string("missing \"") + key + "\"");
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return integer_value<T>(*it, where + "/" + key);
  } else {
    try {
      return it->get<T>();
    } catch (const json::exception&) {
      throw Error(where + "/" + key, std::string("wrong type (") + it->type_name() + ")");
    }
  }
}

// The fields an op may have, by number: readers find them without comparing names.
enum class OpField { op, dst, a, b, c, level, block, span, grad, graph, peer, tag, bytes, overlap, per_tensor, count };
inline constexpr const char* op_field_names[] = {"op",   "dst",   "a",    "b",     "c",       "level",
                                                 "block", "span", "grad", "graph", "peer",    "tag",
                                                 "bytes", "overlap", "per_tensor"};
inline const char* name_of(OpField field) { return op_field_names[static_cast<int>(field)]; }

// An op's fields in a JSON object.
class JsonOpFields {
 public:
  explicit JsonOpFields(const json& object) : object_(object) {}
  template <typename T>
  std::optional<T> get(OpField key, const std::string& where) const {
    if (!object_.contains(name_of(key))) return std::nullopt;
    return field<T>(object_, name_of(key), where);
  }

 private:
  const json& object_;
};

template <typename Fields>
Buffer read_buffer(const Fields& in, OpField key, const std::string& where) {
  const auto text = in.template get<std::string>(key, where);
  if (!text) return {};
  try {
    return parse_buffer(*text);
  } catch (const Error& error) {
    throw error.within(where + "/" + name_of(key));
  }
}

// An op from its fields (`Fields::get<T>(key, where)`: nullopt when absent, a
// located error when of the wrong type), whoever reads them.
template <typename Fields>
Op read_op(const Fields& in, const std::string& where) {
  Op op;
  const auto kind = in.template get<std::string>(OpField::op, where);
  if (!kind) throw Error(where, "missing \"op\"");
  try {
    op.kind = parse_op_kind(*kind);
  } catch (const Error& error) {
    throw error.within(where);
  }
  op.dst = read_buffer(in, OpField::dst, where);
  op.a = read_buffer(in, OpField::a, where);
  op.b = read_buffer(in, OpField::b, where);
  op.c = read_buffer(in, OpField::c, where);
  op.level = in.template get<std::int32_t>(OpField::level, where).value_or(0);
  op.block = in.template get<std::int32_t>(OpField::block, where).value_or(-1);
  op.span = in.template get<std::int32_t>(OpField::span, where).value_or(0);
  op.accumulate_grad = in.template get<bool>(OpField::grad, where).value_or(false);
  if (const auto use = in.template get<std::string>(OpField::graph, where)) {
    if (*use == "keep" && op.kind == OpKind::step) op.graph = GraphUse::keep;
    else if (*use == "recompute" && op.kind == OpKind::step_adjoint) op.graph = GraphUse::recompute;
    else if (*use == "release" && (op.kind == OpKind::step_adjoint || op.kind == OpKind::step_weight))
      op.graph = GraphUse::release;
    else throw Error(where + "/graph", "\"" + *use + "\" is not a graph use of " + std::string(to_string(op.kind)) +
                                           " (step: keep; step_adjoint: recompute or release; step_weight: release)");
  }
  op.peer = in.template get<std::int32_t>(OpField::peer, where).value_or(-1);
  op.tag = in.template get<std::int32_t>(OpField::tag, where).value_or(0);
  op.bytes = in.template get<std::int64_t>(OpField::bytes, where).value_or(0);
  op.overlap = in.template get<bool>(OpField::overlap, where).value_or(false);
  op.per_tensor = in.template get<bool>(OpField::per_tensor, where).value_or(false);
  return op;
}

inline Op op_from_json(const json& in, const std::string& where) {
  if (!in.is_object()) throw Error(where, "expected an object");
  return read_op(JsonOpFields(in), where);
}

}  // namespace plait::schedule::detail
