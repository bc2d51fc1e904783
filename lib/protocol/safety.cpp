// Safety check of single rTMS trains against the table of maximum safe train durations
// (Rossi 2009 Table 4, from Wassermann 1998), read from data/safety_limits.json.
#include "tmsplan/error.hpp"
#include "tmsplan/protocol.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

namespace tmsplan::protocol {

namespace {

using nlohmann::json;

constexpr double kEps = 1e-9;

SafetyCell read_cell(const json& v, const std::string& source, const std::string& what) {
  SafetyCell cell;
  if (v.is_number()) {
    cell.seconds = v.get<double>();
  } else if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s.size() < 2 || s[0] != '>') throw Error(fmt::format("{}: '{}' is neither a number nor '>x'", what, s), source);
    const char* end = s.data() + s.size();
    const auto [ptr, ec] = std::from_chars(s.data() + 1, end, cell.seconds);
    if (ec != std::errc() || ptr != end) {
      throw Error(fmt::format("{}: '{}' is neither a number nor '>x'", what, s), source);
    }
    cell.lower_bound = true;
  } else {
    throw Error(what + ": is neither a number nor a string '>x'", source);
  }
  if (!std::isfinite(cell.seconds) || cell.seconds <= 0) throw Error(what + ": must be a positive duration", source);
  return cell;
}

std::string cell_text(const SafetyCell& c) { return fmt::format("{}{:g} s", c.lower_bound ? ">" : "", c.seconds); }

}  // namespace

std::string to_string(Verdict v) {
  switch (v) {
  case Verdict::ok:
    return "ok";
  case Verdict::exceeds:
    return "exceeds";
  case Verdict::unknown:
    return "unknown";
  }
  return "unknown";
}

