// Localite TMS Navigator: InstrumentMarkerList / TriggerMarkerList / EntryTargetList XML.
// A small non-validating XML reader (elements and attributes only; no DTD, no external entities)
// is enough for these files and keeps the parser safe on garbage: no recursion, bounded depth.
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/navigators.hpp"
#include "tmsplan/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

namespace tmsplan::nav {

namespace {

using detail::parse_integer;
using detail::parse_number;

constexpr std::size_t kMaxDepth = 64;

struct XmlElement {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;
  std::vector<std::unique_ptr<XmlElement>> children;
  std::size_t line = 0;

  const std::string* attribute(std::string_view key) const {
    for (const auto& [k, v] : attributes) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  const XmlElement* child(std::string_view child_name) const {
    for (const auto& c : children) {
      if (c->name == child_name) return c.get();
    }
    return nullptr;
  }
};

class XmlParser {
 public:
  XmlParser(std::string_view text, const std::string& source) : s_(text), source_(source) {}

  std::unique_ptr<XmlElement> parse() {
    if (s_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
    std::unique_ptr<XmlElement> root;
    std::vector<XmlElement*> open;
    while (true) {
      const std::size_t lt = s_.find('<', pos_);
      if (lt == std::string_view::npos) break;
      pos_ = lt;
      if (starts("<?")) {
        skip_past("?>", "processing instruction");
      } else if (starts("<!--")) {
        skip_past("-->", "comment");
      } else if (starts("<![CDATA[")) {
        skip_past("]]>", "CDATA section");
      } else if (starts("<!")) {
        fail("DOCTYPE and other declarations are not supported");
      } else if (starts("</")) {
        pos_ += 2;
        const std::string name = read_name();
        skip_blanks();
        expect('>');
        if (open.empty() || open.back()->name != name) {
          fail(open.empty() ? fmt::format("unexpected closing tag </{}>", name)
                            : fmt::format("closing tag </{}> does not match <{}>", name, open.back()->name));
        }
        open.pop_back();
      } else {
        auto element = read_start_tag();
        const bool self_closing = element.second;
        XmlElement* raw = element.first.get();
        if (open.empty()) {
          if (root) fail("more than one root element");
          root = std::move(element.first);
        } else {
          open.back()->children.push_back(std::move(element.first));
        }
        if (!self_closing) {
          if (open.size() >= kMaxDepth) fail("elements nested too deeply");
          open.push_back(raw);
        }
      }
    }
    if (!open.empty()) {
      throw Error(fmt::format("truncated XML: <{}> (line {}) is never closed", open.back()->name, open.back()->line),
                  source_);
    }
    if (!root) throw Error("not an XML document (no root element)", source_);
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    const std::size_t upto = std::min(pos_, s_.size());
    const std::size_t line = 1 + static_cast<std::size_t>(std::count(s_.begin(), s_.begin() + upto, '\n'));
    throw Error(fmt::format("malformed XML at line {}: {}", line, what), source_);
  }
  bool starts(std::string_view p) const { return s_.substr(pos_, p.size()) == p; }
  void skip_past(std::string_view end, const char* what) {
    const std::size_t e = s_.find(end, pos_);
    if (e == std::string_view::npos) fail(fmt::format("unterminated {}", what));
    pos_ = e + end.size();
  }
  void skip_blanks() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  void expect(char c) {
    if (pos_ >= s_.size()) fail(fmt::format("unexpected end of document, expected '{}'", c));
    if (s_[pos_] != c) fail(fmt::format("expected '{}'", c));
    ++pos_;
  }
  static bool name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':'; }
  static bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }
  std::string read_name() {
    if (pos_ >= s_.size()) fail("unexpected end of document, expected a name");
    if (!name_start(s_[pos_])) fail("expected a name");
    const std::size_t b = pos_;
    while (pos_ < s_.size() && name_char(s_[pos_])) ++pos_;
    return std::string(s_.substr(b, pos_ - b));
  }
  std::size_t line_here() const {
    return 1 + static_cast<std::size_t>(std::count(s_.begin(), s_.begin() + pos_, '\n'));
  }

