// Navigator-file readers (lib/navigators): every input goes to the five readers. Whatever a
// reader accepts, its own writer must write (or refuse with tmsplan::Error, e.g. a name with a line
// break) and the reader must read back: same number of markers, same names, poses within 1e-4.
#include <Eigen/Core>

#include "fuzz_common.hpp"
#include "tmsplan/navigators.hpp"

namespace {

using namespace tmsplan::nav;

void check_same(const char* format, const std::vector<Marker>& a, const std::vector<Marker>& b) {
  if (a.size() != b.size()) fuzz::finding(format, "round trip changed the number of markers");
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name) fuzz::finding(format, "round trip changed a name");
    if ((a[i].pose.m - b[i].pose.m).cwiseAbs().maxCoeff() > 1e-4)
      fuzz::finding(format, "round trip moved a pose by more than 1e-4");
  }
}

// Writes with `write`; when the writer accepts, `read_back` must accept its text.
template <class W, class R> void round_trip(const char* format, W&& write, R&& read_back) {
  std::string written;
  if (!fuzz::accepts(format, [&] { written = write(); })) return;
  if (!fuzz::accepts(format, [&] { read_back(written); }))
    fuzz::finding(format, "the reader refused what its writer wrote");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::text(data, size);

  LocaliteMarkers lm;
  if (fuzz::accepts("read_localite_markers", [&] { lm = read_localite_markers(text, "in.xml"); })) {
    round_trip(
        "localite markers", [&] { return write_localite_instrument_markers(lm.markers, {lm.space}); },
        [&](const std::string& s) {
          check_same("localite markers", lm.markers, read_localite_markers(s, "back.xml").markers);
        });
  }

  std::vector<EntryTarget> et;
  if (fuzz::accepts("read_localite_entry_targets", [&] { et = read_localite_entry_targets(text, "in.xml"); })) {
    round_trip(
        "localite entry/target", [&] { return write_localite_entry_targets(et); },
        [&](const std::string& s) {
          const auto back = read_localite_entry_targets(s, "back.xml");
          if (back.size() != et.size()) fuzz::finding("localite entry/target", "round trip changed the count");
          for (std::size_t i = 0; i < et.size(); ++i) {
            if (back[i].name != et[i].name) fuzz::finding("localite entry/target", "round trip changed a name");
            if ((back[i].entry - et[i].entry).cwiseAbs().maxCoeff() > 1e-4 ||
                (back[i].target - et[i].target).cwiseAbs().maxCoeff() > 1e-4)
              fuzz::finding("localite entry/target", "round trip moved a point");
          }
        });
  }

  BrainsightTargets bs;
  if (fuzz::accepts("read_brainsight_targets", [&] { bs = read_brainsight_targets(text, "in.txt"); })) {
    round_trip(
        "brainsight",
        [&] {
          return write_brainsight_targets(bs.targets, {bs.version, bs.coordinate_system, "fuzz"});
        },
        [&](const std::string& s) {
          check_same("brainsight", bs.targets, read_brainsight_targets(s, "back.txt").targets);
        });
  }

  AntMarkers ant;
  if (fuzz::accepts("read_ant_markers", [&] { ant = read_ant_markers(text, "in.mrk"); })) {
    AntWriteOptions options;
    options.image = ant.image;
    round_trip(
        "ant", [&] { return write_ant_markers(ant.markers, options); },
        [&](const std::string& s) { check_same("ant", ant.markers, read_ant_markers(s, "back.mrk").markers); });
  }

  std::vector<Marker> tsv;
  if (fuzz::accepts("read_markers_tsv", [&] { tsv = read_markers_tsv(text, "in.tsv"); })) {
    round_trip(
        "markers.tsv", [&] { return write_markers_tsv(tsv); },
        [&](const std::string& s) { check_same("markers.tsv", tsv, read_markers_tsv(s, "back.tsv")); });
  }
  return 0;
}
