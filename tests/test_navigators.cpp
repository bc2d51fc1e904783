// Navigator formats: axis conventions, golden pair, round trips, shared samples, malformed input.
#include "tmsplan/error.hpp"
#include "tmsplan/navigators.hpp"

#include <catch2/catch.hpp>

#include "name_reader.hpp"
#include "support.hpp"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <unistd.h>

using namespace tmsplan;
using namespace tmsplan::nav;

namespace {

namespace fs = std::filesystem;

std::string shared_data_dir() {
  if (const char* env = std::getenv("TMSPLAN_SHARED_DATA"); env && *env) return env;
#ifdef TMSPLAN_SOURCE_DIR
  return TMSPLAN_SOURCE_DIR "/../shared/data";
#else
  return "../shared/data";
#endif
}

// The nnav sample folder, or empty (the caller skips) when the shared data is not there.
std::string nnav_dir() {
  const fs::path dir = fs::path(shared_data_dir()) / "nnav";
  return fs::is_directory(dir) ? dir.string() : std::string();
}

#define NNAV_OR_SKIP(var)                                                                                              \
  const std::string var = nnav_dir();                                                                                  \
  if (var.empty()) testing::skip("shared data not found at " + shared_data_dir() + " (set TMSPLAN_SHARED_DATA)");

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> files_in(const std::string& dir, const std::string& contains) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(contains) != std::string::npos) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Eigen::Matrix4d rows4(std::initializer_list<double> v) {
  Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
  auto it = v.begin();
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 4; ++c) m(r, c) = *it++;
  }
  return m;
}

// DESIGN.md section 6.
const Eigen::Matrix4d kGoldenLocalite = rows4({0.72659, -0.51550, -0.45428, -41.8377, 0.04949, -0.62019, 0.78292,
                                               -34.1116, -0.68532, -0.59134, -0.42510, 88.6092});
const Eigen::Matrix4d kGoldenOurs = rows4(
    {-0.45428, 0.51550, 0.72659, -41.8377, 0.78292, 0.62019, 0.04949, -34.1116, -0.42510, 0.59134, -0.68532, 88.6092});

void check_pose(const Eigen::Matrix4d& got, const Eigen::Matrix4d& want, double mm = 1e-4, double rot = 1e-5) {
  INFO("got\n" << got << "\nwant\n" << want);
  CHECK((got.topRightCorner<3, 1>() - want.topRightCorner<3, 1>()).cwiseAbs().maxCoeff() <= mm);
  CHECK((got.topLeftCorner<3, 3>() - want.topLeftCorner<3, 3>()).cwiseAbs().maxCoeff() <= rot);
  CHECK(got.row(3).isApprox(Eigen::RowVector4d(0, 0, 0, 1)));
}

void check_same_markers(const std::vector<Marker>& got, const std::vector<Marker>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].name == want[i].name);
    check_pose(got[i].pose.m, want[i].pose.m);
  }
}

// Deterministic, varied coil poses on a head-sized sphere.
std::vector<Marker> random_markers(std::size_t n) {
  std::mt19937 rng(20240611);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<Marker> out;
  for (std::size_t i = 0; i < n; ++i) {
    Eigen::Quaterniond q(u(rng), u(rng), u(rng), u(rng));
    q.normalize();
    Eigen::Matrix4d m = Eigen::Matrix4d::Identity();
    m.topLeftCorner<3, 3>() = q.toRotationMatrix();
    m.topRightCorner<3, 1>() = Eigen::Vector3d(u(rng), u(rng), u(rng)) * 90.0;
    Marker mk;
    mk.name = "target " + std::to_string(i);
    mk.pose = Pose(m);
    mk.target = Eigen::Vector3d(u(rng), u(rng), u(rng)) * 60.0;
    mk.entry = Eigen::Vector3d(u(rng), u(rng), u(rng)) * 90.0;
    out.push_back(mk);
  }
  return out;
}

template <typename F> void check_throws_error(F&& f, const std::string& source_in_message = {}) {
  try {
    f();
    FAIL("expected tmsplan::Error");
  } catch (const Error& e) {
    INFO(describe(e));
    if (!source_in_message.empty()) CHECK(e.file() == source_in_message);
  }
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::vector<std::string> tabs(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string f; std::getline(in, f, '\t');) out.push_back(f);
  return out;
}

}  // namespace

TEST_CASE("Localite golden pair converts exactly both ways", "[unit]") {
  check_pose(localite_to_ours(kGoldenLocalite), kGoldenOurs, 1e-12, 1e-12);
  check_pose(ours_to_localite(kGoldenOurs), kGoldenLocalite, 1e-12, 1e-12);

  SECTION("through an InstrumentMarkerList") {
    Marker mk{"M0", Pose(kGoldenOurs), std::nullopt, std::nullopt};
    const std::string xml = write_localite_instrument_markers({mk});
    CHECK(xml.find("coordinateSpace=\"RAS\"") != std::string::npos);
    const LocaliteMarkers back = read_localite_markers(xml, "golden.xml");
    REQUIRE(back.markers.size() == 1);
    check_pose(back.markers[0].pose.m, kGoldenOurs, 1e-4, 1e-4);  // golden values have 5 decimals

    std::string localite = xml;
    const auto pos = localite.find("data00=\"");
    REQUIRE(pos != std::string::npos);
    CHECK(std::abs(std::stod(localite.substr(pos + 8, 12)) - 0.72659) < 1e-4);
  }
}

