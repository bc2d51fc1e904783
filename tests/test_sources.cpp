// The clinical values of the data files against the checked sources (../shared/REFERENCES.md,
// checked 2026-11-30): the protocol presets' numbers, the citations that were corrected, the
// safety rules, and no leftover "recalled" / "[verify]" flags.
#include "tmsplan/error.hpp"
#include "tmsplan/protocol.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

using namespace tmsplan;
using namespace tmsplan::protocol;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The folder the presets come from (the same lookup the library uses).
std::string data_dir() { return std::filesystem::path(default_presets_path()).parent_path().string(); }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// One row per trial preset, as REFERENCES.md gives it. `unconfirmed` lists the fields the file
// must mark with a note (present but unconfirmed, or absent); std::nullopt = must be unset.
struct Expected {
  const char* id;
  double hz;
  std::optional<double> pct_rmt;
  std::optional<int> trains;
  std::optional<double> train_s;
  std::optional<double> iti_s;
  int pulses;
  int sessions;
  std::vector<std::string> unconfirmed;
  const char* citation_part;  // volume(issue):pages or PMID
};

const std::vector<Expected>& references_table() {
  static const std::vector<Expected> rows = {
      // Passard 2007, Brain 130(10):2661-2670: 10 Hz, 80% RMT, 25 x 8 s, 52 s apart, 2000 pulses, 10 sessions.
      {"passard2007", 10, 80, 25, 8, 52, 2000, 10, {}, "130(10):2661-2670"},
      // Mhalla 2011, Pain 152(7):1478-1485: 10 Hz, 80% RMT, 15 x 10 s, 50 s apart, 1500 pulses, 14 sessions.
      {"mhalla2011", 10, 80, 15, 10, 50, 1500, 14, {}, "152(7):1478-1485"},
      // Hosomi 2013, Pain 154(7):1065-1072: 5 Hz, 500 pulses, 10 daily sessions verified; 90% RMT and
      // 10 trains x 10 s, 50 s apart unconfirmed.
      {"hosomi2013",
       5,
       90,
       10,
       10,
       50,
       500,
       10,
       {"intensity_pct_rmt", "trains", "train_duration_s", "inter_train_interval_s"},
       "154(7):1065-1072"},
      // Attal 2021, Brain, PMID 34196698: 10 Hz, 3000 pulses, 15 sessions verified; intensity and
      // train structure unconfirmed (unset).
      {"attal2021",
       10,
       std::nullopt,
       std::nullopt,
       std::nullopt,
       std::nullopt,
       3000,
       15,
       {"intensity_pct_rmt", "trains", "train_duration_s", "inter_train_interval_s"},
       "PMID 34196698"},
  };
  return rows;
}

}  // namespace

TEST_CASE("sources: trial presets carry the values of the checked sources", "[unit][sources]") {
  const std::vector<Protocol> presets = load_presets();
  for (const Expected& e : references_table()) {
    INFO(e.id);
    const Protocol& p = find_preset(presets, e.id);
    CHECK(p.frequency_hz == e.hz);
    CHECK(p.intensity_pct_rmt == e.pct_rmt);
    CHECK(p.trains == e.trains);
    CHECK(p.train_duration_s == e.train_s);
    CHECK(p.inter_train_interval_s == e.iti_s);
    CHECK(p.pulses_per_session == e.pulses);
    CHECK(p.sessions == e.sessions);
    CHECK_THAT(p.citation, Catch::Contains(e.citation_part));
    CHECK_THAT(p.citation_status, Catch::StartsWith("verified"));
    for (const std::string& f : e.unconfirmed) {
      INFO(f);
      REQUIRE(p.verify.count(f) == 1);
      // One plain sentence: it says the value is unconfirmed or not given, without bracketed flags.
      const std::string note = lower(p.verify.at(f));
      CHECK((note.find("unconfirmed") != std::string::npos || note.find("not in the abstract") != std::string::npos));
      CHECK(note.find('[') == std::string::npos);
    }
    // Values that are verified carry no note.
    for (const char* f : {"frequency_hz", "pulses_per_session", "sessions"}) CHECK(p.verify.count(f) == 0);
  }
  // Passard and Mhalla are verified entirely: no note at all.
  CHECK(find_preset(presets, "passard2007").verify.empty());
  CHECK(find_preset(presets, "mhalla2011").verify.empty());
  // Mhalla's schedule: 5 daily, then 3 weekly, 3 fortnightly, 3 monthly.
  const std::string schedule = find_preset(presets, "mhalla2011").schedule;
  CHECK_THAT(schedule, Catch::Contains("5 daily") && Catch::Contains("3 weekly") && Catch::Contains("3 fortnightly") &&
                           Catch::Contains("3 monthly"));
}

