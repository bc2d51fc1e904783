// Protocol presets and user protocol files: JSON reading, validation, writing.
#include "tmsplan/protocol.hpp"
#include "tmsplan/data.hpp"
#include "tmsplan/error.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#ifndef TMSPLAN_DATA_DIR
#define TMSPLAN_DATA_DIR "data"
#endif

namespace tmsplan::protocol {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

const std::set<std::string>& known_fields() {
  static const std::set<std::string> fields = {"id",
                                               "name",
                                               "citation",
                                               "citation_status",
                                               "evidence_level",
                                               "target",
                                               "frequency_hz",
                                               "intensity_pct_rmt",
                                               "intensity_pct_rmt_max",
                                               "train_duration_s",
                                               "pulses_per_train",
                                               "inter_train_interval_s",
                                               "trains",
                                               "pulses_per_session",
                                               "pulses_per_session_max",
                                               "sessions",
                                               "schedule",
                                               "use",
                                               "notes",
                                               "verify"};
  return fields;
}

// Reads one protocol object; `where` names it in messages ("preset 'x'", "protocol").
class Reader {
 public:
  Reader(const json& obj, std::string source, std::string where)
      : obj_(obj), source_(std::move(source)), where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error(fmt::format("{}: field '{}' {}", where_, field, what), source_);
  }

  const json* find(const std::string& key) const {
    const auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }

  std::string text(const std::string& key, bool required) const {
    const json* v = find(key);
    if (!v) {
      if (required) fail(key, "is missing");
      return {};
    }
    if (!v->is_string()) fail(key, "is not a string");
    return v->get<std::string>();
  }

  std::optional<double> real(const std::string& key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) fail(key, "is not a number");
    const double d = v->get<double>();
    if (!std::isfinite(d)) fail(key, "is not finite");
    return d;
  }

  std::optional<int> whole(const std::string& key) const {
    const std::optional<double> d = real(key);
    if (!d) return std::nullopt;
    if (std::floor(*d) != *d || std::abs(*d) > 1e9) fail(key, fmt::format("is {:g}, not a whole number", *d));
    return static_cast<int>(*d);
  }

  template <typename T> T required(const std::optional<T>& v, const std::string& key) const {
    if (!v) fail(key, "is missing");
    return *v;
  }

 private:
  const json& obj_;
  std::string source_;
  std::string where_;
};

void check_schema_version(const json& doc, const std::string& source, bool required) {
  if (!doc.is_object()) throw Error("the top level is not a JSON object", source);
  const auto it = doc.find("schema_version");
  if (it == doc.end()) {
    if (required) throw Error("field 'schema_version' is missing", source);
    return;
  }
  if (!it->is_number_integer() || it->get<long long>() != schema_version) {
    throw Error(fmt::format("schema_version {} is not supported (this version of tmsplan reads {})", it->dump(),
                            schema_version),
                source);
  }
}

// A protocol object; "schema_version" is allowed (a preset may be a pasted protocol.json).
Protocol read_protocol(const json& obj, const std::string& source, const std::string& where, bool preset) {
  if (!obj.is_object()) throw Error(where + " is not a JSON object", source);
  check_schema_version(obj, source, !preset);
  for (const auto& [key, value] : obj.items()) {
    if (!known_fields().count(key) && key != "schema_version") {
      throw Error(fmt::format("{}: unknown field '{}'", where, key), source);
    }
  }
  Protocol p;
  p.id = Reader(obj, source, where).text("id", true);
  const std::string at = p.id.empty() ? where : fmt::format("{} '{}'", where, p.id);
  const Reader rr(obj, source, at);
  p.name = rr.text("name", true);
  p.citation = rr.text("citation", preset);
  p.citation_status = rr.text("citation_status", false);
  p.evidence_level = rr.text("evidence_level", preset);
  p.target = rr.text("target", true);
  p.schedule = rr.text("schedule", preset);
  p.use = rr.text("use", preset);
  p.frequency_hz = rr.required(rr.real("frequency_hz"), "frequency_hz");
  p.intensity_pct_rmt = rr.real("intensity_pct_rmt");
  p.intensity_pct_rmt_max = rr.real("intensity_pct_rmt_max");
  p.train_duration_s = rr.real("train_duration_s");
  p.pulses_per_train = rr.whole("pulses_per_train");
  p.inter_train_interval_s = rr.real("inter_train_interval_s");
  p.trains = rr.whole("trains");
  p.pulses_per_session = rr.required(rr.whole("pulses_per_session"), "pulses_per_session");
  p.pulses_per_session_max = rr.whole("pulses_per_session_max");
  p.sessions = rr.required(rr.whole("sessions"), "sessions");
  // "notes" (one sentence per absent, unconfirmed or borrowed value); "verify" is the older name.
  if (rr.find("notes") && rr.find("verify")) rr.fail("verify", "is given with 'notes' (use only 'notes')");
  for (const char* key_name : {"notes", "verify"}) {
    const json* v = rr.find(key_name);
    if (!v) continue;
    if (!v->is_object()) rr.fail(key_name, "is not an object of field: note");
    for (const auto& [key, note] : v->items()) {
      if (!note.is_string()) rr.fail(key_name, fmt::format("note for '{}' is not a string", key));
      p.verify[key] = note.get<std::string>();
    }
  }
  validate(p, source, !preset);
  return p;
}