TEST_CASE("Brainsight axis convention flips x and z", "[unit]") {
  const Eigen::Matrix4d bs = ours_to_brainsight(kGoldenOurs);
  CHECK(bs.col(0).head<3>().isApprox(-kGoldenOurs.col(0).head<3>()));
  CHECK(bs.col(1).head<3>().isApprox(kGoldenOurs.col(1).head<3>()));
  CHECK(bs.col(2).head<3>().isApprox(-kGoldenOurs.col(2).head<3>()));
  CHECK(bs.col(3).isApprox(kGoldenOurs.col(3)));
  check_pose(brainsight_to_ours(bs), kGoldenOurs, 1e-12, 1e-12);
}

TEST_CASE("every writer then its own reader returns the poses given", "[unit]") {
  const std::vector<Marker> markers = random_markers(25);

  SECTION("Localite RAS and LPS") {
    for (LocaliteSpace space : {LocaliteSpace::ras, LocaliteSpace::lps}) {
      const std::string xml = write_localite_instrument_markers(markers, {space});
      const LocaliteMarkers back = read_localite_markers(xml, "mem.xml");
      CHECK(back.space == space);
      check_same_markers(back.markers, markers);
    }
  }
  SECTION("Localite LPS stores the world-flipped matrix, coil axes unchanged") {
    const Marker mk{"M0", Pose(kGoldenOurs), std::nullopt, std::nullopt};
    const std::string xml = write_localite_instrument_markers({mk}, {LocaliteSpace::lps});
    const Eigen::Matrix4d lps = Eigen::Vector4d(-1, -1, 1, 1).asDiagonal() * kGoldenLocalite;
    const auto pos = xml.find("data03=\"");
    REQUIRE(pos != std::string::npos);
    CHECK(std::abs(std::stod(xml.substr(pos + 8, 14)) - lps(0, 3)) < 1e-6);
    const auto pos10 = xml.find("data10=\"");
    CHECK(std::abs(std::stod(xml.substr(pos10 + 8, 14)) - lps(1, 0)) < 1e-6);
  }
  SECTION("Localite entry/target") {
    std::vector<EntryTarget> ets;
    for (const Marker& mk : markers) ets.push_back({mk.name, *mk.entry, *mk.target});
    for (LocaliteSpace space : {LocaliteSpace::ras, LocaliteSpace::lps}) {
      const auto back = read_localite_entry_targets(write_localite_entry_targets(ets, {space}), "et.xml");
      REQUIRE(back.size() == ets.size());
      for (std::size_t i = 0; i < ets.size(); ++i) {
        CHECK(back[i].name == ets[i].name);
        CHECK((back[i].entry - ets[i].entry).cwiseAbs().maxCoeff() < 1e-4);
        CHECK((back[i].target - ets[i].target).cwiseAbs().maxCoeff() < 1e-4);
      }
    }
  }
  SECTION("Brainsight versions 7, 12, 14") {
    for (int version : {7, 12, 14}) {
      BrainsightWriteOptions opt;
      opt.version = version;
      opt.coordinate_system = version == 14 ? "NIfTI:Q:Aligned" : "NIfTI:Aligned";
      const BrainsightTargets back = read_brainsight_targets(write_brainsight_targets(markers, opt), "bs.txt");
      CHECK(back.version == version);
      CHECK(back.coordinate_system == opt.coordinate_system);
      check_same_markers(back.targets, markers);
    }
  }
  SECTION("ANT") {
    AntWriteOptions opt;
    opt.coil_type = "MagStim_D70";
    opt.image = AntImageInfo{{0, 1, 0}, {90, -126, -72}, {-1, 1, 1, 1}};
    const AntMarkers back = read_ant_markers(write_ant_markers(markers, opt), "m.mrk");
    check_same_markers(back.markers, markers);
    REQUIRE(back.image.has_value());
    CHECK(back.image->qoffset[1] == -126);
    CHECK(back.image->pixdim[0] == -1);
  }
  SECTION("markers.tsv with and without points") {
    std::vector<Marker> some = markers;
    some[3].entry.reset();
    some[4].target.reset();
    const std::vector<Marker> back = read_markers_tsv(write_markers_tsv(some), "markers.tsv");
    check_same_markers(back, some);
    for (std::size_t i = 0; i < some.size(); ++i) {
      REQUIRE(back[i].entry.has_value() == some[i].entry.has_value());
      REQUIRE(back[i].target.has_value() == some[i].target.has_value());
      if (some[i].entry) CHECK((*back[i].entry - *some[i].entry).cwiseAbs().maxCoeff() < 1e-4);
      if (some[i].target) CHECK((*back[i].target - *some[i].target).cwiseAbs().maxCoeff() < 1e-4);
    }
  }
}