TEST_CASE("sources: the guideline presets follow the corrected reading of Lefaucheur 2020", "[unit][sources]") {
  const std::vector<Protocol> presets = load_presets();
  const Protocol& np = find_preset(presets, "lefaucheur2020_np_m1_hf");
  CHECK(np.evidence_level == "A");
  CHECK(np.target.rfind("M1", 0) == 0);
  // Fibromyalgia, level B: left M1 for quality of life, left DLPFC for pain.
  const Protocol& fm_m1 = find_preset(presets, "lefaucheur2020_fm_m1_hf");
  CHECK(fm_m1.evidence_level == "B");
  CHECK(fm_m1.target == "M1_hand_left");
  CHECK_THAT(lower(fm_m1.name + " " + fm_m1.use), Catch::Contains("quality of life"));
  CHECK_THAT(lower(fm_m1.name), !Catch::Contains("pain"));
  const Protocol& fm_dl = find_preset(presets, "lefaucheur2020_fm_dlpfc_hf");
  CHECK(fm_dl.evidence_level == "B");
  CHECK(fm_dl.target.rfind("DLPFC", 0) == 0);
  CHECK_THAT(lower(fm_dl.name), Catch::Contains("pain"));
  for (const char* id : {"lefaucheur2020_np_m1_hf", "lefaucheur2020_fm_m1_hf", "lefaucheur2020_fm_dlpfc_hf"}) {
    INFO(id);
    const Protocol& p = find_preset(presets, id);
    CHECK_THAT(p.citation, Catch::Contains("Clin Neurophysiol 131(2):474-528"));
    // A guideline gives no intensity that could be confirmed: unset, or borrowed from a trial, with a note.
    CHECK(p.verify.count("intensity_pct_rmt") == 1);
  }
}

TEST_CASE("sources: the data files carry no leftover flags and the corrected citations", "[unit][sources]") {
  const std::string dir = data_dir();
  for (const char* file : {"targets.json", "protocols.json", "safety_limits.json"}) {
    INFO(file);
    const std::string text = lower(slurp(dir + "/" + file));
    CHECK(count_of(text, "recalled") == 0);
    CHECK(count_of(text, "[verify") == 0);
    CHECK(count_of(text, "not checked") == 0);
    CHECK(count_of(text, "not verified") == 0);
    // The four wrong citations are gone.
    CHECK(count_of(text, "exp brain res") == 0);
    CHECK(count_of(text, "pain 138") == 0);
    CHECK(count_of(text, "brain stimul 14") == 0);  // Gomez 2021 is NeuroImage 228:117696
  }
  const std::string targets = slurp(dir + "/targets.json");
  // (-50, 30, 36) is cited to Fitzgerald 2006 (Rusjan 2010 gives no coordinate); the sgACC target
  // to Mir-Moghtadaei 2015, the paper that prints it.
  const auto entry = [&](const std::string& name) {
    const std::size_t at = targets.find("\"name\": \"" + name + "\"");
    REQUIRE(at != std::string::npos);
    return targets.substr(at, targets.find("\"name\"", at + 8) - at);
  };
  CHECK_THAT(entry("DLPFC_Rusjan"), Catch::Contains("[-50, 30, 36]") && Catch::Contains("Fitzgerald et al. 2006"));
  CHECK_THAT(entry("DLPFC_sgACC"), Catch::Contains("[-38, 44, 26]") && Catch::Contains("Mir-Moghtadaei et al. 2015"));
  CHECK_THAT(entry("M1_hand_left"), Catch::Contains("[-37, -21, 58]") && Catch::Contains("Mayka") &&
                                        Catch::Contains("Neurology, PMID 18779511"));
  for (const char* fox : {"DLPFC_BA9", "DLPFC_BA46", "DLPFC_5cm", "DLPFC_F3"})
    CHECK_THAT(entry(fox), Catch::Contains("72(7):595-603") && Catch::Contains("Unconfirmed"));
}

