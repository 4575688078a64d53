// One error type for bad input everywhere in plait. It carries where the
// problem is (file, rank, op index, JSON pointer, ...) and why; the CLI
// catches it once and prints `plait: <where>: <why>`.
#pragma once

#include <stdexcept>
#include <string>

namespace plait {

class Error : public std::runtime_error {
 public:
  Error(std::string where, std::string why)
      : std::runtime_error(where.empty() ? why : where + ": " + why),
        where_(std::move(where)),
        why_(std::move(why)) {}

  const std::string& where() const { return where_; }
  const std::string& why() const { return why_; }

  // The same error, located one level further out ("file.json" + "rank 3, op 7").
  Error within(const std::string& outer) const {
    return Error(where_.empty() ? outer : outer + ": " + where_, why_);
  }

 private:
  std::string where_;
  std::string why_;
};

}  // namespace plait