TEST_CASE("writers orthonormalise and refuse poses that are not rotations", "[unit]") {
  Eigen::Matrix4d sheared = kGoldenOurs;
  sheared(0, 1) += 0.02;
  const Marker mk{"sheared", Pose(sheared), std::nullopt, std::nullopt};
  const auto back = read_ant_markers(write_ant_markers({mk}), "m.mrk").markers.at(0).pose.m;
  const Eigen::Matrix3d r = back.topLeftCorner<3, 3>();
  CHECK((r.transpose() * r - Eigen::Matrix3d::Identity()).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(r.determinant() == Approx(1.0));
  CHECK((back - sheared).cwiseAbs().maxCoeff() < 0.03);

  Eigen::Matrix4d mirrored = kGoldenOurs;
  mirrored.col(0) *= -1;
  const Marker bad{"mirrored", Pose(mirrored), std::nullopt, std::nullopt};
  check_throws_error([&] { write_localite_instrument_markers({bad}); });
  check_throws_error([&] { write_brainsight_targets({bad}); });
  check_throws_error([&] { write_ant_markers({bad}); });
  check_throws_error([&] { write_markers_tsv({bad}); });
  Marker nan = mk;
  nan.pose.m(1, 3) = std::nan("");
  check_throws_error([&] { write_markers_tsv({nan}); });
  Marker tab = mk;
  tab.name = "a\tb";
  check_throws_error([&] { write_brainsight_targets({tab}); });
  check_throws_error([&] { write_markers_tsv({tab}); });
  BrainsightWriteOptions world;
  world.coordinate_system = "World";
  check_throws_error([&] { write_brainsight_targets({mk}, world); });
}

TEST_CASE("XML names are escaped and read back", "[unit]") {
  const Marker mk{"a<b & \"c\"", Pose(kGoldenOurs), std::nullopt, std::nullopt};
  const std::string xml = write_localite_instrument_markers({mk});
  CHECK(xml.find("a&lt;b &amp; &quot;c&quot;") != std::string::npos);
  CHECK(read_localite_markers(xml, "x.xml").markers.at(0).name == mk.name);
}

// Files of every format written from the same markers, for the malformed-input cases below.
struct Written {
  std::vector<Marker> markers = random_markers(2);
  std::string xml = write_localite_instrument_markers(markers);
  std::string et = write_localite_entry_targets({{"t", {1, 2, 3}, {4, 5, 6}}});
  std::string bs = write_brainsight_targets(markers);
  std::string ant = write_ant_markers(markers);
  std::string tsv = write_markers_tsv(markers);
};

TEST_CASE("malformed input names its source: empty files", "[unit]") {
  check_throws_error([] { read_localite_markers("", "e.xml"); }, "e.xml");
  check_throws_error([] { read_localite_entry_targets("", "e.xml"); }, "e.xml");
  check_throws_error([] { read_brainsight_targets("", "e.txt"); }, "e.txt");
  check_throws_error([] { read_ant_markers("", "e.mrk"); }, "e.mrk");
  check_throws_error([] { read_markers_tsv("", "e.tsv"); }, "e.tsv");
}

TEST_CASE(
    "malformed input throws tmsplan::Error naming the source: every truncation of an XML file throws, none crashes",
    "[unit]") {
  const Written w;
  const auto& xml = w.xml;
  const auto& et = w.et;
  for (std::size_t n = 0; n + 1 < xml.size(); n += 7) {
    check_throws_error([&] { read_localite_markers(xml.substr(0, n), "cut.xml"); }, "cut.xml");
  }
  for (std::size_t n = 0; n + 1 < et.size(); n += 5) {
    check_throws_error([&] { read_localite_entry_targets(et.substr(0, n), "cut.xml"); }, "cut.xml");
  }
}

TEST_CASE("malformed input names its source: every truncation of the text formats throws or "
          "parses, none crashes",
          "[unit]") {
  const Written w;
  const auto& markers = w.markers;
  const auto& bs = w.bs;
  const auto& ant = w.ant;
  const auto& tsv = w.tsv;
  // A cut either throws an Error naming the file or parses to at most the markers written, each
  // one named as written (a cut inside the last row may shorten its fields, not invent rows).
  const auto check_cut = [&](const std::vector<Marker>& got) {
    CHECK(got.size() <= markers.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(markers[i].name.rfind(got[i].name, 0) == 0);
  };
  std::size_t parsed = 0, thrown = 0;
  for (std::size_t n = 0; n < bs.size(); n += 3) {
    try {
      check_cut(read_brainsight_targets(bs.substr(0, n), "cut.txt").targets);
      ++parsed;
    } catch (const Error& e) {
      CHECK(e.file() == "cut.txt");
      ++thrown;
    }
  }
  for (std::size_t n = 0; n < tsv.size(); n += 3) {
    try {
      check_cut(read_markers_tsv(tsv.substr(0, n), "cut.tsv"));
      ++parsed;
    } catch (const Error& e) {
      CHECK(e.file() == "cut.tsv");
      ++thrown;
    }
  }
  CHECK(parsed + thrown > 0);
  CHECK(read_brainsight_targets(bs, "full.txt").targets.size() == markers.size());
  CHECK(read_markers_tsv(tsv, "full.tsv").size() == markers.size());
  for (std::size_t n = 0; n + 1 < ant.size(); n += 3) {
    check_throws_error([&] { read_ant_markers(ant.substr(0, n), "cut.mrk"); }, "cut.mrk");
  }
}

TEST_CASE("malformed input names its source: non-numeric fields", "[unit]") {
  const Written w;
  const auto& xml = w.xml;
  const auto& bs = w.bs;
  const auto& ant = w.ant;
  const auto& tsv = w.tsv;
  std::string bad = xml;
  bad.replace(bad.find("data13=\"") + 8, 1, "x");
  check_throws_error([&] { read_localite_markers(bad, "n.xml"); }, "n.xml");
  std::string bad_bs = bs;
  const auto row = bad_bs.find("target 0\t");
  bad_bs.replace(row + 9, 1, "abc");
  check_throws_error([&] { read_brainsight_targets(bad_bs, "n.txt"); }, "n.txt");
  std::string bad_null = bs;
  bad_null.replace(bad_null.find("target 1\t") + 9, 1, "(null)");
  check_throws_error([&] { read_brainsight_targets(bad_null, "n.txt"); }, "n.txt");
  std::string bad_ant = ant;
  std::size_t at = bad_ant.find('[', bad_ant.find('[', bad_ant.find("RigidTransformMatrix4x4")) + 1);
  at = bad_ant.find_first_of("-0123456789", at);
  bad_ant.replace(at, bad_ant.find_first_of(",]", at) - at, "\"seven\"");
  check_throws_error([&] { read_ant_markers(bad_ant, "n.mrk"); }, "n.mrk");
  std::string bad_tsv = tsv;
  bad_tsv.replace(bad_tsv.rfind('\t') + 1, 1, "1.2.3");
  check_throws_error([&] { read_markers_tsv(bad_tsv, "n.tsv"); }, "n.tsv");
  const std::string nan_xml = std::string(xml).replace(xml.find("data00=\"") + 8, 0, "nan");
  check_throws_error([&] { read_localite_markers(nan_xml, "n.xml"); }, "n.xml");
}

TEST_CASE("malformed input names its source: missing attributes and elements", "[unit]") {
  const Written w;
  const auto& xml = w.xml;
  const auto& et = w.et;
  const auto& ant = w.ant;
  std::string no_attr = xml;
  const std::size_t attr = no_attr.find("data22=\"");
  no_attr.erase(attr, no_attr.find('"', attr + 8) + 1 - attr);
  check_throws_error([&] { read_localite_markers(no_attr, "m.xml"); }, "m.xml");
  std::string no_space = xml;
  no_space.erase(no_space.find(" coordinateSpace=\"RAS\""), 22);
  check_throws_error([&] { read_localite_markers(no_space, "m.xml"); }, "m.xml");
  std::string odd_space = xml;
  odd_space.replace(odd_space.find("\"RAS\""), 5, "\"XYZ\"");
  check_throws_error([&] { read_localite_markers(odd_space, "m.xml"); }, "m.xml");
  std::string no_index = et;
  no_index.erase(no_index.find(" index=\"0\""), 10);
  check_throws_error([&] { read_localite_entry_targets(no_index, "m.xml"); }, "m.xml");
  std::string lonely = et;
  lonely.erase(lonely.find("<Target"), lonely.find("</Target>") + 9 - lonely.find("<Target"));
  check_throws_error([&] { read_localite_entry_targets(lonely, "m.xml"); }, "m.xml");
  std::string ant_axes = ant;
  ant_axes.replace(ant_axes.find("\"simnibs\""), 9, "\"visor\"");
  check_throws_error([&] { read_ant_markers(ant_axes, "m.mrk"); }, "m.mrk");
  std::string ant_list = ant;
  ant_list.replace(ant_list.find("\"TargetMarkers\""), 15, "\"Markers\"");
  check_throws_error([&] { read_ant_markers(ant_list, "m.mrk"); }, "m.mrk");
}

TEST_CASE("malformed input names its source: wrong root, version or coordinate system", "[unit]") {
  const Written w;
  const auto& xml = w.xml;
  const auto& et = w.et;
  const auto& bs = w.bs;
  const auto& tsv = w.tsv;
  check_throws_error([&] { read_localite_markers(et, "w.xml"); }, "w.xml");
  check_throws_error([&] { read_localite_entry_targets(xml, "w.xml"); }, "w.xml");
  for (const char* v : {"# Version: 3", "# Version: 99", "# Version: twelve", "# Version: 12.5", "# Version:"}) {
    std::string bad = bs;
    bad.replace(0, bad.find('\n'), v);
    check_throws_error([&] { read_brainsight_targets(bad, "v.txt"); }, "v.txt");
  }
  std::string no_version = bs.substr(bs.find('\n') + 1);
  check_throws_error([&] { read_brainsight_targets(no_version, "v.txt"); }, "v.txt");
  for (const char* sys : {"Brainsight", "World", "NIfTI:MNI-152", "NIfTI:Talairach", "Something"}) {
    std::string bad = bs;
    bad.replace(bad.find("NIfTI:Aligned"), 13, sys);
    check_throws_error([&] { read_brainsight_targets(bad, "c.txt"); }, "c.txt");
  }
  std::string header = tsv;
  header.replace(0, 4, "nome");
  check_throws_error([&] { read_markers_tsv(header, "h.tsv"); }, "h.tsv");
}

TEST_CASE("malformed input names its source: random byte mutations give a result or "
          "tmsplan::Error, nothing else",
          "[unit]") {
  const Written w;
  const auto& xml = w.xml;
  const auto& et = w.et;
  const auto& bs = w.bs;
  const auto& ant = w.ant;
  const auto& tsv = w.tsv;
  std::mt19937 rng(7);
  const std::string alphabet = "<>/=\"'&;#\t\n -+.eE0123456789xNaS";
  const auto mutate = [&](std::string s) {
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits && !s.empty(); ++k) {
      const std::size_t at = rng() % s.size();
      switch (rng() % 3) {
      case 0:
        s[at] = alphabet[rng() % alphabet.size()];
        break;
      case 1:
        s.erase(at, 1 + rng() % 8);
        break;
      default:
        s.insert(at, 1, static_cast<char>(rng() % 256));
        break;
      }
    }
    return s;
  };
  // Each mutated file either parses or throws an Error that names it; anything else fails.
  const auto survive = [](auto&& read, const std::string& source) {
    try {
      read();
    } catch (const Error& e) {
      CHECK(e.file() == source);
    }
  };
  for (int round = 0; round < 300; ++round) {
    const std::string x = mutate(xml), e = mutate(et), b = mutate(bs), a = mutate(ant), t = mutate(tsv);
    survive([&] { read_localite_markers(x, "f.xml"); }, "f.xml");
    survive([&] { read_localite_entry_targets(e, "f.xml"); }, "f.xml");
    survive([&] { read_brainsight_targets(b, "f.txt"); }, "f.txt");
    survive([&] { read_ant_markers(a, "f.mrk"); }, "f.mrk");
    survive([&] { read_markers_tsv(t, "f.tsv"); }, "f.tsv");
  }
}

TEST_CASE("malformed input names its source: garbage", "[unit]") {
  for (const char* g : {"<", "<<<>>>", "<a", "<a b=>", "<a b='1'", "<a></b>", "<a/><b/>", "&#xFFFFFF;", "\xff\xfe",
                        "<!DOCTYPE x [<!ENTITY e 'x'>]><a/>", "<a b=\"&bogus;\"/>", "<?xml"}) {
    check_throws_error([&] { read_localite_markers(g, "g.xml"); }, "g.xml");
  }
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "<a>";
  check_throws_error([&] { read_localite_markers(deep, "deep.xml"); }, "deep.xml");
  std::string deep_json(100000, '[');
  check_throws_error([&] { read_ant_markers(deep_json, "deep.mrk"); }, "deep.mrk");
  check_throws_error([] { read_ant_markers("[1, 2]", "a.mrk"); }, "a.mrk");
  check_throws_error([] { read_brainsight_targets("hello\tworld\n", "g.txt"); }, "g.txt");
}

TEST_CASE("tms.tsv lists the protocol per target", "[unit]") {
  protocol::Protocol p;
  p.id = "passard2007";
  p.frequency_hz = 10;
  p.intensity_pct_rmt = 80;
  p.train_duration_s = 8;
  p.inter_train_interval_s = 52;
  p.trains = 25;
  p.pulses_per_session = 2000;
  p.sessions = 10;
  const auto lines = lines_of(write_tms_tsv({{"M1_hand_left", p}}));
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "target_name\tprotocol_id\tfrequency_hz\tintensity_pct_rmt\tpulses_per_train\ttrain_duration_s\t"
                    "inter_train_interval_s\ttrains\tpulses_per_session\tsessions");
  CHECK(lines[1] == "M1_hand_left\tpassard2007\t10\t80\t80\t8\t52\t25\t2000\t10");
}

