// Reading a Program document. The ops are most of it (3.6 M ops, 289 MB for a
// 512-GPU step) and are never built as JSON values: the scanner
// (program_scanner.cpp) reads them from the text, and the rest, a small
// document, is parsed as JSON; text the scanner does not read (an escape, a
// float, a bad op or bad JSON) is read by a SAX handler that puts ops in Ops
// and the rest in a JSON document, and says exactly what is wrong and where.
// Either way an op's fields go to fixed slots and are read by the same
// read_op as a document's, so both say the same about an op.

#include <nlohmann/json.hpp>

#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/schedule/program.hpp"
#include "plait/schedule/validate.hpp"
#include "op_slots.hpp"
#include "program_scanner.hpp"

namespace plait::schedule {
namespace {

using detail::json;
using detail::OpSlots;
using detail::Type;

// nlohmann's SAX interface: depth_ counts the containers open when an event comes.
class ProgramReader {
 public:
  json document;
  std::vector<detail::OpList> lists;

  bool null() {
    if (!op_scalar([] { return json(nullptr); })) return dom_.null();
    if (slot_) slot_->type = Type::null;
    return true;
  }
  bool boolean(bool value) {
    if (!op_scalar([&] { return json(value); })) return dom_.boolean(value);
    if (slot_) slot_->type = Type::boolean, slot_->flag = value;
    return true;
  }
  bool number_integer(json::number_integer_t value) {
    if (!op_scalar([&] { return json(value); })) return dom_.number_integer(value);
    if (slot_) slot_->type = Type::number_integer, slot_->integer = value;
    return true;
  }
  bool number_unsigned(json::number_unsigned_t value) {
    if (!op_scalar([&] { return json(value); })) return dom_.number_unsigned(value);
    if (slot_) slot_->type = Type::number_unsigned, slot_->natural = value;
    return true;
  }
  bool number_float(json::number_float_t value, const std::string& text) {
    if (!op_scalar([&] { return json(value); })) return dom_.number_float(value, text);
    if (slot_) slot_->type = Type::number_float, slot_->number = value;
    return true;
  }
  bool string(std::string& value) {
    if (!op_scalar([&] { return json(value); })) return dom_.string(value);
    if (slot_) slot_->type = Type::string, slot_->text = value;
    return true;
  }
  bool binary(json::binary_t& value) { return dom_.binary(value); }  // JSON text has none

  bool key(std::string& name) {
    if (in_op_) {
      if (nested_ == 0) slot_ = slots_.find(name);
      return true;
    }
    locator_.key(depth_, name);
    return dom_.key(name);
  }

  bool start_object(std::size_t elements) {
    if (in_op_) return open_nested(Type::object);
    if (at_op()) {  // an op
      ++depth_;
      in_op_ = true, slot_ = nullptr;
      slots_.clear();
      return true;
    }
    locator_.object_starts(depth_);
    ++depth_;
    return dom_.start_object(elements);
  }
  bool end_object() {
    --depth_;
    if (nested_ > 0) return --nested_, true;
    if (in_op_) return in_op_ = false, finish_op(), true;
    return dom_.end_object();
  }
  bool start_array(std::size_t elements) {
    if (in_op_) return open_nested(Type::array);
    if (at_op()) not_an_op(json::array());
    if (locator_.ops_array_starts(depth_)) {
      in_ops_ = true;
      lists.push_back({std::size_t(locator_.rank), std::size_t(locator_.section), {}});
    }
    ++depth_;
    return dom_.start_array(elements);
  }
  bool end_array() {
    --depth_;
    if (nested_ > 0) return --nested_, true;
    if (depth_ == 5) in_ops_ = false;
    return dom_.end_array();
  }
  template <typename Exception>  // its own type (parse_error, out_of_range), thrown as such
  bool parse_error(std::size_t position, const std::string& token, const Exception& error) {
    return dom_.parse_error(position, token, error);  // throws it
  }

 private:
  bool at_op() const { return depth_ == 6 && in_ops_; }  // the next value is an element of an ops array

  // True when a scalar is an op's (its field's slot is slot_; null: a field ops
  // lack, or inside another value), false when the document's. One in place of
  // an op is an error.
  template <typename MakeValue>
  bool op_scalar(MakeValue value) const {
    if (at_op()) not_an_op(value());
    return in_op_;
  }

  bool open_nested(Type type) {
    if (nested_++ == 0 && slot_) slot_->type = type;
    slot_ = nullptr;  // what the value holds is not read: its type says enough
    ++depth_;
    return true;
  }

  std::string where() const {
    return "/rank_programs/" + std::to_string(locator_.rank) + "/sections/" + std::to_string(locator_.section) +
           "/ops/" + std::to_string(lists.back().ops.size());
  }

  [[noreturn]] void not_an_op(const json& value) const {
    detail::op_from_json(value, where());
    throw Error(where(), "expected an object");  // not reached: op_from_json refuses a non-object
  }

  void finish_op() {
    try {
      lists.back().ops.push_back(detail::read_op(slots_, std::string()));
    } catch (const Error&) {  // again, to say where (a path a good op need not build)
      detail::read_op(slots_, where());
      throw;
    }
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_{document};
  detail::OpsLocator locator_;
  int depth_ = 0, nested_ = 0;
  bool in_ops_ = false, in_op_ = false;
  OpSlots slots_;
  OpSlots::Slot* slot_ = nullptr;  // where the current field's value goes (null: not read)
};

Program from_document(const json& document, std::vector<detail::OpList>& lists, const std::string& origin) {
  Program program;
  try {
    program = document.get<Program>();
  } catch (const Error& error) {
    throw error.within(origin);
  }
  detail::fill(program, lists);
  validate(program, origin);
  return program;
}

}  // namespace

Program parse_program(const std::string& text, const std::string& origin) {
  if (std::optional<detail::ScannedOps> scanned = detail::scan_ops(text)) {
    json rest = json::parse(scanned->rest, nullptr, /*allow_exceptions=*/false);
    if (!rest.is_discarded()) return from_document(rest, scanned->lists, origin);
  }
  ProgramReader reader;
  try {
    json::sax_parse(text, &reader);
  } catch (const json::parse_error& error) {
    throw Error(origin, "not valid JSON: byte " + std::to_string(error.byte) + ": " +
                            (text.empty() ? std::string("empty input")
                                          : std::string("unexpected or truncated input")));
  } catch (const json::exception& error) {  // e.g. out_of_range: a number beyond double
    const std::string what = error.what();
    throw Error(origin, "not valid JSON: " + what.substr(what.find("] ") + 2));
  } catch (const Error& error) {  // an op that is not one
    throw error.within(origin);
  }
  return from_document(reader.document, reader.lists, origin);
}

Program load_program(const std::string& path) { return parse_program(read_text_file(path), path); }

}  // namespace plait::schedule
