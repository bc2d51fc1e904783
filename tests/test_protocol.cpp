// Protocol presets, validation, safety table, dose adjustment.
#include "fixtures.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/protocol.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace tmsplan;
using namespace tmsplan::protocol;

namespace {

const std::string& kUser = testing::kUserProtocol;

std::string with(const std::string& key_value_old, const std::string& key_value_new) {
  std::string s = kUser;
  const auto pos = s.find(key_value_old);
  REQUIRE(pos != std::string::npos);
  s.replace(pos, key_value_old.size(), key_value_new);
  return s;
}

// Parses and expects an Error whose text names the source and `field`.
void check_rejected(const std::string& json, const std::string& field) {
  try {
    parse_protocol(json, "user.json");
    FAIL("expected tmsplan::Error for " << field);
  } catch (const Error& e) {
    const std::string text = describe(e);
    INFO(text);
    CHECK(e.file() == "user.json");
    CHECK(text.find(field) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("presets load with their citations and consistent numbers", "[unit]") {
  const std::vector<Protocol> presets = load_presets();
  for (const char* id : {"lefaucheur2020_np_m1_hf", "lefaucheur2020_fm_m1_hf", "lefaucheur2020_fm_dlpfc_hf",
                         "passard2007", "mhalla2011", "hosomi2013", "attal2021"}) {
    INFO(id);
    const Protocol& p = find_preset(presets, id);
    CHECK(!p.citation.empty());
    CHECK(!p.use.empty());
    CHECK(!p.schedule.empty());
  }
  const Protocol& np = find_preset(presets, "lefaucheur2020_np_m1_hf");
  CHECK(np.evidence_level == "A");
  CHECK(np.frequency_hz == 10);
  CHECK(!np.intensity_pct_rmt.has_value());  // the guideline's intensity could not be confirmed
  CHECK(np.verify.count("intensity_pct_rmt") == 1);
  CHECK(np.pulses_per_session == 3000);  // as in Attal 2021, said in a note
  CHECK(np.verify.count("pulses_per_session") == 1);
  CHECK(find_preset(presets, "lefaucheur2020_fm_m1_hf").evidence_level == "B");
  CHECK(find_preset(presets, "lefaucheur2020_fm_dlpfc_hf").evidence_level == "B");

  const Protocol& passard = find_preset(presets, "passard2007");
  CHECK(is_complete(passard));
  CHECK(*passard.trains * *pulses_per_train(passard) == 2000);
  CHECK(*passard.inter_train_interval_s == 52);
  CHECK(passard.sessions == 10);
  const Protocol& mhalla = find_preset(presets, "mhalla2011");
  CHECK(*mhalla.trains == 15);
  CHECK(*pulses_per_train(mhalla) == 100);
  CHECK(mhalla.pulses_per_session == 1500);
  CHECK(mhalla.sessions == 14);
  const Protocol& hosomi = find_preset(presets, "hosomi2013");
  CHECK(hosomi.frequency_hz == 5);
  CHECK(hosomi.pulses_per_session == 500);
  CHECK(hosomi.sessions == 10);
  CHECK(hosomi.verify.count("intensity_pct_rmt") == 1);
  const Protocol& attal = find_preset(presets, "attal2021");
  CHECK(attal.pulses_per_session == 3000);
  CHECK(attal.sessions == 15);
  CHECK(!is_complete(attal));
  CHECK(!attal.intensity_pct_rmt.has_value());
  CHECK(attal.verify.count("intensity_pct_rmt") == 1);

  CHECK_THROWS_AS(find_preset(presets, "nope"), Error);
}

TEST_CASE("a user protocol round-trips through JSON", "[unit]") {
  const Protocol p = parse_protocol(kUser, "user.json");
  CHECK(is_complete(p));
  const Protocol back = parse_protocol(to_json(p), "back.json");
  CHECK(back.id == p.id);
  CHECK(back.frequency_hz == p.frequency_hz);
  CHECK(*back.intensity_pct_rmt == *p.intensity_pct_rmt);
  CHECK(*back.train_duration_s == *p.train_duration_s);
  CHECK(*back.trains == *p.trains);
  CHECK(back.pulses_per_session == p.pulses_per_session);
  for (const Protocol& preset : load_presets()) {
    const Protocol again = parse_presets("{\"schema_version\": 1, \"presets\": [" + to_json(preset) + "]}", "x")[0];
    CHECK(again.verify == preset.verify);
  }
}

TEST_CASE("impossible or malformed protocols are rejected naming source and field", "[unit]") {
  check_rejected(with("\"pulses_per_session\": 2000", "\"pulses_per_session\": 2100"), "pulses_per_session");
  check_rejected(with("\"trains\": 25", "\"trains\": 24"), "pulses_per_session");
  check_rejected(with("\"train_duration_s\": 8", "\"train_duration_s\": 8.05"), "train_duration_s");
  check_rejected(with("\"train_duration_s\": 8", "\"train_duration_s\": 8, \"pulses_per_train\": 70"),
                 "pulses_per_train");
  check_rejected(with("\"frequency_hz\": 10", "\"frequency_hz\": 0"), "frequency_hz");
  check_rejected(with("\"frequency_hz\": 10", "\"frequency_hz\": -10"), "frequency_hz");
  check_rejected(with("\"frequency_hz\": 10", "\"frequency_hz\": 1e999"), "");
  check_rejected(with("\"intensity_pct_rmt\": 80", "\"intensity_pct_rmt\": 0"), "intensity_pct_rmt");
  check_rejected(with("\"inter_train_interval_s\": 52", "\"inter_train_interval_s\": -1"), "inter_train_interval_s");
  check_rejected(with("\"sessions\": 10", "\"sessions\": 0"), "sessions");
  check_rejected(with("\"sessions\": 10", "\"sessions\": 2.5"), "sessions");
  check_rejected(with("\"frequency_hz\": 10", "\"frequency_hz\": \"10\""), "frequency_hz");
  check_rejected(with("\"trains\": 25", "\"trains\": true"), "trains");
  check_rejected(with("\"name\": \"My protocol\"", "\"name\": 7"), "name");
  check_rejected(with("\"id\": \"mine\"", "\"id\": \"my protocol\""), "id");
  check_rejected(with("\"trains\": 25,", ""), "trains");
  check_rejected(with("\"inter_train_interval_s\": 52,", ""), "inter_train_interval_s");
  check_rejected(with("\"train_duration_s\": 8,", ""), "train_duration_s");
  check_rejected(with("\"intensity_pct_rmt\": 80,", ""), "intensity_pct_rmt");
  check_rejected(with("\"target\": \"M1_hand_left\",", ""), "target");
  check_rejected(with("\"frequency_hz\": 10,", "\"frequency_hz\": 10, \"frequncy\": 5,"), "frequncy");
  check_rejected(with("\"schema_version\": 1", "\"schema_version\": 2"), "schema_version");
  check_rejected(with("\"schema_version\": 1,", ""), "schema_version");
  check_rejected("", "JSON");
  check_rejected("[1, 2]", "object");
  check_rejected(kUser.substr(0, 60), "JSON");
}

TEST_CASE("presets may omit train fields only with a verify note", "[unit]") {
  const std::string preset = R"({"schema_version": 1, "presets": [{
    "id": "p", "name": "P", "citation": "C", "evidence_level": "A", "target": "M1_hand_left",
    "frequency_hz": 10, "intensity_pct_rmt": 80, "pulses_per_session": 2000, "sessions": 10,
    "schedule": "S", "use": "U", "trains": null, "train_duration_s": null, "inter_train_interval_s": null,
    "verify": {"trains": "x", "train_duration_s": "x", "inter_train_interval_s": "x"}}]})";
  CHECK(parse_presets(preset, "p.json").size() == 1);
  std::string unexplained = preset;
  unexplained.replace(unexplained.find("\"trains\": \"x\", "), 15, "");
  CHECK_THROWS_AS(parse_presets(unexplained, "p.json"), Error);
  std::string bad_level = preset;
  bad_level.replace(bad_level.find("\"A\""), 3, "\"D\"");
  CHECK_THROWS_AS(parse_presets(bad_level, "p.json"), Error);
  CHECK_THROWS_AS(parse_presets("{\"schema_version\": 1}", "p.json"), Error);
  // "notes" is the current name of the same object; both at once, or a bad status, are refused.
  std::string notes = preset;
  notes.replace(notes.find("\"verify\""), 8, "\"notes\"");
  const Protocol read = parse_presets(notes, "p.json").at(0);
  CHECK(read.verify.size() == 3);
  CHECK_THAT(to_json(read), Catch::Contains("\"notes\"") && !Catch::Contains("\"verify\""));
  std::string both = preset;
  both.replace(both.find("\"verify\""), 0, "\"notes\": {\"trains\": \"x\"}, ");
  CHECK_THROWS_AS(parse_presets(both, "p.json"), Error);
  std::string status = preset;
  status.replace(status.find("\"citation\": \"C\""), 15, "\"citation\": \"C\", \"citation_status\": \"maybe\"");
  CHECK_THROWS_AS(parse_presets(status, "p.json"), Error);
  status.replace(status.find("maybe"), 5, "verified");
  CHECK(parse_presets(status, "p.json").at(0).citation_status == "verified");
}