json parse_json(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(fmt::format("not valid JSON: {}", e.what()), source);
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open file", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("cannot read file", path);
  return ss.str();
}

bool valid_id(const std::string& id) {
  return !id.empty() && std::all_of(id.begin(), id.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.';
  });
}

}  // namespace

bool is_complete(const Protocol& p) {
  return p.intensity_pct_rmt.has_value() && p.trains.has_value() && p.inter_train_interval_s.has_value() &&
         pulses_per_train(p).has_value();
}

std::optional<int> pulses_per_train(const Protocol& p) {
  if (p.pulses_per_train) return p.pulses_per_train;
  if (p.train_duration_s) return static_cast<int>(std::lround(*p.train_duration_s * p.frequency_hz));
  return std::nullopt;
}

std::string default_presets_path() { return data_path("protocols.json"); }
std::string default_safety_limits_path() { return data_path("safety_limits.json"); }

void validate(const Protocol& p, const std::string& source, bool require_complete) {
  const std::string where = fmt::format("protocol '{}'", p.id);
  const auto fail = [&](const std::string& field, const std::string& what) {
    throw Error(fmt::format("{}: field '{}' {}", where, field, what), source);
  };
  const auto positive = [&](const std::string& field, double v) {
    if (!std::isfinite(v)) fail(field, "is not finite");
    if (v <= 0) fail(field, fmt::format("is {:g}; it must be positive", v));
  };
  if (!valid_id(p.id)) fail("id", "must be letters, digits, '_', '-' or '.'");
  if (p.name.empty()) fail("name", "is empty");
  if (p.target.empty()) fail("target", "is empty");
  if (!p.evidence_level.empty() && p.evidence_level != "A" && p.evidence_level != "B" && p.evidence_level != "C" &&
      p.evidence_level != "trial") {
    fail("evidence_level", fmt::format("is '{}'; expected A, B, C or trial", p.evidence_level));
  }
  if (!p.citation_status.empty()) {
    const std::string& cs = p.citation_status;
    const bool known = cs.rfind("verified", 0) == 0 || cs.rfind("corrected", 0) == 0 || cs.rfind("unconfirmed", 0) == 0;
    if (!known)
      fail("citation_status", fmt::format("is '{}'; it must start with verified, corrected or unconfirmed", cs));
  }
  positive("frequency_hz", p.frequency_hz);
  if (p.intensity_pct_rmt) positive("intensity_pct_rmt", *p.intensity_pct_rmt);
  if (p.intensity_pct_rmt_max) {
    positive("intensity_pct_rmt_max", *p.intensity_pct_rmt_max);
    if (!p.intensity_pct_rmt) fail("intensity_pct_rmt_max", "is given without intensity_pct_rmt");
    if (*p.intensity_pct_rmt_max < *p.intensity_pct_rmt) fail("intensity_pct_rmt_max", "is below intensity_pct_rmt");
  }
  if (p.train_duration_s) positive("train_duration_s", *p.train_duration_s);
  if (p.pulses_per_train) positive("pulses_per_train", *p.pulses_per_train);
  if (p.inter_train_interval_s) positive("inter_train_interval_s", *p.inter_train_interval_s);
  if (p.trains) positive("trains", *p.trains);
  positive("pulses_per_session", p.pulses_per_session);
  if (p.pulses_per_session_max) {
    positive("pulses_per_session_max", *p.pulses_per_session_max);
    if (*p.pulses_per_session_max < p.pulses_per_session) fail("pulses_per_session_max", "is below pulses_per_session");
  }
  positive("sessions", p.sessions);
  for (const auto& [field, note] : p.verify) {
    if (!known_fields().count(field) || field == "notes" || field == "verify") {
      fail("notes", fmt::format("names unknown field '{}'", field));
    }
    if (note.empty()) fail("notes", fmt::format("note for '{}' is empty", field));
  }

  if (p.train_duration_s) {
    const double pulses = *p.train_duration_s * p.frequency_hz;
    if (std::abs(pulses - std::round(pulses)) > 1e-6 * std::max(1.0, pulses)) {
      fail("train_duration_s", fmt::format("{:g} s at {:g} Hz is {:g} pulses, not a whole number", *p.train_duration_s,
                                           p.frequency_hz, pulses));
    }
    if (p.pulses_per_train && *p.pulses_per_train != static_cast<int>(std::lround(pulses))) {
      fail("pulses_per_train", fmt::format("is {} but train_duration_s x frequency_hz = {:g} s x {:g} Hz = {:g}",
                                           *p.pulses_per_train, *p.train_duration_s, p.frequency_hz, pulses));
    }
  }
  const std::optional<int> per_train = pulses_per_train(p);
  if (p.trains && per_train) {
    const long long total = static_cast<long long>(*p.trains) * *per_train;
    if (total != p.pulses_per_session) {
      fail("pulses_per_session",
           fmt::format("is {} but trains x pulses per train = {} x {} = {}{}", p.pulses_per_session, *p.trains,
                       *per_train, total,
                       p.train_duration_s ? fmt::format(" ({:g} s at {:g} Hz)", *p.train_duration_s, p.frequency_hz)
                                          : std::string()));
    }
  }
  const auto needed = [&](bool present, const std::string& field, const std::string& alternative) {
    if (present) return;
    if (require_complete) fail(field, "is missing");
    if (!p.verify.count(field) && (alternative.empty() || !p.verify.count(alternative))) {
      fail(field, "is missing without a note (\"notes\") saying why");
    }
  };
  needed(p.intensity_pct_rmt.has_value(), "intensity_pct_rmt", "");
  needed(p.trains.has_value(), "trains", "");
  needed(p.inter_train_interval_s.has_value(), "inter_train_interval_s", "");
  needed(per_train.has_value(), "train_duration_s", "pulses_per_train");
}

