// The protobuf wire format, read with every length checked (see detail/protobuf_wire.hpp).
#include "detail/protobuf_wire.hpp"

namespace plait::traces::detail {

WireReader::WireReader(std::string_view file, std::size_t begin, std::size_t end)
    : file_(file), at_(begin), end_(end) {}

WireReader::WireReader(std::string_view file, std::string_view part)
    : WireReader(file, part.data() - file.data(), part.data() - file.data() + part.size()) {}

std::uint64_t WireReader::varint() {
  const std::size_t start = at_;
  std::uint64_t value = 0;
  for (int shift = 0;; shift += 7) {
    if (at_ >= end_) throw WireError{start, "truncated varint"};
    const auto byte = static_cast<std::uint8_t>(file_[at_++]);
    if (shift == 63 && byte > 1) throw WireError{start, "varint longer than 64 bits"};
    value |= std::uint64_t{byte & 0x7fu} << shift;
    if (byte < 0x80) return value;
  }
}

std::string_view WireReader::length_delimited(const std::string& what) {
  const std::size_t start = at_;
  const std::uint64_t length = varint();
  if (length > left()) {
    throw WireError{start, what + " announces " + std::to_string(length) + " bytes, " + std::to_string(left()) +
                               " are left"};
  }
  at_ += length;
  return file_.substr(at_ - length, length);
}

WireField WireReader::next() {
  WireField field{.offset = at_};
  const std::uint64_t key = varint();
  field.number = key >> 3, field.wire = static_cast<int>(key & 7);
  const std::string name = "field " + std::to_string(field.number);
  if (field.number == 0 || field.number >= (1u << 29)) throw WireError{field.offset, name + " is not valid"};
  if (field.wire == varint_wire) {
    field.value = varint();
  } else if (field.wire == length_wire) {
    field.bytes = length_delimited(name);
  } else if (field.wire == fixed64_wire || field.wire == fixed32_wire) {
    const std::size_t size = field.wire == fixed64_wire ? 8 : 4;
    if (left() < size) throw WireError{at_, "truncated fixed" + std::to_string(size * 8)};
    for (std::size_t i = size; i-- > 0;) field.value = field.value << 8 | static_cast<std::uint8_t>(file_[at_ + i]);
    at_ += size;
  } else {
    throw WireError{field.offset, name + " has wire type " + std::to_string(field.wire) + ", unused in proto3"};
  }
  return field;
}

void expect_wire(const WireField& field, int wire, const char* name) {
  if (field.wire == wire) return;
  throw WireError{field.offset, std::string(name) + " (field " + std::to_string(field.number) + ") has wire type " +
                                    std::to_string(field.wire) + ", expected " + std::to_string(wire)};
}

bool is_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<std::uint8_t>(text[i++]);
    if (lead < 0x80) continue;
    const int more = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : lead >= 0xc0 ? 1 : -1;  // continuation bytes
    if (more < 0 || lead > 0xf4 || text.size() - i < static_cast<std::size_t>(more)) return false;
    std::uint32_t code = lead & (0x3fu >> more);
    for (int k = 0; k < more; ++k) {
      const auto next = static_cast<std::uint8_t>(text[i++]);
      if ((next & 0xc0) != 0x80) return false;
      code = code << 6 | (next & 0x3fu);
    }
    const std::uint32_t lowest[] = {0, 0x80, 0x800, 0x10000};  // one spelling per character
    if (code < lowest[more] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
  }
  return true;
}

std::string utf8_string(const WireField& field, const char* name) {
  expect_wire(field, length_wire, name);
  if (!is_utf8(field.bytes)) throw WireError{field.offset, std::string(name) + " is not valid UTF-8"};
  return std::string(field.bytes);
}

void read_varints(std::string_view file, const WireField& field, const char* name, std::vector<std::uint64_t>& values) {
  if (field.wire == varint_wire) {
    values.push_back(field.value);
    return;
  }
  expect_wire(field, length_wire, name);
  for (WireReader packed(file, field.bytes); !packed.done();) values.push_back(packed.varint());
}

}  // namespace plait::traces::detail