TEST_CASE("safety check flags long high-frequency trains and passes the trial protocols", "[unit]") {
  const SafetyTable table = load_safety_table();
  CHECK(!table.checked_against_primary);

  const SafetyResult high = check_train(table, 20, 120, 5);
  CHECK(high.verdict == Verdict::exceeds);
  CHECK(high.limit_s == Approx(1.0));
  CHECK(high.message.find("EXCEEDS") != std::string::npos);

  const std::vector<Protocol> presets = load_presets();
  const SafetyResult passard = check_protocol(table, find_preset(presets, "passard2007"));
  INFO(passard.message);
  CHECK(passard.verdict == Verdict::ok);
  CHECK(passard.table_intensity_pct_mt == 90);  // 80% is below the table: its lowest column is used
  CHECK(passard.beyond_tested);                 // 8 s is longer than the 5 s tested at 10 Hz
  CHECK(check_protocol(table, find_preset(presets, "mhalla2011")).verdict == Verdict::ok);
  CHECK(check_protocol(table, find_preset(presets, "hosomi2013")).verdict == Verdict::ok);
  CHECK(check_protocol(table, find_preset(presets, "attal2021")).verdict == Verdict::unknown);

  CHECK(check_train(table, 10, 120, 4.2).verdict == Verdict::ok);
  CHECK(check_train(table, 10, 120, 4.3).verdict == Verdict::exceeds);
  CHECK(check_train(table, 10, 130, 3).verdict == Verdict::exceeds);
  // Conservative neighbours: 125% uses the 130% column, 15 Hz the 20 Hz row.
  const SafetyResult between = check_train(table, 10, 125, 3);
  CHECK(between.verdict == Verdict::exceeds);
  CHECK(between.table_intensity_pct_mt == 130);
  const SafetyResult f15 = check_train(table, 15, 100, 2.5);
  CHECK(f15.table_frequency_hz == 20);
  CHECK(f15.verdict == Verdict::exceeds);
  CHECK(check_train(table, 15, 100, 2).verdict == Verdict::ok);
  CHECK(check_train(table, 30, 100, 1).verdict == Verdict::unknown);
  CHECK(check_train(table, 10, 140, 1).verdict == Verdict::unknown);
  CHECK_THROWS_AS(check_train(table, 0, 100, 1), Error);
  CHECK(to_string(Verdict::exceeds) == "exceeds");

  Protocol ranged = find_preset(presets, "passard2007");
  ranged.intensity_pct_rmt_max = 125;  // the upper end of the range is what gets checked
  CHECK(check_protocol(table, ranged).verdict == Verdict::exceeds);
}