TEST_CASE("Localite samples parse and write back", "[data]") {
  NNAV_OR_SKIP(nnav);
  const std::string session = nnav + "/localite/Session_20120925103137328";

  SECTION("InstrumentMarkers, RAS and LPS") {
    const auto files = files_in(session + "/InstrumentMarkers", "InstrumentMarker");
    REQUIRE(files.size() == 5);
    for (const std::string& f : files) {
      INFO(f);
      const LocaliteMarkers im = read_localite_markers(read_text(f), f);
      CHECK(im.space == (f.find("LPS_") != std::string::npos ? LocaliteSpace::lps : LocaliteSpace::ras));
      REQUIRE(im.markers.size() >= 4);
      for (LocaliteSpace space : {LocaliteSpace::ras, LocaliteSpace::lps}) {
        const auto back = read_localite_markers(write_localite_instrument_markers(im.markers, {space}), "back.xml");
        check_same_markers(back.markers, im.markers);
      }
    }
  }
  SECTION("the RAS sample's first marker is the golden pair") {
    const std::string f = session + "/InstrumentMarkers/RAS_InstrumentMarker20170316160859032.xml";
    const LocaliteMarkers im = read_localite_markers(read_text(f), f);
    REQUIRE(im.markers.size() == 6);
    CHECK(im.markers[0].name == "M0");
    // The stored matrix is orthonormal only to about 2e-5 and readers orthonormalise, so this is
    // looser than the conversion itself (checked to 1e-12 in the [unit] golden-pair test).
    check_pose(im.markers[0].pose.m, kGoldenOurs, 1e-4, 5e-5);
  }
  SECTION("LPS samples become RAS with z into the head") {
    const std::string f = session + "/InstrumentMarkers/LPS_InstrumentMarker20120925123537421.xml";
    const LocaliteMarkers im = read_localite_markers(read_text(f), f);
    REQUIRE(im.markers.size() == 4);
    CHECK(im.markers[0].name == "hotspot");
    const Eigen::Matrix4d& m = im.markers[0].pose.m;
    CHECK(m(0, 3) == Approx(-36.237570946032804));  // LPS x 36.2 -> RAS -36.2: left hemisphere
    CHECK(m(1, 3) == Approx(-35.691391691174246));
    CHECK(m(2, 3) == Approx(101.91661045854771));
    // Our z is Localite x with the world flipped: (0.349, 0.0105, -0.937), pointing down, into the head.
    CHECK(m(0, 2) == Approx(0.3490561406).margin(1e-4));
    CHECK(m(2, 2) == Approx(-0.9370765166).margin(1e-4));
  }
  SECTION("TriggerMarkers: tracked poses read, untracked skipped") {
    std::size_t total = 0;
    for (const std::string& f : files_in(session + "/TMSTrigger", "TriggerMarkers_")) {
      INFO(f);
      const LocaliteMarkers tm = read_localite_markers(read_text(f), f);
      total += tm.markers.size();
      if (f.find("no_pos_data") != std::string::npos) {
        CHECK(tm.markers.size() == 1);  // one tracked pulse among 959 untracked ones
        CHECK(tm.untracked_skipped == 959);
      }
      if (!tm.markers.empty()) {
        const auto back = read_localite_markers(write_localite_instrument_markers(tm.markers), "back.xml");
        check_same_markers(back.markers, tm.markers);
      }
    }
    CHECK(total > 0);
  }
  SECTION("EntryTarget (LPS)") {
    const auto files = files_in(session + "/EntryTarget", "EntryTarget");
    REQUIRE(files.size() == 4);
    for (const std::string& f : files) {
      INFO(f);
      const auto ets = read_localite_entry_targets(read_text(f), f);
      REQUIRE(ets.size() == 1);
      CHECK(ets[0].name == "premot");
      CHECK(ets[0].entry(0) < 0);  // LPS x > 0 (left) became RAS x < 0
      CHECK(ets[0].entry(2) > ets[0].target(2));
      const auto back = read_localite_entry_targets(write_localite_entry_targets(ets), "back.xml");
      CHECK((back[0].entry - ets[0].entry).cwiseAbs().maxCoeff() < 1e-6);
      CHECK((back[0].target - ets[0].target).cwiseAbs().maxCoeff() < 1e-6);
    }
    const auto first = read_localite_entry_targets(read_text(files[0]), files[0]);
    CHECK(first[0].entry(0) == Approx(-37.00814767241603));
    CHECK(first[0].target(1) == Approx(-29.513064595004064));
  }
}

