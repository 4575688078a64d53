// What both readers of a Program's ops share (program_reader.cpp: nlohmann's
// SAX events; program_scanner.cpp: a scanner of the text): where the ops
// arrays are, the fields of the op being read, and the ops read so far.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "json_fields.hpp"

namespace plait::schedule::detail {

using Type = json::value_t;

// The fields of the op being read; unknown fields are ignored, as a document's are.
class OpSlots {
 public:
  struct Slot {
    Type type = Type::discarded;  // discarded: absent
    std::string text;
    std::int64_t integer = 0;
    std::uint64_t natural = 0;
    double number = 0;
    bool flag = false;
  };

  void clear() {
    for (Slot& slot : slots_) slot.type = Type::discarded;
  }

  // The slot of a field name, or null for a field ops do not have.
  Slot* find(std::string_view key) {
    for (int f = 0; f < static_cast<int>(OpField::count); ++f)
      if (key.size() == name_sizes_[f] && key.compare(op_field_names[f]) == 0) return &slots_[f];
    return nullptr;
  }

  template <typename T>
  std::optional<T> get(OpField key, const std::string& where) const {
    const Slot& slot = slots_[static_cast<int>(key)];
    if (slot.type == Type::discarded) return std::nullopt;
    if constexpr (std::is_same_v<T, std::string>) {
      if (slot.type == Type::string) return slot.text;
    } else if constexpr (std::is_same_v<T, bool>) {
      if (slot.type == Type::boolean) return slot.flag;
    } else {
      if (slot.type == Type::number_unsigned && std::in_range<T>(slot.natural)) return static_cast<T>(slot.natural);
      if (slot.type == Type::number_integer && std::in_range<T>(slot.integer)) return static_cast<T>(slot.integer);
    }
    // Not what the field holds: the document reader's own error for this value.
    json object = json::object();
    object[name_of(key)] = value_of(slot);
    return field<T>(object, name_of(key), where);
  }

 private:
  static json value_of(const Slot& slot) {
    switch (slot.type) {
      case Type::string: return slot.text;
      case Type::boolean: return slot.flag;
      case Type::number_unsigned: return slot.natural;
      case Type::number_integer: return slot.integer;
      case Type::number_float: return slot.number;
      case Type::array: return json::array();
      case Type::object: return json::object();
      default: return nullptr;
    }
  }

  std::array<Slot, static_cast<std::size_t>(OpField::count)> slots_;
  static constexpr auto name_sizes_ = [] {  // compared first: most names differ in length
    std::array<std::size_t, static_cast<std::size_t>(OpField::count)> sizes{};
    for (std::size_t f = 0; f < sizes.size(); ++f) sizes[f] = std::char_traits<char>::length(op_field_names[f]);
    return sizes;
  }();
};

// Where the ops arrays are, from the document's keys and containers (depth:
// containers open when the event comes): the document's keys at 1, a rank's
// at 3, a section's at 5; an ops array opens at 5.
struct OpsLocator {
  long rank = -1, section = -1;
  bool in_ranks = false, in_sections = false, ops_key = false;

  void key(int depth, std::string_view name) {
    if (depth == 1) in_ranks = name == "rank_programs";
    if (depth == 3) in_sections = in_ranks && name == "sections";
    if (depth == 5) ops_key = in_sections && name == "ops";
  }
  void object_starts(int depth) {
    if (depth == 2 && in_ranks) ++rank, section = -1, in_sections = false;
    if (depth == 4 && in_sections) ++section, ops_key = false;
  }
  bool ops_array_starts(int depth) const { return depth == 5 && ops_key; }
};

// The ops of one ops array, and its section.
struct OpList {
  std::size_t rank = 0, section = 0;
  std::vector<Op> ops;
};

// Puts each list of ops into its section (read from the document without them);
// of two ops arrays in one section the last counts, as a document's last key does.
inline void fill(Program& program, std::vector<OpList>& lists) {
  for (OpList& list : lists)
    if (list.rank < program.rank_programs.size() && list.section < program.rank_programs[list.rank].sections.size())
      program.rank_programs[list.rank].sections[list.section].ops = std::move(list.ops);
}

}  // namespace plait::schedule::detail
