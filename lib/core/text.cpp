#include "tmsplan/text.hpp"

namespace tmsplan {

std::string escape_markup(const std::string& text, std::string_view also) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      if (also.find(c) != std::string_view::npos)
        out += "&#" + std::to_string(static_cast<unsigned char>(c)) + ";";
      else
        out += c;
    }
  }
  return out;
}

}  // namespace tmsplan