  std::pair<std::unique_ptr<XmlElement>, bool> read_start_tag() {
    auto element = std::make_unique<XmlElement>();
    element->line = line_here();
    ++pos_;  // '<'
    element->name = read_name();
    while (true) {
      skip_blanks();
      if (pos_ >= s_.size()) fail(fmt::format("unexpected end of document inside <{}>", element->name));
      if (s_[pos_] == '>') {
        ++pos_;
        return {std::move(element), false};
      }
      if (starts("/>")) {
        pos_ += 2;
        return {std::move(element), true};
      }
      std::string key = read_name();
      skip_blanks();
      expect('=');
      skip_blanks();
      if (pos_ >= s_.size()) fail("unexpected end of document in an attribute");
      const char quote = s_[pos_];
      if (quote != '"' && quote != '\'') fail(fmt::format("attribute {} is not quoted", key));
      ++pos_;
      const std::size_t end = s_.find(quote, pos_);
      if (end == std::string_view::npos) fail(fmt::format("unterminated value of attribute {}", key));
      std::string value = decode(s_.substr(pos_, end - pos_));
      pos_ = end + 1;
      if (element->attribute(key)) fail(fmt::format("attribute {} given twice", key));
      element->attributes.emplace_back(std::move(key), std::move(value));
    }
  }

  std::string decode(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
      const char c = raw[i];
      if (c == '<') fail("'<' inside an attribute value");
      if (c != '&') {
        out += c;
        continue;
      }
      const std::size_t semi = raw.find(';', i);
      if (semi == std::string_view::npos || semi - i > 10) fail("unterminated character reference");
      const std::string_view ent = raw.substr(i + 1, semi - i - 1);
      if (ent == "lt")
        out += '<';
      else if (ent == "gt")
        out += '>';
      else if (ent == "amp")
        out += '&';
      else if (ent == "quot")
        out += '"';
      else if (ent == "apos")
        out += '\'';
      else if (ent.size() > 1 && ent[0] == '#')
        append_code_point(ent, out);
      else
        fail(fmt::format("unknown entity &{};", ent));
      i = semi;
    }
    return out;
  }

  void append_code_point(std::string_view ent, std::string& out) {
    unsigned long cp = 0;
    const bool hex = ent[1] == 'x' || ent[1] == 'X';
    const std::string_view digits = ent.substr(hex ? 2 : 1);
    if (digits.empty()) fail("empty character reference");
    for (char d : digits) {
      int v = -1;
      if (d >= '0' && d <= '9')
        v = d - '0';
      else if (hex && d >= 'a' && d <= 'f')
        v = d - 'a' + 10;
      else if (hex && d >= 'A' && d <= 'F')
        v = d - 'A' + 10;
      if (v < 0) fail("bad character reference");
      cp = cp * (hex ? 16 : 10) + static_cast<unsigned long>(v);
      if (cp > 0x10FFFF) fail("character reference out of range");
    }
    if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) fail("invalid character reference");
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string_view s_;
  const std::string& source_;
  std::size_t pos_ = 0;
};

// Attribute values keep their line breaks and tabs as character references.
std::string xml_escape(const std::string& s) { return escape_markup(s, "\n\r\t"); }

const std::string& required_attribute(const XmlElement& e, std::string_view key, const std::string& source) {
  const std::string* v = e.attribute(key);
  if (!v) throw Error(fmt::format("<{}> (line {}) has no attribute {}", e.name, e.line, key), source);
  return *v;
}

const XmlElement& required_child(const XmlElement& e, std::string_view name, const std::string& source) {
  const XmlElement* c = e.child(name);
  if (!c) throw Error(fmt::format("<{}> (line {}) has no <{}> element", e.name, e.line, name), source);
  return *c;
}

LocaliteSpace read_space(const XmlElement& root, const std::string& source) {
  std::string space = required_attribute(root, "coordinateSpace", source);
  std::transform(space.begin(), space.end(), space.begin(), [](unsigned char c) { return std::toupper(c); });
  if (space == "RAS") return LocaliteSpace::ras;
  if (space == "LPS") return LocaliteSpace::lps;
  throw Error(fmt::format("coordinateSpace '{}' is not supported (RAS or LPS)", space), source);
}

Eigen::Matrix4d read_matrix4d(const XmlElement& m, const std::string& source, const std::string& what) {
  Eigen::Matrix4d out;
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 4; ++c) {
      const std::string key = fmt::format("data{}{}", r, c);
      out(r, c) = parse_number(required_attribute(m, key, source), source, what + " " + key);
    }
  }
  return out;
}

Eigen::Vector3d read_colvec3d(const XmlElement& marker, const std::string& source, const std::string& what) {
  const XmlElement& v = required_child(marker, "ColVec3D", source);
  Eigen::Vector3d out;
  for (int i = 0; i < 3; ++i) {
    const std::string key = fmt::format("data{}", i);
    out(i) = parse_number(required_attribute(v, key, source), source, what + " " + key);
  }
  if (out.norm() > 10000.0) throw Error(what + ": point is more than 10 m from the origin", source);
  return out;
}