TEST_CASE("Brainsight samples parse, refuse or come back empty as documented", "[data]") {
  NNAV_OR_SKIP(nnav);
  const std::string dir = nnav + "/brainsight/";
  struct Expect {
    const char* file;
    int version;
    std::size_t targets;
    bool has_section;
  };
  const Expect ok[] = {
      {"niiImage_niftialignedcoord.txt", 7, 7, true},
      {"niiImage_nifticoord.txt", 7, 7, true},
      {"dcmimage_niftialignedcoord.txt", 7, 1, true},
      {"niiImage_niftialigned_q_coord_v14.txt", 14, 2, true},
      {"niiImage_niftialignedcoord_empty.txt", 7, 0, true},
      {"niiImage_niftialignedcoord_no_samples.txt", 7, 7, true},
      {"niiImage_niftialignedcoord_no_targets.txt", 7, 0, false},
      {"niiImage_nifticoord_gridfolder.txt", 12, 15, true},
      {"niiImage_nifticoord_largefile.txt", 12, 5, true},
      {"niiImage_niifticoord_mixedtargets.txt", 12, 17, true},
  };
  for (const Expect& e : ok) {
    INFO(e.file);
    const std::string path = dir + e.file;
    const BrainsightTargets t = read_brainsight_targets(read_text(path), path);
    CHECK(t.version == e.version);
    CHECK(t.has_target_section == e.has_section);
    CHECK(t.targets.size() == e.targets);
    BrainsightWriteOptions opt;
    opt.version = t.version;
    opt.coordinate_system = t.coordinate_system;
    const BrainsightTargets back = read_brainsight_targets(write_brainsight_targets(t.targets, opt), "back.txt");
    check_same_markers(back.targets, t.targets);
  }
  for (const char* refused :
       {"niiImage_brainsightcoord.txt", "dcmimage_brainsightcoord.txt", "dcmimage_worldcoord.txt"}) {
    const std::string path = dir + refused;
    check_throws_error([&] { read_brainsight_targets(read_text(path), path); }, path);
  }

  SECTION("values and axes of a known target") {
    const std::string path = dir + "niiImage_niftialignedcoord.txt";
    const BrainsightTargets t = read_brainsight_targets(read_text(path), path);
    CHECK(t.targets[1].name == "Sample 1");
    const Eigen::Matrix4d& m = t.targets[1].pose.m;
    CHECK(m(0, 3) == Approx(-44.198));
    CHECK(m(2, 3) == Approx(65.742));
    // m2 (Brainsight z, out of the head) = (-0.624, 0.469, 0.624); our z is its negative.
    CHECK(m(0, 2) == Approx(0.624).margin(0.01));
    CHECK(m(2, 2) == Approx(-0.624).margin(0.01));
  }
}