SafetyTable parse_safety_table(const std::string& json_text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {
    throw Error(fmt::format("not valid JSON: {}", e.what()), source);
  }
  if (!doc.is_object()) throw Error("the top level is not a JSON object", source);
  const auto need = [&](const char* key) -> const json& {
    if (!doc.contains(key)) throw Error(fmt::format("field '{}' is missing", key), source);
    return doc.at(key);
  };
  const json& version = need("schema_version");
  if (!version.is_number_integer() || version.get<long long>() != schema_version) {
    throw Error(fmt::format("schema_version {} is not supported (reads {})", version.dump(), schema_version), source);
  }
  SafetyTable t;
  if (!need("source").is_string()) throw Error("field 'source' is not a string", source);
  t.source = doc["source"].get<std::string>();
  if (!need("checked_against_primary").is_boolean()) {
    throw Error("field 'checked_against_primary' is not a boolean", source);
  }
  t.checked_against_primary = doc["checked_against_primary"].get<bool>();
  const auto opt_text = [&](const json& obj, const char* key, const std::string& where) -> std::string {
    if (!obj.contains(key)) return {};
    if (!obj[key].is_string()) throw Error(fmt::format("field '{}{}' is not a string", where, key), source);
    return obj[key].get<std::string>();
  };
  t.about = opt_text(doc, "about", "");
  if (doc.contains("duration_version")) {
    t.duration_version = opt_text(doc, "duration_version", "");
    if (t.duration_version != "original" && t.duration_version != "reduced_25pct") {
      throw Error(
          fmt::format("field 'duration_version' is '{}'; expected original or reduced_25pct", t.duration_version),
          source);
    }
  }
  t.duration_version_note = opt_text(doc, "duration_version_note", "");
  if (doc.contains("inter_train_interval")) {
    const json& r = doc["inter_train_interval"];
    if (!r.is_object()) throw Error("field 'inter_train_interval' is not an object", source);
    IntervalRule rule;
    rule.source = opt_text(r, "source", "inter_train_interval.");
    rule.rule = opt_text(r, "rule", "inter_train_interval.");
    if (rule.source.empty()) throw Error("field 'inter_train_interval.source' is missing", source);
    if (!r.contains("checked") || !r["checked"].is_boolean()) {
      throw Error("field 'inter_train_interval.checked' is missing or not a boolean", source);
    }
    rule.checked = r["checked"].get<bool>();
    const auto seconds = [&](const char* key) {
      if (!r.contains(key) || !r[key].is_number() || !std::isfinite(r[key].get<double>()) ||
          r[key].get<double>() <= 0) {
        throw Error(fmt::format("field 'inter_train_interval.{}' is missing or not a positive number", key), source);
      }
      return r[key].get<double>();
    };
    rule.min_safe_s = seconds("min_safe_s");
    rule.unsafe_at_or_below_s = seconds("unsafe_at_or_below_s");
    rule.unsafe_above_pct_mt = seconds("unsafe_above_pct_mt");
    if (rule.unsafe_at_or_below_s >= rule.min_safe_s) {
      throw Error("field 'inter_train_interval.unsafe_at_or_below_s' is not below min_safe_s", source);
    }
    t.interval = rule;
  }
  const json& cols = need("intensities_pct_mt");
  if (!cols.is_array() || cols.empty()) throw Error("field 'intensities_pct_mt' is not a non-empty array", source);
  for (const json& c : cols) {
    if (!c.is_number() || !std::isfinite(c.get<double>()) || c.get<double>() <= 0) {
      throw Error("intensities_pct_mt holds a value that is not a positive number", source);
    }
    if (!t.intensities_pct_mt.empty() && c.get<double>() <= t.intensities_pct_mt.back()) {
      throw Error("intensities_pct_mt is not in ascending order", source);
    }
    t.intensities_pct_mt.push_back(c.get<double>());
  }
  const json& rows = need("rows");
  if (!rows.is_array() || rows.empty()) throw Error("field 'rows' is not a non-empty array", source);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const json& r = rows[i];
    const std::string what = fmt::format("rows[{}]", i);
    if (!r.is_object() || !r.contains("frequency_hz") || !r["frequency_hz"].is_number() ||
        !r.contains("max_train_duration_s") || !r["max_train_duration_s"].is_array()) {
      throw Error(what + ": needs 'frequency_hz' (number) and 'max_train_duration_s' (array)", source);
    }
    SafetyRow row;
    row.frequency_hz = r["frequency_hz"].get<double>();
    if (!std::isfinite(row.frequency_hz) || row.frequency_hz <= 0) {
      throw Error(what + ": frequency_hz must be positive", source);
    }
    if (!t.rows.empty() && row.frequency_hz <= t.rows.back().frequency_hz) {
      throw Error(what + ": rows are not in ascending frequency", source);
    }
    const json& cells = r["max_train_duration_s"];
    if (cells.size() != t.intensities_pct_mt.size()) {
      throw Error(fmt::format("{}: {} durations for {} intensities", what, cells.size(), t.intensities_pct_mt.size()),
                  source);
    }
    for (std::size_t k = 0; k < cells.size(); ++k) {
      row.cells.push_back(read_cell(cells[k], source, fmt::format("{} duration {}", what, k)));
    }
    if (r.contains("verify")) {
      if (!r["verify"].is_string()) throw Error(what + ": 'verify' is not a string", source);
      row.verify = r["verify"].get<std::string>();
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

SafetyTable load_safety_table(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open file", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_safety_table(ss.str(), path);
}

SafetyResult check_train(const SafetyTable& table, double frequency_hz, double intensity_pct_mt,
                         double train_duration_s) {
  if (!(std::isfinite(frequency_hz) && frequency_hz > 0 && std::isfinite(intensity_pct_mt) && intensity_pct_mt > 0 &&
        std::isfinite(train_duration_s) && train_duration_s > 0)) {
    throw Error(fmt::format("safety check of an invalid train ({:g} Hz, {:g}% MT, {:g} s)", frequency_hz,
                            intensity_pct_mt, train_duration_s));
  }
  if (table.rows.empty() || table.intensities_pct_mt.empty()) throw Error("safety check with an empty table");
  SafetyResult res;
  const std::string train =
      fmt::format("{:g} Hz, {:g}% MT, {:g} s train", frequency_hz, intensity_pct_mt, train_duration_s);
  const std::string caveat = table.checked_against_primary ? "" : " (table values unconfirmed)";
  if (frequency_hz > table.rows.back().frequency_hz + kEps) {
    res.message = fmt::format("{}: unknown, above the table's highest frequency ({:g} Hz){}", train,
                              table.rows.back().frequency_hz, caveat);
    return res;
  }
  if (intensity_pct_mt > table.intensities_pct_mt.back() + kEps) {
    res.message = fmt::format("{}: unknown, above the table's highest intensity ({:g}% MT){}", train,
                              table.intensities_pct_mt.back(), caveat);
    return res;
  }
  std::size_t ri = 0;
  while (table.rows[ri].frequency_hz < frequency_hz - kEps) ++ri;
  std::size_t ci = 0;
  while (table.intensities_pct_mt[ci] < intensity_pct_mt - kEps) ++ci;
  const SafetyRow& row = table.rows[ri];
  const SafetyCell& cell = row.cells[ci];
  res.table_frequency_hz = row.frequency_hz;
  res.table_intensity_pct_mt = table.intensities_pct_mt[ci];
  res.limit_s = cell.seconds;
  res.limit_is_lower_bound = cell.lower_bound;
  const bool moved = std::abs(row.frequency_hz - frequency_hz) > kEps ||
                     std::abs(res.table_intensity_pct_mt - intensity_pct_mt) > kEps;
  const std::string at = fmt::format("table at {:g} Hz, {:g}% MT{}: {}", row.frequency_hz, res.table_intensity_pct_mt,
                                     moved ? ", the conservative neighbour" : "", cell_text(cell));
  if (cell.lower_bound) {
    res.verdict = Verdict::ok;
    res.beyond_tested = train_duration_s > cell.seconds + kEps;
    res.message = fmt::format("{}: ok ({}; no limit{}){}", train, at,
                              res.beyond_tested ? ", but longer than the longest train tested" : "", caveat);
  } else if (train_duration_s <= cell.seconds + kEps) {
    res.verdict = Verdict::ok;
    res.message = fmt::format("{}: ok ({}){}", train, at, caveat);
  } else {
    res.verdict = Verdict::exceeds;
    res.message = fmt::format("{}: EXCEEDS the {:g} s limit ({}){}", train, cell.seconds, at, caveat);
  }
  res.train_verdict = res.verdict;
  return res;
}

void check_interval(const SafetyTable& table, double interval_s, double intensity_pct_mt, SafetyResult& result) {
  if (!(std::isfinite(interval_s) && interval_s > 0 && std::isfinite(intensity_pct_mt) && intensity_pct_mt > 0)) {
    throw Error(fmt::format("interval check of an invalid train ({:g} s between trains, {:g}% MT)", interval_s,
                            intensity_pct_mt));
  }
  result.interval_shown_unsafe = false;
  if (!table.interval) {
    result.interval_verdict = Verdict::unknown;
    result.interval_message =
        fmt::format("{:g} s between trains: unknown, the safety table has no interval rule", interval_s);
    return;
  }
  const IntervalRule& r = *table.interval;
  const std::string head = fmt::format("{:g} s between trains at {:g}% MT", interval_s, intensity_pct_mt);
  if (interval_s <= r.unsafe_at_or_below_s + kEps && intensity_pct_mt > r.unsafe_above_pct_mt + kEps) {
    result.interval_verdict = Verdict::exceeds;
    result.interval_shown_unsafe = true;
    result.interval_message = fmt::format("{}: BREAKS the interval rule ({:g} s or less was unsafe above {:g}% MT, {})",
                                          head, r.unsafe_at_or_below_s, r.unsafe_above_pct_mt, r.source);
  } else if (interval_s < r.min_safe_s - kEps) {
    result.interval_verdict = Verdict::exceeds;
    result.interval_message = fmt::format("{}: BREAKS the interval rule (shorter than the {:g} s shown safe, {})", head,
                                          r.min_safe_s, r.source);
  } else {
    result.interval_verdict = Verdict::ok;
    result.interval_message = fmt::format("{}: ok (at least the {:g} s shown safe, {})", head, r.min_safe_s, r.source);
  }
}

SafetyResult check_protocol(const SafetyTable& table, const Protocol& p) {
  std::optional<double> duration = p.train_duration_s;
  if (!duration && p.pulses_per_train) duration = *p.pulses_per_train / p.frequency_hz;
  SafetyResult res;
  if (!duration || !p.intensity_pct_rmt) {
    res.message =
        fmt::format("protocol '{}': unknown, its {} is not known", p.id, duration ? "intensity" : "train duration");
  } else {
    res = check_train(table, p.frequency_hz, p.intensity_pct_rmt_max.value_or(*p.intensity_pct_rmt), *duration);
    res.message = fmt::format("protocol '{}': {}", p.id, res.message);
  }
  res.train_verdict = res.verdict;
  if (!p.inter_train_interval_s || !p.intensity_pct_rmt) {
    res.interval_verdict = Verdict::unknown;
    res.interval_message = fmt::format("protocol '{}': interval unknown, its {} is not known", p.id,
                                       p.inter_train_interval_s ? "intensity" : "inter-train interval");
  } else {
    check_interval(table, *p.inter_train_interval_s, p.intensity_pct_rmt_max.value_or(*p.intensity_pct_rmt), res);
    res.interval_message = fmt::format("protocol '{}': {}", p.id, res.interval_message);
  }
  const auto rank = [](Verdict v) { return v == Verdict::exceeds ? 2 : v == Verdict::unknown ? 1 : 0; };
  if (rank(res.interval_verdict) > rank(res.train_verdict)) res.verdict = res.interval_verdict;
  return res;
}

}  // namespace tmsplan::protocol