std::string_view space_name(LocaliteSpace s) { return s == LocaliteSpace::lps ? "LPS" : "RAS"; }

std::string header(const char* list, LocaliteSpace space, bool poses) {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<{} coordinateSpace=\"{}\">\n", list, space_name(space));
  out += fmt::format("    <!--Written by tmsplan. Positions in mm in the {} frame of the T1{}.-->\n", space_name(space),
                     poses ? "; coil axes in Localite's convention" : "");
  return out;
}

}  // namespace

std::string localite_timestamp(std::string_view content) {
  const std::string sha = sha256_bytes(std::string(content));
  const unsigned long long v = std::stoull(sha.substr(0, 12), nullptr, 16);
  const unsigned long long ms = v % 86400000ULL;  // a time of day, to the millisecond
  return fmt::format("20000101{:02d}{:02d}{:02d}{:03d}", ms / 3600000ULL, ms / 60000ULL % 60, ms / 1000ULL % 60,
                     ms % 1000ULL);
}

namespace {

bool valid_stamp(std::string_view s) {
  if (s.size() != 17 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  const auto num = [&](std::size_t pos, std::size_t n) {
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) v = v * 10 + (s[i] - '0');
    return v;
  };
  const int year = num(0, 4), month = num(4, 2), day = num(6, 2), hour = num(8, 2), minute = num(10, 2),
            second = num(12, 2);
  static const int days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (year < 1900 || month < 1 || month > 12 || day < 1 || day > days[month - 1]) return false;
  if (month == 2 && day == 29 && !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))) return false;
  return hour <= 23 && minute <= 59 && second <= 59;
}

std::string localite_name(const std::string& kind, const std::string& stamp) {
  if (!valid_stamp(stamp)) throw Error(fmt::format("'{}' is not a Localite timestamp (YYYYMMDDhhmmssSSS)", stamp));
  return kind + stamp + ".xml";
}

}  // namespace

std::string localite_instrument_marker_name(const std::string& stamp) {
  return localite_name("InstrumentMarker", stamp);
}
std::string localite_entry_target_name(const std::string& stamp) { return localite_name("EntryTarget", stamp); }

bool is_localite_name(std::string_view file_name, std::string_view kind) {
  if (file_name.size() != kind.size() + 17 + 4 || file_name.substr(0, kind.size()) != kind ||
      file_name.substr(file_name.size() - 4) != ".xml") {
    return false;
  }
  return valid_stamp(file_name.substr(kind.size(), 17));
}

std::string write_localite_instrument_markers(const std::vector<Marker>& markers, const LocaliteWriteOptions& options) {
  std::string out = header("InstrumentMarkerList", options.space, true);
  for (std::size_t i = 0; i < markers.size(); ++i) {
    const Marker& mk = markers[i];
    const Pose pose = detail::pose_for_writing(mk.pose, fmt::format("marker '{}'", mk.name));
    Eigen::Matrix4d m = ours_to_localite(pose.m);
    if (options.space == LocaliteSpace::lps) m = pose_to_lps(Pose(m)).m;
    out += fmt::format("    <InstrumentMarker alwaysVisible=\"false\" index=\"{}\" selected=\"false\">\n", i);
    out +=
        fmt::format("        <Marker additionalInformation=\"\" color=\"#ff0000\" description=\"{}\" set=\"true\">\n",
                    xml_escape(mk.name));
    out += "            <Matrix4D";
    for (int r = 0; r < 4; ++r) {
      out += r == 0 ? " " : "\n                ";
      for (int c = 0; c < 4; ++c) {
        const double v = r == 3 ? (c == 3 ? 1.0 : 0.0) : m(r, c);
        out += fmt::format("{}data{}{}=\"{}\"", c == 0 ? "" : " ", r, c, detail::fixed(v, 10));
      }
    }
    out += "/>\n        </Marker>\n    </InstrumentMarker>\n";
  }
  out += "</InstrumentMarkerList>\n";
  return out;
}