std::vector<Protocol> parse_presets(const std::string& json_text, const std::string& source) {
  const json doc = parse_json(json_text, source);
  check_schema_version(doc, source, true);
  for (const auto& [key, value] : doc.items()) {
    if (key != "schema_version" && key != "about" && key != "presets") {
      throw Error(fmt::format("unknown top-level field '{}'", key), source);
    }
  }
  const auto it = doc.find("presets");
  if (it == doc.end() || !it->is_array()) throw Error("field 'presets' is missing or not an array", source);
  std::vector<Protocol> out;
  std::set<std::string> ids;
  for (std::size_t i = 0; i < it->size(); ++i) {
    Protocol p = read_protocol((*it)[i], source, fmt::format("preset #{}", i), true);
    if (!ids.insert(p.id).second) throw Error(fmt::format("preset id '{}' is used twice", p.id), source);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<Protocol> load_presets(const std::string& path) { return parse_presets(read_file(path), path); }

std::vector<std::string> preset_ids(const std::string& path) {
  std::vector<std::string> ids;
  for (const Protocol& p : load_presets(path)) ids.push_back(p.id);
  return ids;
}

const Protocol& find_preset(const std::vector<Protocol>& presets, const std::string& id) {
  for (const Protocol& p : presets) {
    if (p.id == id) return p;
  }
  std::string known;
  for (const Protocol& p : presets) known += (known.empty() ? "" : ", ") + p.id;
  throw Error(fmt::format("no protocol preset '{}' (known: {})", id, known));
}

Protocol parse_protocol(const std::string& json_text, const std::string& source) {
  return read_protocol(parse_json(json_text, source), source, "protocol", false);
}

Protocol load_protocol(const std::string& path) { return parse_protocol(read_file(path), path); }

std::string to_json(const Protocol& p) {
  ordered_json j;
  j["schema_version"] = schema_version;
  j["id"] = p.id;
  j["name"] = p.name;
  if (!p.citation.empty()) j["citation"] = p.citation;
  if (!p.citation_status.empty()) j["citation_status"] = p.citation_status;
  if (!p.evidence_level.empty()) j["evidence_level"] = p.evidence_level;
  j["target"] = p.target;
  j["frequency_hz"] = p.frequency_hz;
  if (p.intensity_pct_rmt) j["intensity_pct_rmt"] = *p.intensity_pct_rmt;
  if (p.intensity_pct_rmt_max) j["intensity_pct_rmt_max"] = *p.intensity_pct_rmt_max;
  if (p.train_duration_s) j["train_duration_s"] = *p.train_duration_s;
  if (p.pulses_per_train) j["pulses_per_train"] = *p.pulses_per_train;
  if (p.inter_train_interval_s) j["inter_train_interval_s"] = *p.inter_train_interval_s;
  if (p.trains) j["trains"] = *p.trains;
  j["pulses_per_session"] = p.pulses_per_session;
  if (p.pulses_per_session_max) j["pulses_per_session_max"] = *p.pulses_per_session_max;
  j["sessions"] = p.sessions;
  if (!p.schedule.empty()) j["schedule"] = p.schedule;
  if (!p.use.empty()) j["use"] = p.use;
  if (!p.verify.empty()) j["notes"] = p.verify;
  try {
    return j.dump(2) + "\n";
  } catch (const json::exception& e) {
    throw Error(fmt::format("cannot write protocol '{}': {}", p.id, e.what()));
  }
}

}  // namespace tmsplan::protocol
