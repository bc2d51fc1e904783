// The citations behind a plan with their checked status (checked 2026-11-30 against indexing
// records, abstracts and review tables), and what the evidence-based guideline supports at a
// target. Protocol citations and statuses come from data/protocols.json, the safety table's from
// data/safety_limits.json; this file holds the ones the code itself relies on (guideline, dose
// factor, library targets), each with the status of the check.
#include <fmt/format.h>

#include "internal.hpp"

namespace tmsplan::plan {

namespace {

bool starts_with(const std::string& s, const std::string& head) { return s.rfind(head, 0) == 0; }
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

const std::vector<SourceEntry>& known_sources() {
  static const std::vector<SourceEntry> all = {
      {"lefaucheur2020",
       "Lefaucheur JP et al. (2020) Clin Neurophysiol 131(2):474-528 (evidence-based guidelines on "
       "therapeutic rTMS)",
       "evidence levels",
       "verified; level A: high-frequency rTMS of M1 contralateral to the pain for neuropathic pain; level B in "
       "fibromyalgia: high-frequency rTMS of the left M1 for quality of life and of the left DLPFC for pain"},
      {"stokes2005",
       "Stokes MG et al. (2005) Simple metric for scaling motor threshold based on scalp-cortex distance. "
       "J Neurophysiol",
       "dose: about 3 %MSO per mm of scalp-to-cortex distance (the factor used)",
       "verified; volume and pages (94:4520-4527) unconfirmed"},
      {"stokes2007",
       "Stokes MG, Chambers CD, Gould IC, et al. (2007) Distance-adjusted motor threshold for "
       "transcranial magnetic stimulation. Clin Neurophysiol 118:1617-1625",
       "dose: 2.8 %MSO per mm of coil-scalp separation",
       "corrected (earlier cited as Exp Brain Res 181:41-49); verified"},
      {"chen1997", "Chen R et al. (1997) Electroencephalogr Clin Neurophysiol 105(6):415-421",
       "safety: inter-train interval rule",
       "verified: at 20 Hz, 1.6 s trains, 110% MT, 5 s between trains was safe; 1 s or less was unsafe above 100% "
       "MT; the authors recommend trains 25% shorter than the earlier limits"},
      {"rossi2021", "Rossi S et al. (2021) Clin Neurophysiol 132:269-306", "safety: keeps the 2009 recommendations",
       "verified"},
      {"mayka2006", "Mayka et al. (2006) NeuroImage 31(4):1453-1474", "target: M1 hand (-37, -21, 58)",
       "citation verified; the value is SimNIBS's example MNI M1; its space is unconfirmed (Mayka pooled Talairach "
       "coordinates): approximate"},
      {"andreobadia2008",
       "Andre-Obadia N, Mertens P, Gueguen A, Peyron R, Garcia-Larrea L (2008) Neurology, PMID "
       "18779511",
       "coil orientation at M1: posteroanterior current",
       "corrected (earlier cited as Pain 138); verified; the handle angle is not in the abstract"},
      {"fox2012", "Fox et al. (2012) Biol Psychiatry 72(7):595-603, PMID 22658708",
       "targets: DLPFC BA9, BA46, 5-cm site, F3 site",
       "citation verified; the values are unconfirmed at the source (used as MNI points by other groups' code)"},
      {"mirmoghtadaei2015", "Mir-Moghtadaei et al. (2015) Brain Stimul 8(5):965-973",
       "target: DLPFC sgACC-anticorrelated (-38, 44, 26)",
       "partly verified: the value is its MNI target; whether it is Fox 2012's subgenual-seed peak is unconfirmed"},
      {"fitzgerald2006", "Fitzgerald et al. (2006) Psychiatry Res 148:33-45", "target: DLPFC (-50, 30, 36)",
       "corrected (earlier cited to Rusjan et al. 2010); unconfirmed at the source: attributed by others"},
  };
  return all;
}

const SourceEntry* source_for_target(const std::string& target_source) {
  static const std::vector<std::pair<std::string, std::string>> keys = {{"Mayka", "mayka2006"},
                                                                        {"Mir-Moghtadaei", "mirmoghtadaei2015"},
                                                                        {"Fitzgerald", "fitzgerald2006"},
                                                                        {"Fox et al. 2012", "fox2012"}};
  for (const auto& [needle, key] : keys)
    if (contains(target_source, needle))
      for (const auto& s : known_sources())
        if (s.key == key) return &s;
  return nullptr;
}

const SourceEntry& source(const std::string& key) {
  for (const auto& s : known_sources())
    if (s.key == key) return s;
  static const SourceEntry none{};
  return none;
}

std::string guideline_at(const protocol::Protocol& p, const Target& t) {
  const std::string& target = t.name;
  if (p.target.empty() || starts_with(target, p.target) || starts_with(p.target, target)) return {};
  std::string out = fmt::format("Protocol '{}' was studied at {}; here it is planned at {}. ", p.id, p.target, target);
  const std::string kind = target_kind(t);
  if (kind == "prefrontal")
    out += "At the left DLPFC the Lefaucheur 2020 guideline gives level B to high-frequency rTMS for fibromyalgia "
           "pain (for fibromyalgia quality of life the level-B target is the left M1); for neuropathic pain its level "
           "A is M1 contralateral to the pain.";
  else if (kind == "motor")
    out += "At M1 the Lefaucheur 2020 guideline gives level A to high-frequency rTMS contralateral to the pain for "
           "neuropathic pain, and level B to high-frequency rTMS of the left M1 for fibromyalgia quality of life (for "
           "fibromyalgia pain the level-B target is the left DLPFC).";
  else
    out += "The Lefaucheur 2020 guideline reaches level A or B only at M1 (neuropathic pain; fibromyalgia quality of "
           "life) and the left DLPFC (fibromyalgia pain).";
  return out;
}

}  // namespace tmsplan::plan