TEST_CASE("sources: the safety table states its status, its version and the verified interval rule",
          "[unit][sources]") {
  const SafetyTable t = load_safety_table();
  CHECK(!t.checked_against_primary);  // no value of Rossi 2009 Table 4 could be checked
  CHECK_THAT(t.source, Catch::Contains("120:2008-2039"));
  CHECK(t.duration_version == "original");
  CHECK_THAT(t.duration_version_note, Catch::Contains("original") && Catch::Contains("25%"));
  for (const SafetyRow& r : t.rows) CHECK(r.verify.empty());  // said once, not per row
  REQUIRE(t.interval);
  CHECK(t.interval->checked);
  CHECK_THAT(t.interval->source, Catch::Contains("105(6):415-421"));
  CHECK(t.interval->min_safe_s == 5);
  CHECK(t.interval->unsafe_at_or_below_s == 1);
  CHECK(t.interval->unsafe_above_pct_mt == 100);

  // The rule: 5 s or more passes; under 5 s breaks it; 1 s or less above 100% MT was shown unsafe.
  SafetyResult r;
  check_interval(t, 5, 110, r);
  CHECK(r.interval_verdict == Verdict::ok);
  check_interval(t, 4, 80, r);
  CHECK(r.interval_verdict == Verdict::exceeds);
  CHECK(!r.interval_shown_unsafe);
  check_interval(t, 1, 110, r);
  CHECK(r.interval_verdict == Verdict::exceeds);
  CHECK(r.interval_shown_unsafe);
  check_interval(t, 1, 100, r);
  CHECK(!r.interval_shown_unsafe);
  CHECK_THROWS_AS(check_interval(t, 0, 100, r), Error);

  // The trial presets pass both rules; a protocol with 2 s between trains breaks the interval rule only.
  const std::vector<Protocol> presets = load_presets();
  for (const char* id : {"passard2007", "mhalla2011", "hosomi2013"}) {
    INFO(id);
    const SafetyResult s = check_protocol(t, find_preset(presets, id));
    CHECK(s.train_verdict == Verdict::ok);
    CHECK(s.interval_verdict == Verdict::ok);
    CHECK(s.verdict == Verdict::ok);
  }
  Protocol quick = find_preset(presets, "passard2007");
  quick.inter_train_interval_s = 2;
  const SafetyResult s = check_protocol(t, quick);
  CHECK(s.train_verdict == Verdict::ok);
  CHECK(s.interval_verdict == Verdict::exceeds);
  CHECK(s.verdict == Verdict::exceeds);
  CHECK_THAT(s.interval_message, Catch::Contains("BREAKS") && Catch::Contains("Chen"));
  // No interval rule in the table: the interval is unknown, not silently ok.
  SafetyTable old = t;
  old.interval.reset();
  CHECK(check_protocol(old, find_preset(presets, "passard2007")).verdict == Verdict::unknown);
}

TEST_CASE("sources: safety tables with a malformed interval rule or version are refused", "[unit][sources]") {
  const std::string base = slurp(default_safety_limits_path());
  const auto broken = [&](const std::string& from, const std::string& to) {
    std::string s = base;
    const std::size_t at = s.find(from);
    REQUIRE(at != std::string::npos);
    s.replace(at, from.size(), to);
    try {
      parse_safety_table(s, "table.json");
      FAIL("accepted: " << to);
    } catch (const Error& e) {
      CHECK(e.file() == "table.json");
    }
  };
  broken("\"duration_version\": \"original\"", "\"duration_version\": \"halved\"");
  broken("\"min_safe_s\": 5", "\"min_safe_s\": 0.5");  // not above the unsafe interval
  broken("\"min_safe_s\": 5", "\"min_safe_s\": \"5\"");
  broken("\"checked\": true", "\"checked\": \"yes\"");
  CHECK_NOTHROW(parse_safety_table(base, "table.json"));
}