TEST_CASE("Brainsight output matches the samples' layout line for line", "[data]") {
  NNAV_OR_SKIP(nnav);
  struct Sample {
    const char* file;
    const char* created_by;
  };
  for (const Sample& s : {Sample{"niiImage_niftialigned_q_coord_v14.txt", "Brainsight 2.5.3"},
                          Sample{"niiImage_niftialignedcoord.txt", "Brainsight 2.3.5"}}) {
    INFO(s.file);
    const std::string path = nnav + "/brainsight/" + s.file;
    const std::string text = read_text(path);
    const BrainsightTargets t = read_brainsight_targets(text, path);
    BrainsightWriteOptions opt;
    opt.version = t.version;
    opt.coordinate_system = t.coordinate_system;
    opt.created_by = s.created_by;
    const auto want = lines_of(text);
    const auto got = lines_of(write_brainsight_targets(t.targets, opt));
    REQUIRE(got.size() == 7 + t.targets.size());
    for (std::size_t i = 0; i < 7; ++i) CHECK(got[i] == want[i]);  // header lines and column header
    for (std::size_t i = 7; i < got.size(); ++i) {
      const auto g = tabs(got[i]);
      const auto w = tabs(want[i]);
      REQUIRE(g.size() == 13);
      REQUIRE(w.size() == 13);
      CHECK(g[0] == w[0]);
      for (std::size_t k = 1; k < 13; ++k) {
        INFO("line " << i + 1 << " column " << k);
        // Positions to 1e-4 mm; rotations within the sample's rounding (3-4 decimals).
        CHECK(std::stod(g[k]) == Approx(std::stod(w[k])).margin(k <= 3 ? 1e-4 : 2e-3));
      }
    }
  }
}

