#pragma once
/// Errors thrown by the library. Library code never prints or exits: it throws, adding context
/// on the way up; only the tool runner (cli.hpp) prints one line and maps to an exit code.
#include <stdexcept>
#include <string>

namespace tmsplan {

/// A failure of the job (bad input, unwritable output, algorithm gave up): exit code 1.
/// `file` names the input or output concerned, when there is one.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, std::string file = {}) : std::runtime_error(what), file_(std::move(file)) {}
  const std::string& file() const noexcept { return file_; }

 private:
  std::string file_;
};

/// The command line itself is wrong (unknown option, conflicting values): exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Formats an exception (and any nested ones) as one line: "what (file): inner what".
std::string describe(const std::exception& e);

/// Rethrows the current exception wrapped with context: "context: inner".
[[noreturn]] void rethrow_with_context(const std::string& context, const std::string& file = {});

}  // namespace tmsplan