TEST_CASE("safety tables are validated", "[unit]") {
  const std::string good = R"({"schema_version": 1, "source": "s", "checked_against_primary": true,
    "intensities_pct_mt": [100, 120], "rows": [{"frequency_hz": 10, "max_train_duration_s": [">5", 4.2]}]})";
  const SafetyTable t = parse_safety_table(good, "t.json");
  CHECK(t.rows[0].cells[0].lower_bound);
  CHECK(t.rows[0].cells[1].seconds == Approx(4.2));
  for (const auto& [from, to] :
       std::vector<std::pair<std::string, std::string>>{{"\">5\"", "\"5>\""},
                                                        {"\">5\"", "\">\""},
                                                        {"4.2", "-1"},
                                                        {"[100, 120]", "[120, 100]"},
                                                        {"\"schema_version\": 1", "\"schema_version\": 3"},
                                                        {"[\">5\", 4.2]", "[4.2]"}}) {
    std::string bad = good;
    bad.replace(bad.find(from), from.size(), to);
    CHECK_THROWS_AS(parse_safety_table(bad, "t.json"), Error);
  }
}

TEST_CASE("dose adjustment for scalp-to-cortex distance", "[unit]") {
  const DoseAdjustment a = adjust_for_depth(45, 16, 13);
  CHECK(a.mt_target_pct_mso == Approx(54.0));
  CHECK(!a.exceeds_stimulator);
  INFO(a.arithmetic);
  CHECK(a.arithmetic.find("45 + 3 x (16 - 13) = 54.0 %MSO") != std::string::npos);

  const DoseAdjustment b = adjust_for_depth(45, 16, 13, stokes2007_pct_mso_per_mm);
  CHECK(b.mt_target_pct_mso == Approx(53.4));
  CHECK(b.arithmetic.find("45 + 2.8 x (16 - 13) = 53.4 %MSO") != std::string::npos);

  CHECK(adjust_for_depth(50, 12.5, 14).mt_target_pct_mso == Approx(45.5));  // shallower target: lower
  CHECK(adjust_for_depth(90, 20, 15).exceeds_stimulator);
  CHECK_THROWS_AS(adjust_for_depth(10, 5, 15), Error);
  CHECK_THROWS_AS(adjust_for_depth(45, -1, 13), Error);
  CHECK_THROWS_AS(adjust_for_depth(0, 16, 13), Error);
  CHECK_THROWS_AS(adjust_for_depth(45, 16, 13, std::nan("")), Error);
}