TEST_CASE("ANT visor2 sample parses and writes back", "[data]") {
  NNAV_OR_SKIP(nnav);
  const std::string path = nnav + "/ant/ioJson3DMarker_example_SimNIBS.mrk";
  const AntMarkers m = read_ant_markers(read_text(path), path);
  REQUIRE(m.markers.size() == 7);
  CHECK(m.markers[0].name == "CoilMarker_1");
  CHECK(m.markers[3].name.empty());
  REQUIRE(m.image.has_value());
  CHECK(m.image->qoffset[2] == -172.0);
  const Eigen::Matrix4d want = rows4({-0.55403229, 0.25881905, 0.79124012, -70.0, 0.14845251, 0.96592583, -0.21201215,
                                      -10.0, -0.81915204, 0.0, -0.57357644, 60.0});
  check_pose(m.markers[0].pose.m, want, 1e-9, 1e-6);
  // simnibs axes: z into the head (the marker sits at x = -70 mm, left; z points right and down).
  CHECK(m.markers[0].pose.m(0, 2) > 0.5);
  AntWriteOptions opt;
  opt.image = m.image;
  const AntMarkers back = read_ant_markers(write_ant_markers(m.markers, opt), "back.mrk");
  check_same_markers(back.markers, m.markers);
}

// ---- File names as the navigators name them -----------------------------------------------------

TEST_CASE("Localite file names: a deterministic, valid 17-digit timestamp from the plan", "[unit][names]") {
  const std::string a = localite_timestamp("plan A"), b = localite_timestamp("plan B");
  CHECK(a == localite_timestamp("plan A"));  // the same plan gives the same name
  CHECK(a != b);
  for (const std::string& stamp : {a, b}) {
    INFO(stamp);
    REQUIRE(stamp.size() == 17);
    CHECK(stamp.rfind("20000101", 0) == 0);
    CHECK(!name_reader::parse_stamp(stamp).empty());  // a real date and time, as readers parse it
    CHECK(localite_instrument_marker_name(stamp) == "InstrumentMarker" + stamp + ".xml");
    CHECK(localite_entry_target_name(stamp) == "EntryTarget" + stamp + ".xml");
    CHECK(is_localite_name(localite_instrument_marker_name(stamp), "InstrumentMarker"));
    CHECK(!is_localite_name(localite_instrument_marker_name(stamp), "EntryTarget"));
  }
  // Not a date: refused by the name helpers and by the name-driven reader alike.
  for (const std::string bad :
       {"20121325103137328", "20120230103137328", "20120925253137328", "2012092510313732", "2012092510313732x"}) {
    INFO(bad);
    CHECK_THROWS_AS(localite_instrument_marker_name(bad), Error);
    CHECK(!is_localite_name("InstrumentMarker" + bad + ".xml", "InstrumentMarker"));
    CHECK(name_reader::parse_stamp(bad).empty());
  }
  CHECK(is_localite_name("EntryTarget20120925115848265.xml", "EntryTarget"));
  CHECK(!is_localite_name("EntryTarget20120925115848265.XML", "EntryTarget"));
  CHECK(!is_localite_name("localite_instrument_markers.xml", "InstrumentMarker"));
}