LocaliteMarkers read_localite_markers(std::string_view text, const std::string& source) {
  const auto root = XmlParser(text, source).parse();
  const bool instrument = root->name == "InstrumentMarkerList";
  if (!instrument && root->name != "TriggerMarkerList") {
    throw Error(fmt::format("root element is <{}>, expected <InstrumentMarkerList> or <TriggerMarkerList>", root->name),
                source);
  }
  LocaliteMarkers result;
  result.space = read_space(*root, source);
  const std::string element = instrument ? "InstrumentMarker" : "TriggerMarker";
  std::size_t index = 0;
  for (const auto& child : root->children) {
    if (child->name != element) continue;
    const std::string what = fmt::format("{} #{} (line {})", element, index++, child->line);
    const XmlElement& holder = instrument ? required_child(*child, "Marker", source) : *child;
    const std::string* description = holder.attribute("description");
    const Eigen::Matrix4d raw = read_matrix4d(required_child(holder, "Matrix4D", source), source, what);
    if (!instrument && raw == Eigen::Matrix4d::Identity()) {
      ++result.untracked_skipped;
      continue;
    }
    Eigen::Matrix4d m = raw;
    if (result.space == LocaliteSpace::lps) m = pose_from_lps(LpsMatrix(m)).m;
    Marker mk;
    mk.name = description ? *description : std::string();
    mk.pose = detail::checked_pose(localite_to_ours(m), source, what);
    result.markers.push_back(std::move(mk));
  }
  return result;
}

std::string write_localite_entry_targets(const std::vector<EntryTarget>& targets, const LocaliteWriteOptions& options) {
  std::string out = header("EntryTargetList", options.space, false);
  const bool lps = options.space == LocaliteSpace::lps;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const EntryTarget& t = targets[i];
    if (!t.entry.allFinite() || !t.target.allFinite()) {
      throw Error(fmt::format("cannot write entry/target '{}': non-finite coordinate", t.name));
    }
    const char* selected = i == 0 ? "true" : "false";
    const auto point = [&](const Eigen::Vector3d& p) {
      const Eigen::Vector3d q = lps ? to_lps(RasPoint(p)).v : p;
      return fmt::format("            <ColVec3D data0=\"{}\" data1=\"{}\" data2=\"{}\"/>\n", detail::fixed(q(0), 10),
                         detail::fixed(q(1), 10), detail::fixed(q(2), 10));
    };
    out += fmt::format("    <Entry alwaysVisible=\"false\" index=\"{}\" selected=\"{}\">\n", i, selected);
    out += "        <Marker color=\"#00ff00\" description=\"\" drawAura=\"false\" radius=\"4.0\" set=\"true\">\n";
    out += point(t.entry) + "        </Marker>\n    </Entry>\n";
    out += fmt::format("    <Target alwaysVisible=\"false\" index=\"{}\" selected=\"{}\">\n", i, selected);
    out += fmt::format(
        "        <Marker color=\"#00ffff\" description=\"{}\" drawAura=\"true\" radius=\"4.0\" set=\"true\">\n",
        xml_escape(t.name));
    out += point(t.target) + "        </Marker>\n    </Target>\n";
  }
  out += "</EntryTargetList>\n";
  return out;
}

std::vector<EntryTarget> read_localite_entry_targets(std::string_view text, const std::string& source) {
  const auto root = XmlParser(text, source).parse();
  if (root->name != "EntryTargetList") {
    throw Error(fmt::format("root element is <{}>, expected <EntryTargetList>", root->name), source);
  }
  const bool lps = read_space(*root, source) == LocaliteSpace::lps;
  struct Half {
    std::optional<Eigen::Vector3d> point;
    std::string description;
  };
  std::map<long long, std::pair<Half, Half>> by_index;  // index -> (entry, target)
  for (const auto& child : root->children) {
    const bool is_entry = child->name == "Entry";
    if (!is_entry && child->name != "Target") continue;
    const std::string what = fmt::format("<{}> (line {})", child->name, child->line);
    const long long index =
        parse_integer(required_attribute(*child, "index", source), source, what + " index", 0, 1000000);
    const XmlElement& marker = required_child(*child, "Marker", source);
    auto& slot = by_index[index];
    Half& half = is_entry ? slot.first : slot.second;
    if (half.point) throw Error(fmt::format("{}: a second {} with index {}", what, child->name, index), source);
    {
      const Eigen::Vector3d p = read_colvec3d(marker, source, what);
      half.point = lps ? to_ras(LpsPoint(p)).v : p;
    }
    if (const std::string* d = marker.attribute("description")) half.description = *d;
  }
  std::vector<EntryTarget> out;
  for (const auto& [index, pair] : by_index) {
    if (!pair.first.point || !pair.second.point) {
      throw Error(fmt::format("index {} has {} but no {}", index, pair.first.point ? "an Entry" : "a Target",
                              pair.first.point ? "Target" : "Entry"),
                  source);
    }
    EntryTarget t;
    t.name = !pair.second.description.empty() ? pair.second.description : pair.first.description;
    t.entry = *pair.first.point;
    t.target = *pair.second.point;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace tmsplan::nav
