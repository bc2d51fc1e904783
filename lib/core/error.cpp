#include "tmsplan/error.hpp"

#include <exception>

namespace tmsplan {

namespace {
void append(std::string& out, const std::exception& e) {
  out += e.what();
  if (const auto* err = dynamic_cast<const Error*>(&e); err && !err->file().empty()) {
    out += " (" + err->file() + ")";
  }
  try {
    std::rethrow_if_nested(e);
  } catch (const std::exception& inner) {
    out += ": ";
    append(out, inner);
  } catch (...) {
    out += ": unknown error";
  }
}
}  // namespace

std::string describe(const std::exception& e) {
  std::string out;
  append(out, e);
  return out;
}

void rethrow_with_context(const std::string& context, const std::string& file) {
  std::throw_with_nested(Error(context, file));
}

}  // namespace tmsplan
