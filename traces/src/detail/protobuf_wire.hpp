// The protobuf wire format (protobuf.dev/programming-guides/encoding), read
// without libprotobuf: fields of a message, varints, length-delimited runs and
// fixed32/64 values. Every length is checked against the bytes left before it
// is used, so random input gives a WireError, never a read past the buffer or
// an allocation sized by a length read from it. What the fields mean is the
// caller's (chakra.cpp reads Chakra's et_def.proto with it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace plait::traces::detail {

// A problem at a byte of the file; the caller adds which message it is in.
struct WireError {
  std::size_t byte;
  std::string why;
};

enum WireType : int { varint_wire = 0, fixed64_wire = 1, length_wire = 2, fixed32_wire = 5 };

struct WireField {
  std::uint64_t number = 0;
  int wire = varint_wire;
  std::uint64_t value = 0;  // varint and fixed wires (fixed ones little-endian, as written)
  std::string_view bytes;   // length-delimited wire: a view into the file
  std::size_t offset = 0;   // of its key, in the file
};

// Reads the fields in bytes [begin, end) of a file; offsets stay file-absolute.
class WireReader {
 public:
  WireReader(std::string_view file, std::size_t begin, std::size_t end);
  // The fields in `part`, a view into `file`.
  WireReader(std::string_view file, std::string_view part);

  bool done() const { return at_ >= end_; }
  std::size_t left() const { return end_ - at_; }

  std::uint64_t varint();
  // A length, then that many bytes; `what` names them in the error when too few are left.
  std::string_view length_delimited(const std::string& what);
  // A key and its value. Wire types 3 and 4 (groups, not in proto3) and 6, 7 are errors.
  WireField next();

 private:
  std::string_view file_;
  std::size_t at_, end_;
};

// An error naming the field unless it has this wire type.
void expect_wire(const WireField& field, int wire, const char* name);
// Valid UTF-8: no overlong forms, surrogates or code points above U+10FFFF.
bool is_utf8(std::string_view text);
// A proto3 string field (libprotobuf refuses ones that are not UTF-8).
std::string utf8_string(const WireField& field, const char* name);
// A repeated integer field, packed (one length-delimited run of varints) or not
// (one varint each), appended to `values`.
void read_varints(std::string_view file, const WireField& field, const char* name, std::vector<std::uint64_t>& values);
// sint32/sint64 encoding.
inline std::int64_t unzigzag(std::uint64_t z) {
  return static_cast<std::int64_t>(z >> 1) ^ -static_cast<std::int64_t>(z & 1);
}

}  // namespace plait::traces::detail
