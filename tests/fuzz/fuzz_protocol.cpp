// Protocol readers (lib/protocol): every input goes to parse_presets, parse_protocol and
// parse_safety_table. What parse_protocol accepts must come back unchanged through to_json; a
// safety table that is accepted must answer check_train for a few trains without failing.
#include "fuzz_common.hpp"
#include "tmsplan/protocol.hpp"

namespace {

bool same(const tmsplan::protocol::Protocol& a, const tmsplan::protocol::Protocol& b) {
  return a.id == b.id && a.name == b.name && a.citation == b.citation && a.evidence_level == b.evidence_level &&
         a.target == b.target && a.frequency_hz == b.frequency_hz && a.intensity_pct_rmt == b.intensity_pct_rmt &&
         a.intensity_pct_rmt_max == b.intensity_pct_rmt_max && a.train_duration_s == b.train_duration_s &&
         a.pulses_per_train == b.pulses_per_train && a.inter_train_interval_s == b.inter_train_interval_s &&
         a.trains == b.trains && a.pulses_per_session == b.pulses_per_session &&
         a.pulses_per_session_max == b.pulses_per_session_max && a.sessions == b.sessions && a.schedule == b.schedule &&
         a.use == b.use && a.verify == b.verify;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace pr = tmsplan::protocol;
  const std::string text(reinterpret_cast<const char*>(data), size);

  fuzz::accepts("parse_presets", [&] {
    const auto presets = pr::parse_presets(text, "presets.json");
    for (const auto& p : presets) {
      (void)pr::is_complete(p);
      (void)pr::pulses_per_train(p);
      (void)pr::find_preset(presets, p.id);
    }
  });

  pr::Protocol p;
  if (fuzz::accepts("parse_protocol", [&] { p = pr::parse_protocol(text, "protocol.json"); })) {
    pr::Protocol back;
    if (!fuzz::accepts("to_json + parse_protocol", [&] { back = pr::parse_protocol(pr::to_json(p), "back.json"); }))
      fuzz::finding("round trip", "an accepted protocol could not be written and read back");
    if (!same(p, back)) fuzz::finding("round trip", "the protocol read back differs from the one written");
  }

  pr::SafetyTable table;
  if (fuzz::accepts("parse_safety_table", [&] { table = pr::parse_safety_table(text, "safety.json"); })) {
    for (const double hz : {0.5, 1.0, 10.0, 20.0, 1e6})
      for (const double pct : {50.0, 100.0, 120.0, 1e6})
        fuzz::accepts("check_train", [&] { (void)pr::check_train(table, hz, pct, 2.0); });
  }
  return 0;
}