TEST_CASE("a name-driven reader finds and parses the files our writers produce under our names", "[unit][names]") {
  const std::string dir = (fs::temp_directory_path() / ("tmsplan_names_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<Marker> markers;
  Pose p;
  p.m.topRightCorner<3, 1>() = Eigen::Vector3d(-40, -20, 70);
  markers.push_back({"M1_hand_left", p, Eigen::Vector3d(-41, -20, 72), Eigen::Vector3d(-37, -21, 58)});
  p.m.topRightCorner<3, 1>() = Eigen::Vector3d(-45, 40, 55);
  markers.push_back({"DLPFC_BA9", p, Eigen::Vector3d(-46, 41, 56), Eigen::Vector3d(-36, 39, 43)});
  const std::string im = write_localite_instrument_markers(markers);
  const std::string et = write_localite_entry_targets({{"M1_hand_left", {-41, -20, 72}, {-37, -21, 58}}});
  const std::string stamp = localite_timestamp(im + et);
  const auto put = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name, std::ios::binary) << text;
  };
  put(localite_instrument_marker_name(stamp), im);
  put(localite_entry_target_name(stamp), et);
  put("brainsight_v12.txt", write_brainsight_targets(markers));
  put("ant_markers.mrk", write_ant_markers(markers));
  put("localite_instrument_markers.xml", im);  // the old name: no reader recognises it
  const name_reader::Folder f = name_reader::read_folder(dir);
  REQUIRE(f.instrument_markers.size() == 1);
  CHECK(f.instrument_markers.begin()->first == "InstrumentMarker" + stamp + ".xml");
  CHECK(f.instrument_markers.begin()->second.size() == 2);
  REQUIRE(f.entry_targets.size() == 1);
  CHECK(f.entry_targets.begin()->second.at(0).name == "M1_hand_left");
  REQUIRE(f.brainsight.size() == 1);
  CHECK(f.brainsight.begin()->second.size() == 2);
  REQUIRE(f.ant.size() == 1);
  CHECK(f.ant.begin()->second.size() == 2);
  CHECK(f.unrecognised == std::vector<std::string>{"localite_instrument_markers.xml"});
  CHECK(f.stamps.at("InstrumentMarker" + stamp + ".xml").rfind("2000-01-01 ", 0) == 0);
  fs::remove_all(dir);
}

TEST_CASE("our names follow the navigators' own sample files", "[data][names]") {
  NNAV_OR_SKIP(nnav);
  const std::string session = nnav + "/localite/Session_20120925103137328";
  // The same name-driven reader reads Localite's own session folders...
  const name_reader::Folder im = name_reader::read_folder(session + "/InstrumentMarkers");
  CHECK(im.instrument_markers.size() == 5);
  CHECK(im.unrecognised.empty());
  const name_reader::Folder et = name_reader::read_folder(session + "/EntryTarget");
  CHECK(et.entry_targets.size() == 4);
  CHECK(et.unrecognised.empty());
  // ... whose names are kind + 17-digit stamp + .xml, the form our names take (the InstrumentMarker
  // samples carry a RAS_/LPS_ prefix added by SimNIBS's tests, after which the name is Localite's).
  for (const auto& [name, stamp] : im.stamps) {
    INFO(name);
    const std::string bare = name.substr(name.find("InstrumentMarker"));
    CHECK(is_localite_name(bare, "InstrumentMarker"));
    CHECK(bare.size() == localite_instrument_marker_name(localite_timestamp("x")).size());
  }
  for (const auto& [name, stamp] : et.stamps) {
    INFO(name);
    CHECK(is_localite_name(name, "EntryTarget"));
    CHECK(name.size() == localite_entry_target_name(localite_timestamp("x")).size());
  }
  // Brainsight exports are .txt files recognised by their "# Version:" header; ANT by .mrk.
  for (const auto& e : fs::directory_iterator(nnav + "/brainsight")) {
    INFO(e.path());
    CHECK(e.path().extension() == ".txt");
  }
  for (const auto& e : fs::directory_iterator(nnav + "/ant")) CHECK(e.path().extension() == ".mrk");
  const name_reader::Folder ant = name_reader::read_folder(nnav + "/ant");
  CHECK(ant.ant.size() == 1);
}
