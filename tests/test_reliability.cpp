// Reliability (issue #9): a catalogue of bad inputs across the five tools, interrupted runs,
// concurrent runs and determinism across --threads, all through the real binaries.
//
// Every catalogue case must end with exit code 1 (2 for a usage error), exactly one error line
// "<tool>: error: ..." naming the input (or the option), nothing on stdout, no output file left
// behind and the earlier files of its folder untouched. test_cli.cpp holds 15 further skull-strip
// image cases; test_io.cpp the header refusals at library level.
//
// The pipeline runs once on the small-2mm sample (--threads 2) into a fixture folder under
// build/test-tmp that every test case (and every CTest process, under a file lock) reuses until
// a tool binary, the sample or a data file changes. Cases link its files (hard links: the tools replace files
// by rename, never in place) instead of copying them.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "fixtures.hpp"
#include "support.hpp"
#include "tmsplan/cli.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/image.hpp"

using namespace tmsplan;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// ---- small helpers ------------------------------------------------------------------------------

std::string q(const std::string& s) { return "'" + s + "'"; }

std::string test_root() { return (fs::path(TMSPLAN_BIN_DIR).parent_path() / "test-tmp").string(); }

using testing::put;
using testing::slurp;

template <class T> void poke(std::string& bytes, std::size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Image blob(std::int64_t n = 40) { return testing::blob(n); }

Mask blob_mask(std::int64_t n = 40) {
  Grid g;
  g.dim = {n, n, n};
  g.vox2ras.m.setIdentity();
  Mask m(g, 0);
  for (std::int64_t k = n / 4; k < 3 * n / 4; ++k)
    for (std::int64_t j = n / 4; j < 3 * n / 4; ++j)
      for (std::int64_t i = n / 4; i < 3 * n / 4; ++i) m(i, j, k) = 1;
  return m;
}

WriteOptions forced() {
  WriteOptions wo;
  wo.force = true;
  return wo;
}

std::string write_blob(const std::string& path) {
  write_image(path, blob(), forced());
  return path;
}

// Files of a folder (recursive, regular files including dot files) with an identity that changes
// when the file is replaced (inode) or rewritten (size, mtime); small files also by content.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  if (dir.empty() || !fs::is_directory(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    struct stat st {};
    ::stat(e.path().c_str(), &st);
    std::string id = std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
                     std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    if (st.st_size < (1 << 20)) id += ":" + sha256_file(e.path().string());
    out[fs::relative(e.path(), dir).string()] = id;
  }
  return out;
}

std::string describe_diff(const std::map<std::string, std::string>& before,
                          const std::map<std::string, std::string>& after) {
  std::string out;
  for (const auto& [name, id] : after) {
    const auto it = before.find(name);
    if (it == before.end())
      out += " new:" + name;
    else if (it->second != id)
      out += " changed:" + name;
  }
  for (const auto& [name, id] : before)
    if (!after.count(name)) out += " removed:" + name;
  return out;
}

// Hard links (copies when linking fails) of every regular file of `from` (not recursive).
void link_all(const std::string& from, const std::string& to, const std::vector<std::string>& except = {}) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (std::find(except.begin(), except.end(), name) != except.end()) continue;
    std::error_code ec;
    fs::create_hard_link(e.path(), fs::path(to) / name, ec);
    if (ec) fs::copy_file(e.path(), fs::path(to) / name, fs::copy_options::overwrite_existing);
  }
}

// ---- the pipeline fixture -----------------------------------------------------------------------

struct Fixture {
  std::string t1;   // the input T1 (samples/small-2mm.nii.gz)
  std::string dir;  // skull-strip .. protocol-export outputs, made with --threads 2
  double wall(const std::string& record) const {
    return json::parse(slurp(dir + "/" + record))["time"]["wall_seconds"].get<double>();
  }
};

const std::vector<std::string> kSteps = {"skull-strip", "segment", "cortex-map", "target-pick", "protocol-export"};

// The command of one step: inputs from `in` (the folder of the earlier steps), outputs to `out`.
std::string step_command(const std::string& step, const std::string& t1, const std::string& in, const std::string& out,
                         int threads) {
  const std::string common = " --quiet --threads " + std::to_string(threads);
  const std::string b = testing::bin(step) + " ";
  if (step == "skull-strip") return b + q(t1) + " -o " + q(out) + common;
  if (step == "segment")
    return b + "--t1 " + q(in + "/t1w_biascorr.nii.gz") + " --mask " + q(in + "/brain_mask.nii.gz") + " -o " + q(out) +
           common;
  if (step == "cortex-map")
    return b + "--t1 " + q(in + "/t1w_biascorr.nii.gz") + " --brain " + q(in + "/brain_mask.nii.gz") + " --head " +
           q(in + "/head_mask.nii.gz") + " --dseg " + q(in + "/dseg.nii.gz") + " -o " + q(out) + common;
  if (step == "target-pick")
    return b + "-s " + q(in) + " --target M1_hand_left --target DLPFC_BA46 -o " + q(out + "/targets.json") + common;
  if (step == "protocol-export")
    return b + "--targets " + q(in + "/targets.json") + " --t1 " + q(t1) + " --protocol passard2007 -o " + q(out) +
           common;
  FAIL("unknown step " << step);
  return {};
}

const Fixture* fixture() {
  static std::optional<Fixture> made;
  static bool tried = false;
  static std::string failure;
  if (!failure.empty()) FAIL(failure);
  if (tried) return made ? &*made : nullptr;
  tried = true;
  const std::string samples = testing::samples_dir();
  if (samples.empty()) return nullptr;
  Fixture f;
  f.t1 = samples + "/small-2mm.nii.gz";
  f.dir = test_root() + "/reliability-fixture";
  fs::create_directories(test_root());
  // Valid while the binaries, the sample and the data files are the same bytes.
  std::string stamp = "recipe 1\n" + sha256_file(f.t1) + "\n";
  for (const auto& step : kSteps) stamp += sha256_file(testing::bin(step)) + "\n";
  for (const char* data : {"targets.json", "protocols.json", "safety_limits.json"})
    stamp += sha256_file(std::string(TMSPLAN_SOURCE_DIR) + "/data/" + data) + "\n";

  const int lock = ::open((f.dir + ".lock").c_str(), O_CREAT | O_RDWR, 0644);
  REQUIRE(lock >= 0);
  ::flock(lock, LOCK_EX);
  if (slurp(f.dir + "/.stamp") != stamp) {
    fs::remove_all(f.dir);
    fs::create_directories(f.dir);
    for (const auto& step : kSteps) {
      const auto r = testing::run(step_command(step, f.t1, f.dir, f.dir, 2));
      if (r.exit_code != 0) {
        ::flock(lock, LOCK_UN);
        ::close(lock);
        failure = "fixture: " + step + " failed: " + r.err;
        FAIL(failure);
      }
    }
    put(f.dir + "/.stamp", stamp);
  }
  ::flock(lock, LOCK_UN);
  ::close(lock);
  made = f;
  return &*made;
}

// ---- the catalogue --------------------------------------------------------------------------------

enum class Needs { Nothing, Fixture, SharedData };

struct Context {
  std::string work;  // a fresh folder for this case
  const Fixture* fx = nullptr;
  std::string dicom;  // ../shared/data/philips-mprage/dicom
};

struct Invocation {
  std::string command;
  std::string named;  // the error line must contain this (the input's path, or the option)
  std::string watch;  // folder whose files must be exactly the same after the run
};

struct Case {
  std::string group;
  std::string name;
  std::string tool;
  int exit_code;
  std::string expect;  // part of the error line
  Needs needs;
  std::function<Invocation(const Context&)> make;
};

// --- NIfTI: a valid 40^3 float .nii, one header field broken (offsets of the NIfTI-1 header).
Invocation broken_header(const Context& c, const std::function<void(std::string&)>& patch) {
  const std::string path = write_blob(c.work + "/t1.nii");
  std::string b = slurp(path);
  patch(b);
  put(path, b);
  const std::string out = c.work + "/out";
  fs::create_directories(out);
  return {testing::bin("skull-strip") + " " + q(path) + " -o " + q(out), path, c.work};
}

Case header_case(const std::string& name, const std::string& expect, std::function<void(std::string&)> patch) {
  return {"nifti",
          name,
          "skull-strip",
          1,
          expect,
          Needs::Nothing,
          [patch](const Context& c) { return broken_header(c, patch); }};
}

// --- DICOM: copies of some Philips slices.
std::string dicom_name(int n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "1301_%04d.dcm", n);
  return buf;
}

std::string copy_slices(const Context& c, const std::string& sub, int first, int last) {
  const std::string dir = c.work + "/" + sub;
  fs::create_directories(dir);
  for (int n = first; n <= last; ++n) fs::copy_file(c.dicom + "/" + dicom_name(n), dir + "/" + dicom_name(n));
  return dir;
}

// Changes one digit of the Series Instance UID (0020,000E) in place (explicit VR little endian).
void change_series_uid(const std::string& file) {
  std::string b = slurp(file);
  const std::string tag("\x20\x00\x0e\x00UI", 6);
  const auto at = b.find(tag);
  REQUIRE(at != std::string::npos);
  const std::size_t len = std::uint8_t(b[at + 6]) | (std::size_t(std::uint8_t(b[at + 7])) << 8);
  std::size_t pos = at + 8 + len - 1;
  while (!std::isdigit(static_cast<unsigned char>(b[pos]))) --pos;
  b[pos] = b[pos] == '9' ? '1' : char(b[pos] + 1);
  put(file, b);
}

Invocation skull_strip_on(const Context& c, const std::string& input, const std::string& extra = "") {
  const std::string out = c.work + "/out";
  fs::create_directories(out);
  return {testing::bin("skull-strip") + " " + q(input) + " -o " + q(out) + extra, input, c.work};
}

// --- JSON: the fixture's targets.json with one change; a valid user protocol with one change.
std::string targets_variant(const Context& c, const std::string& name, const std::function<void(json&)>& change) {
  json doc = json::parse(slurp(c.fx->dir + "/targets.json"));
  change(doc);
  const std::string path = c.work + "/" + name + ".json";
  put(path, doc.dump(2));
  return path;
}

Invocation export_with_targets(const Context& c, const std::string& targets) {
  const std::string out = c.work + "/out";
  fs::create_directories(out);
  return {testing::bin("protocol-export") + " --targets " + q(targets) + " --t1 " + q(c.fx->t1) +
              " --protocol passard2007 -o " + q(out) + " --subject-dir " + q(c.fx->dir),
          targets, c.work};
}

const std::string& kProtocol = testing::kUserProtocol;

Invocation export_with_protocol(const Context& c, const std::string& from, const std::string& to) {
  std::string text = kProtocol;
  if (!from.empty()) {
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
  } else {
    text = to;
  }
  const std::string path = c.work + "/protocol.json";
  put(path, text);
  const std::string out = c.work + "/out";
  fs::create_directories(out);
  return {testing::bin("protocol-export") + " --targets " + q(c.fx->dir + "/targets.json") + " --t1 " + q(c.fx->t1) +
              " --protocol " + q(path) + " -o " + q(out),
          path, c.work};
}

// --- target-pick on a linked copy of the fixture folder (without target-pick's outputs).
std::string subject_copy(const Context& c) {
  const std::string dir = c.work + "/subject";
  link_all(c.fx->dir, dir, {"targets.json", "target_pick.json", "target_pick_qc.png", ".stamp"});
  return dir;
}

// target-pick on `dir`; `watch` defaults to `dir` (where its outputs go without -o).
Invocation pick_in(const std::string& dir, const std::string& named, const std::string& extra = "",
                   const std::string& watch = "") {
  return {testing::bin("target-pick") + " -s " + q(dir) + " --target M1_hand_left" + extra, named,
          watch.empty() ? dir : watch};
}

std::string library_variant(const Context& c, const std::function<void(json&)>& change) {
  json doc = json::parse(slurp(std::string(TMSPLAN_SOURCE_DIR) + "/data/targets.json"));
  change(doc);
  const std::string path = c.work + "/library.json";
  put(path, doc.dump(2));
  return path;
}

// A volume of the fixture moved in the world (another head position: same size, other grid).
std::string moved_copy(const Context& c, const std::string& name, const std::string& to, double mm) {
  ReadOptions ro;
  ro.refuse_constant = false;
  Image im = read_image(c.fx->dir + "/" + name, ro);
  im.grid.vox2ras.m(0, 3) += mm;
  WriteOptions wo = forced();
  wo.type = DiskType::UInt8;
  fs::remove(to);
  write_image(to, im, wo);
  return to;
}

Invocation cortex_map_with(const Context& c, const std::string& brain, const std::string& head, const std::string& dseg,
                           const std::string& extra = "") {
  const std::string out = c.work + "/out";
  fs::create_directories(out);
  return {testing::bin("cortex-map") + " --t1 " + q(c.fx->dir + "/t1w_biascorr.nii.gz") + " --brain " + q(brain) +
              " --head " + q(head) + " --dseg " + q(dseg) + " -o " + q(out) + extra,
          "", c.work};
}

// NIfTI headers (skull-strip; test_cli has 2D, 4D, zero spacing, absurd size, singular
// matrix, RGB datatype, constant, NaN, gzip damage).
void nifti_cases(std::vector<Case>& cases) {
  cases.push_back(header_case("sizeof_hdr 0", "not a NIfTI-1", [](std::string& b) { poke<std::int32_t>(b, 0, 0); }));
  cases.push_back(
      header_case("sizeof_hdr 540 (NIfTI-2)", "NIfTI-2", [](std::string& b) { poke<std::int32_t>(b, 0, 540); }));
  cases.push_back(
      header_case("magic ni1 (hdr/img pair)", ".hdr/.img", [](std::string& b) { std::memcpy(&b[344], "ni1\0", 4); }));
  cases.push_back(
      header_case("vox_offset beyond the file", "truncated", [](std::string& b) { poke<float>(b, 108, 1e6f); }));
  cases.push_back(
      header_case("vox_offset 1e20", "invalid vox_offset", [](std::string& b) { poke<float>(b, 108, 1e20f); }));
  cases.push_back(
      header_case("bitpix does not match datatype", "bitpix", [](std::string& b) { poke<std::int16_t>(b, 72, 16); }));
  cases.push_back(
      header_case("negative dim", "invalid size -5", [](std::string& b) { poke<std::int16_t>(b, 44, -5); }));
  cases.push_back(header_case("dim[0] 9", "dim[0]", [](std::string& b) { poke<std::int16_t>(b, 40, 9); }));
  cases.push_back(header_case("pixdim NaN", "spacing", [](std::string& b) { poke<float>(b, 80, std::nanf("")); }));
  cases.push_back(header_case("pixdim infinite", "spacing", [](std::string& b) { poke<float>(b, 88, INFINITY); }));
  cases.push_back(
      header_case("Inf voxel", "infinite", [](std::string& b) { poke<float>(b, 352 + 4 * 777, -INFINITY); }));
  cases.push_back(
      header_case("scl_inter infinite", "scl_inter", [](std::string& b) { poke<float>(b, 116, INFINITY); }));
  cases.push_back(
      header_case("sform with NaN", "non-finite", [](std::string& b) { poke<float>(b, 284, std::nanf("")); }));
  cases.push_back(header_case("qform only, quaternion not a rotation", "quaternion", [](std::string& b) {
    poke<std::int16_t>(b, 254, 0);  // sform_code 0: the qform decides
    poke<std::int16_t>(b, 252, 1);
    for (std::size_t o : {256, 260, 264}) poke<float>(b, o, 1.0f);
  }));
  cases.push_back(header_case("qform only, quaternion NaN", "non-finite", [](std::string& b) {
    poke<std::int16_t>(b, 254, 0);
    poke<std::int16_t>(b, 252, 1);
    poke<float>(b, 260, std::nanf(""));
  }));
  cases.push_back(
      {"nifti", "segment: T1 with an infinite voxel", "segment", 1, "infinite", Needs::Nothing, [](const Context& c) {
         Image im = blob();
         im.data[1234] = INFINITY;
         const std::string t1 = c.work + "/t1.nii.gz";
         write_image(t1, im, forced());
         write_mask(c.work + "/mask.nii.gz", blob_mask(), forced());
         return Invocation{testing::bin("segment") + " --t1 " + q(t1) + " --mask " + q(c.work + "/mask.nii.gz") +
                               " -o " + q(c.work),
                           t1, c.work};
       }});
  cases.push_back(
      {"nifti", "cortex-map: truncated dseg", "cortex-map", 1, "truncated", Needs::Fixture, [](const Context& c) {
         const std::string dseg = c.work + "/dseg.nii.gz";
         const std::string bytes = slurp(c.fx->dir + "/dseg.nii.gz");
         put(dseg, bytes.substr(0, bytes.size() / 2));
         auto inv = cortex_map_with(c, c.fx->dir + "/brain_mask.nii.gz", c.fx->dir + "/head_mask.nii.gz", dseg);
         inv.named = dseg;
         return inv;
       }});
}

// DICOM folders (copies of Philips slices).
void dicom_cases(std::vector<Case>& cases) {
  cases.push_back(
      {"dicom", "two series in one folder", "skull-strip", 1, "--series", Needs::SharedData, [](const Context& c) {
         const std::string dir = copy_slices(c, "mixed", 81, 100);
         for (int n = 91; n <= 100; ++n) change_series_uid(dir + "/" + dicom_name(n));
         return skull_strip_on(c, dir);
       }});
  cases.push_back(
      {"dicom", "--series that is not in the folder", "skull-strip", 1, "no series", Needs::SharedData,
       [](const Context& c) { return skull_strip_on(c, copy_slices(c, "one", 81, 90), " --series 1.2.3.4.5"); }});
  cases.push_back(
      {"dicom", "missing slice (gap)", "skull-strip", 1, "missing slices", Needs::SharedData, [](const Context& c) {
         const std::string dir = copy_slices(c, "gap", 81, 100);
         fs::remove(dir + "/" + dicom_name(90));
         fs::remove(dir + "/" + dicom_name(91));
         return skull_strip_on(c, dir);
       }});
  cases.push_back({"dicom", "single slice", "skull-strip", 1, "single slice", Needs::SharedData,
                   [](const Context& c) { return skull_strip_on(c, copy_slices(c, "single", 85, 85)); }});
  // One file that says it holds 170 frames (Number of Frames (0028,0008) inserted before Rows
  // (0028,0010), explicit VR little endian): an enhanced multi-frame image is refused as such.
  cases.push_back(
      {"dicom", "enhanced multi-frame file", "skull-strip", 1, "multi-frame", Needs::SharedData, [](const Context& c) {
         const std::string dir = copy_slices(c, "multiframe", 85, 85);
         const std::string file = dir + "/" + dicom_name(85);
         std::string b = slurp(file);
         const auto at = b.find(std::string("\x28\x00\x10\x00US", 6));
         REQUIRE(at != std::string::npos);
         b.insert(at, std::string("\x28\x00\x08\x00IS\x04\x00"
                                  "170 ",
                                  12));
         put(file, b);
         return skull_strip_on(c, dir);
       }});
  // Referenced SOP Instance UID's element number and VR overwritten with 0xff: Debian's GDCM aborts
  // on an assertion in its parser (found by the mutation test in test_io.cpp); the series is read in
  // a child process, so the tool reports it in one line.
  cases.push_back({"dicom", "a header GDCM's parser aborts on", "skull-strip", 1, "stopped on a malformed file",
                   Needs::SharedData, [](const Context& c) {
                     const std::string dir = copy_slices(c, "abort", 81, 90);
                     const std::string file = dir + "/" + dicom_name(86);
                     std::string b = slurp(file);
                     const auto at = b.find(std::string("\x08\x00\x55\x11UI", 6));
                     REQUIRE(at != std::string::npos);
                     b.replace(at + 2, 4, std::string(4, '\xff'));
                     put(file, b);
                     return skull_strip_on(c, dir);
                   }});
  // One slice turned (its Image Orientation's first component -0.0386 -> -0.1386): ITK builds the
  // volume from the first slice's geometry and would have stacked it silently.
  cases.push_back({"dicom", "one slice turned unlike the others", "skull-strip", 1,
                   "1301_0086.dcm is turned unlike the series' first slice", Needs::SharedData, [](const Context& c) {
                     const std::string dir = copy_slices(c, "turned", 81, 90);
                     const std::string file = dir + "/" + dicom_name(86);
                     std::string b = slurp(file);
                     const auto at = b.find(std::string("\x20\x00\x37\x00"
                                                        "DS",
                                                        6));
                     REQUIRE(at != std::string::npos);
                     REQUIRE(b.compare(at + 8, 4, "-0.0") == 0);
                     b[at + 11] = '1';
                     put(file, b);
                     return skull_strip_on(c, dir);
                   }});
  // The last slice cut short by a copy: inside its pixels (read before, the missing pixels as they
  // were), or before its DICOM mark (GDCM's scan skipped it: at the end of the stack no gap shows).
  cases.push_back({"dicom", "last slice cut short inside its pixels", "skull-strip", 1,
                   "1301_0090.dcm holds 100000 bytes", Needs::SharedData, [](const Context& c) {
                     const std::string dir = copy_slices(c, "cut-pixels", 81, 90);
                     fs::resize_file(dir + "/" + dicom_name(90), 100000);
                     return skull_strip_on(c, dir);
                   }});
  cases.push_back({"dicom", "last slice cut to 100 bytes", "skull-strip", 1, "1301_0090.dcm is not part of the series",
                   Needs::SharedData, [](const Context& c) {
                     const std::string dir = copy_slices(c, "cut-header", 81, 90);
                     fs::resize_file(dir + "/" + dicom_name(90), 100);
                     return skull_strip_on(c, dir);
                   }});
  cases.push_back({"dicom", "segment: DICOM T1 with a missing slice", "segment", 1, "missing slices", Needs::SharedData,
                   [](const Context& c) {
                     const std::string dir = copy_slices(c, "gap", 81, 100);
                     fs::remove(dir + "/" + dicom_name(95));
                     write_mask(c.work + "/mask.nii.gz", blob_mask(), forced());
                     return Invocation{testing::bin("segment") + " --t1 " + q(dir) + " --mask " +
                                           q(c.work + "/mask.nii.gz") + " -o " + q(c.work),
                                       dir, c.work};
                   }});
}

// grids that do not match (inputs from different heads).
void grid_cases(std::vector<Case>& cases) {
  cases.push_back({"grids", "segment: brain mask of another grid", "segment", 1, "not on the grid", Needs::Fixture,
                   [](const Context& c) {
                     const std::string mask = moved_copy(c, "brain_mask.nii.gz", c.work + "/mask.nii.gz", 30.0);
                     return Invocation{testing::bin("segment") + " --t1 " + q(c.fx->dir + "/t1w_biascorr.nii.gz") +
                                           " --mask " + q(mask) + " -o " + q(c.work),
                                       mask, c.work};
                   }});
  cases.push_back({"grids", "cortex-map: head mask of another head", "cortex-map", 1, "not on the grid", Needs::Fixture,
                   [](const Context& c) {
                     const std::string head = c.work + "/head.nii.gz";
                     write_mask(head, blob_mask(), forced());
                     auto inv = cortex_map_with(c, c.fx->dir + "/brain_mask.nii.gz", head, c.fx->dir + "/dseg.nii.gz");
                     inv.named = head;
                     return inv;
                   }});
  cases.push_back({"grids", "cortex-map: dseg of another grid", "cortex-map", 1, "not on the grid", Needs::Fixture,
                   [](const Context& c) {
                     const std::string dseg = moved_copy(c, "dseg.nii.gz", c.work + "/dseg.nii.gz", -12.0);
                     auto inv =
                         cortex_map_with(c, c.fx->dir + "/brain_mask.nii.gz", c.fx->dir + "/head_mask.nii.gz", dseg);
                     inv.named = dseg;
                     return inv;
                   }});
  cases.push_back({"grids", "cortex-map: dseg without grey matter", "cortex-map", 1, "no grey matter", Needs::Fixture,
                   [](const Context& c) {
                     ReadOptions ro;
                     ro.refuse_constant = false;
                     Image d = read_image(c.fx->dir + "/dseg.nii.gz", ro);
                     for (auto& v : d.data)
                       if (v == 2.0f) v = 1.0f;
                     const std::string dseg = c.work + "/dseg.nii.gz";
                     WriteOptions wo = forced();
                     wo.type = DiskType::UInt8;
                     write_image(dseg, d, wo);
                     auto inv =
                         cortex_map_with(c, c.fx->dir + "/brain_mask.nii.gz", c.fx->dir + "/head_mask.nii.gz", dseg);
                     inv.named = dseg;
                     return inv;
                   }});
  cases.push_back({"grids", "cortex-map: atlas folder without the atlases", "cortex-map", 1, "does not exist",
                   Needs::Fixture, [](const Context& c) {
                     fs::create_directories(c.work + "/atlases");
                     auto inv = cortex_map_with(c, c.fx->dir + "/brain_mask.nii.gz", c.fx->dir + "/head_mask.nii.gz",
                                                c.fx->dir + "/dseg.nii.gz", " --atlas-dir " + q(c.work + "/atlases"));
                     inv.named = c.work + "/atlases/brodmann.nii.gz";
                     return inv;
                   }});
  cases.push_back({"grids", "target-pick: dseg of another grid in the folder", "target-pick", 1, "not on the grid",
                   Needs::Fixture, [](const Context& c) {
                     const std::string dir = subject_copy(c);
                     moved_copy(c, "dseg.nii.gz", dir + "/dseg.nii.gz", 8.0);
                     return pick_in(dir, dir + "/dseg.nii.gz");
                   }});
  cases.push_back({"grids", "target-pick: probseg_gm of another grid in the folder", "target-pick", 1,
                   "not on the grid", Needs::Fixture, [](const Context& c) {
                     const std::string dir = subject_copy(c);
                     moved_copy(c, "probseg_gm.nii.gz", dir + "/probseg_gm.nii.gz", 8.0);
                     return pick_in(dir, dir + "/probseg_gm.nii.gz");
                   }});
  cases.push_back({"grids", "target-pick: probseg_gm is not a fraction", "target-pick", 1, "not within 0..1",
                   Needs::Fixture, [](const Context& c) {
                     const std::string dir = subject_copy(c);
                     Image p = read_image(c.fx->dir + "/probseg_gm.nii.gz");
                     p.data[p.data.size() / 2] = 1.7f;
                     fs::remove(dir + "/probseg_gm.nii.gz");
                     write_image(dir + "/probseg_gm.nii.gz", p, forced());
                     return pick_in(dir, dir + "/probseg_gm.nii.gz");
                   }});
  cases.push_back({"grids", "target-pick: a transform is missing", "target-pick", 1, "does not exist", Needs::Fixture,
                   [](const Context& c) {
                     const std::string dir = subject_copy(c);
                     fs::remove(dir + "/from_mni_warp.nii.gz");
                     return pick_in(dir, dir + "/from_mni_warp.nii.gz");
                   }});
  cases.push_back({"grids", "target-pick: transform file is not an ITK transform", "target-pick", 1, "ITK transform",
                   Needs::Fixture, [](const Context& c) {
                     const std::string dir = subject_copy(c);
                     put(dir + "/to_mni_affine.txt", "0 0 0\n");
                     return pick_in(dir, dir + "/to_mni_affine.txt");
                   }});
  cases.push_back({"grids", "protocol-export: head mask of another head", "protocol-export", 1, "not on the grid",
                   Needs::Fixture, [](const Context& c) {
                     const std::string head = c.work + "/head.nii.gz";
                     write_mask(head, blob_mask(), forced());
                     auto inv = export_with_targets(c, c.fx->dir + "/targets.json");
                     inv.command += " --head-mask " + q(head);
                     inv.named = head;
                     return inv;
                   }});
  cases.push_back({"grids", "protocol-export: T1 of another head", "protocol-export", 1, "not the reference T1",
                   Needs::Fixture, [](const Context& c) {
                     const std::string t1 = write_blob(c.work + "/other_t1.nii.gz");
                     fs::create_directories(c.work + "/out");
                     return Invocation{testing::bin("protocol-export") + " --targets " +
                                           q(c.fx->dir + "/targets.json") + " --t1 " + q(t1) +
                                           " --protocol passard2007 -o " + q(c.work + "/out"),
                                       t1, c.work};
                   }});
}

// JSON: the target library (target-pick --library), targets.json and protocols
// (protocol-export). test_plan.cpp has missing/wrong-type/schema/mirrored/NaN/unit targets.json.
void json_cases(std::vector<Case>& cases) {
  const auto library_case = [&cases](const std::string& name, const std::string& expect,
                                     std::function<void(json&)> change) {
    cases.push_back(
        {"json", "target-pick library: " + name, "target-pick", 1, expect, Needs::Fixture, [change](const Context& c) {
           const std::string lib = library_variant(c, change);
           return pick_in(c.fx->dir, lib, " --library " + q(lib) + " -o " + q(c.work + "/targets.json"), c.work);
         }});
  };
  cases.push_back({"json", "target-pick library: not JSON", "target-pick", 1, "not valid JSON", Needs::Fixture,
                   [](const Context& c) {
                     put(c.work + "/library.json", "{\"schema\": \"tmsplan-target-library/1\", \"targets\": [");
                     return pick_in(c.fx->dir, c.work + "/library.json",
                                    " --library " + q(c.work + "/library.json") + " -o " + q(c.work + "/targets.json"),
                                    c.work);
                   }});
  library_case("unknown schema", "schema", [](json& d) { d["schema"] = "tmsplan-target-library/7"; });
  library_case("missing name", "missing field 'name'", [](json& d) { d["targets"][0].erase("name"); });
  library_case("mni of the wrong type", "three numbers", [](json& d) { d["targets"][0]["mni"] = "-37,-21,58"; });
  library_case("mni out of range", "out of range", [](json& d) { d["targets"][0]["mni"] = {-37, -21, 580}; });
  library_case("targets not an array", "targets", [](json& d) { d["targets"] = {{"name", "x"}}; });
  library_case("atlas_label of the wrong type", "atlas_label",
               [](json& d) { d["targets"][0]["atlas_label"]["brodmann"] = "four"; });
  library_case("eeg without positions_mni", "positions_mni", [](json& d) { d["eeg"].erase("positions_mni"); });
  cases.push_back({"json", "target-pick: unknown library target", "target-pick", 1, "unknown target", Needs::Fixture,
                   [](const Context& c) {
                     return Invocation{testing::bin("target-pick") + " -s " + q(c.fx->dir) + " --target M1_foot -o " +
                                           q(c.work + "/targets.json"),
                                       "M1_foot", c.work};
                   }});

  const auto targets_case = [&cases](const std::string& name, const std::string& expect,
                                     std::function<void(json&)> change) {
    cases.push_back(
        {"json", "targets.json: " + name, "protocol-export", 1, expect, Needs::Fixture,
         [change, name](const Context& c) { return export_with_targets(c, targets_variant(c, "targets", change)); }});
  };
  targets_case("top level is an array", "must be a JSON object", [](json& d) { d = json::array({d}); });
  targets_case("no targets", "is empty", [](json& d) { d["targets"] = json::array(); });
  targets_case("depth out of range", "outside 0..100", [](json& d) { d["targets"][0]["scalp_to_cortex_mm"] = 250.0; });
  targets_case("hair offset out of range", "hair_offset_mm", [](json& d) { d["hair_offset_mm"] = 99; });
  targets_case("two targets with one name", "used by another target",
               [](json& d) { d["targets"][1]["name"] = d["targets"][0]["name"]; });
  targets_case("reference sha256 malformed", "reference_t1.sha256",
               [](json& d) { d["reference_t1"]["sha256"] = "abc"; });
  targets_case("dim of the wrong type", "reference_t1.dim", [](json& d) { d["reference_t1"]["dim"][2] = "91"; });
  targets_case("coil pose with a short row", "coil_pose_ras[1]", [](json& d) {
    d["targets"][0]["coil_pose_ras"][1] = {0, 1, 0};
  });
  targets_case("units not mm", "units", [](json& d) { d["units"] = "cm"; });
  cases.push_back({"json", "targets.json: --target not in the file", "protocol-export", 1, "not in the file",
                   Needs::Fixture, [](const Context& c) {
                     auto inv = export_with_targets(c, c.fx->dir + "/targets.json");
                     inv.command += " --target DLPFC_F3";
                     return inv;
                   }});

  const auto protocol_case = [&cases](const std::string& name, const std::string& expect, const std::string& from,
                                      const std::string& to) {
    cases.push_back({"json", "protocol: " + name, "protocol-export", 1, expect, Needs::Fixture,
                     [from, to](const Context& c) { return export_with_protocol(c, from, to); }});
  };
  protocol_case("not JSON", "JSON", "", "{\"schema_version\": 1, \"id\": ");
  protocol_case("frequency as a string", "frequency_hz", "\"frequency_hz\": 10", "\"frequency_hz\": \"10\"");
  protocol_case("trains missing", "trains", "\"trains\": 25,", "");
  protocol_case("unknown schema version", "schema_version", "\"schema_version\": 1", "\"schema_version\": 3");
  protocol_case("frequency out of range", "frequency_hz", "\"frequency_hz\": 10", "\"frequency_hz\": -5");
  protocol_case("sessions not an integer", "sessions", "\"sessions\": 10", "\"sessions\": 2.5");
  cases.push_back({"json", "protocol: unknown preset", "protocol-export", 1, "no protocol preset", Needs::Fixture,
                   [](const Context& c) {
                     fs::create_directories(c.work + "/out");
                     return Invocation{testing::bin("protocol-export") + " --targets " +
                                           q(c.fx->dir + "/targets.json") + " --t1 " + q(c.fx->t1) +
                                           " --protocol passard2077 -o " + q(c.work + "/out"),
                                       "passard2077", c.work};
                   }});
}

// output paths.
void output_cases(std::vector<Case>& cases) {
  cases.push_back({"outputs", "skull-strip: output folder under a file", "skull-strip", 1,
                   "output folder does not exist", Needs::Nothing, [](const Context& c) {
                     const std::string t1 = write_blob(c.work + "/t1.nii.gz");
                     put(c.work + "/notes.txt", "a file, not a folder\n");
                     const std::string out = c.work + "/notes.txt/sub";
                     return Invocation{testing::bin("skull-strip") + " " + q(t1) + " -o " + q(out), out, c.work};
                   }});
  // Refused whoever runs it (a read-only folder is no refusal for root, who writes anyway): an
  // output path taken by a folder, with --force.
  cases.push_back({"outputs", "skull-strip: an output path is a folder, with --force", "skull-strip", 1,
                   "output path is a folder", Needs::Nothing, [](const Context& c) {
                     const std::string t1 = write_blob(c.work + "/t1.nii.gz");
                     const std::string taken = c.work + "/out/brain_mask.nii.gz";
                     fs::create_directories(taken);
                     return Invocation{testing::bin("skull-strip") + " " + q(t1) + " --force -o " + q(c.work + "/out"),
                                       taken, c.work};
                   }});
  cases.push_back(
      {"outputs", "segment: earlier output exists", "segment", 1, "use --force", Needs::Fixture, [](const Context& c) {
         const std::string dir = c.work + "/subject";
         link_all(c.fx->dir, dir, {".stamp"});
         return Invocation{testing::bin("segment") + " --t1 " + q(dir + "/t1w_biascorr.nii.gz") + " --mask " +
                               q(dir + "/brain_mask.nii.gz") + " -o " + q(dir),
                           dir + "/dseg.nii.gz", dir};
       }});
  cases.push_back({"outputs", "cortex-map: missing parent folder", "cortex-map", 1, "output folder does not exist",
                   Needs::Fixture, [](const Context& c) {
                     const std::string out = c.work + "/missing/deeper";
                     return Invocation{testing::bin("cortex-map") + " --t1 " + q(c.fx->dir + "/t1w_biascorr.nii.gz") +
                                           " --brain " + q(c.fx->dir + "/brain_mask.nii.gz") + " --head " +
                                           q(c.fx->dir + "/head_mask.nii.gz") + " -o " + q(out),
                                       out, c.work};
                   }});
  cases.push_back({"outputs", "target-pick: missing parent folder of -o", "target-pick", 1,
                   "output folder does not exist", Needs::Fixture, [](const Context& c) {
                     const std::string out = c.work + "/missing/targets.json";
                     return pick_in(c.fx->dir, c.work + "/missing", " -o " + q(out), c.work);
                   }});
  cases.push_back({"outputs", "protocol-export: output folder is a file", "protocol-export", 1,
                   "output folder does not exist", Needs::Fixture, [](const Context& c) {
                     put(c.work + "/out", "a file\n");
                     return Invocation{testing::bin("protocol-export") + " --targets " +
                                           q(c.fx->dir + "/targets.json") + " --t1 " + q(c.fx->t1) +
                                           " --protocol passard2007 -o " + q(c.work + "/out"),
                                       c.work + "/out", c.work};
                   }});
  cases.push_back({"outputs", "protocol-export: plan is a file", "protocol-export", 1, "not a folder", Needs::Fixture,
                   [](const Context& c) {
                     put(c.work + "/plan", "a file\n");
                     return Invocation{testing::bin("protocol-export") + " --targets " +
                                           q(c.fx->dir + "/targets.json") + " --t1 " + q(c.fx->t1) +
                                           " --protocol passard2007 -o " + q(c.work),
                                       c.work + "/plan", c.work};
                   }});
}

// usage errors: exit 2, the line names the option.
void usage_cases(std::vector<Case>& cases) {
  const auto usage_case = [&cases](const std::string& tool, const std::string& name, const std::string& option,
                                   std::string args) {
    cases.push_back(
        {"usage", tool + ": " + name, tool, 2, option, Needs::Nothing, [tool, option, args](const Context& c) {
           write_blob(c.work + "/t1.nii.gz");
           std::string a = args;
           for (std::size_t at; (at = a.find("{W}")) != std::string::npos;) a.replace(at, 3, c.work);
           return Invocation{testing::bin(tool) + " " + a, option, c.work};
         }});
  };
  usage_case("segment", "--mrf-beta out of range", "--mrf-beta",
             "--t1 {W}/t1.nii.gz --mask {W}/t1.nii.gz -o {W} --mrf-beta 50");
  usage_case("segment", "--mask missing", "--mask", "--t1 {W}/t1.nii.gz -o {W}");
  usage_case("cortex-map", "--iterations out of range", "--iterations",
             "--t1 {W}/t1.nii.gz --brain {W}/t1.nii.gz --head {W}/t1.nii.gz -o {W} --iterations 5000 10 10");
  usage_case("target-pick", "no target", "--target", "-s {W}");
  usage_case("target-pick", "--mni with two numbers", "--mni", "-s {W} --mni 1,2");
  usage_case("target-pick", "--snap not crown or nearest", "--snap", "-s {W} --target M1_hand_left --snap crest");
  usage_case("protocol-export", "--rmt 0", "--rmt",
             "--targets {W}/t.json --t1 {W}/t1.nii.gz --protocol passard2007 -o {W} --rmt 0");
  usage_case("protocol-export", "--protocol missing", "--protocol", "--targets {W}/t.json --t1 {W}/t1.nii.gz -o {W}");
}

std::vector<Case> catalogue() {
  std::vector<Case> cases;
  nifti_cases(cases);
  dicom_cases(cases);
  grid_cases(cases);
  json_cases(cases);
  output_cases(cases);
  usage_cases(cases);
  return cases;
}

void run_group(const std::string& group) {
  const auto cases = catalogue();
  const std::string base = testing::temp_dir("reliability-" + group);
  // A group with a case whose data is absent skips as a whole (exit 77, "Skipped" in ctest): a
  // skip inside one section would end the process before the other sections ran.
  for (const auto& c : cases) {
    if (c.group != group) continue;
    if (c.needs == Needs::Fixture && !fixture())
      testing::skip("group " + group + ": case '" + c.name + "' needs the samples (run make-samples)");
    if (c.needs == Needs::SharedData && testing::shared_data().empty())
      testing::skip("group " + group + ": case '" + c.name + "' needs ../shared/data (set TMSPLAN_SHARED_DATA)");
  }
  std::size_t n = 0, ran = 0;
  for (const auto& c : cases) {
    if (c.group != group) continue;
    ++n;
    DYNAMIC_SECTION(c.name) {
      Context ctx;
      ctx.work = base + "/" + std::to_string(n);
      fs::create_directories(ctx.work);
      if (c.needs == Needs::Fixture) {
        ctx.fx = fixture();
        REQUIRE(ctx.fx);  // checked before the loop
      }
      if (c.needs == Needs::SharedData) {
        ctx.dicom = testing::shared_data() + "/philips-mprage/dicom";
      }
      const Invocation inv = c.make(ctx);
      const auto before = snapshot(inv.watch);
      const auto r = testing::run(inv.command);
      ++ran;
      INFO("command: " << inv.command);
      INFO("stderr: " << r.err);
      CHECK(r.exit_code == c.exit_code);
      CHECK(r.err.rfind(c.tool + ": error: ", 0) == 0);
      CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
      std::string message = r.err;  // without the paths, so `expect` cannot match a file name
      const bool named_is_path = contains(inv.named, "/");
      for (const std::string& p : {named_is_path ? inv.named : "", ctx.work, ctx.fx ? ctx.fx->dir : std::string()})
        for (std::size_t at; !p.empty() && (at = message.find(p)) != std::string::npos;) message.erase(at, p.size());
      CHECK(contains(message, c.expect));
      CHECK(contains(r.err, inv.named));
      CHECK(r.out.empty());
      const auto after = snapshot(inv.watch);
      INFO("folder changes:" << describe_diff(before, after));
      CHECK(after == before);
    }
  }
  CHECK(n > 0);
}

}  // namespace

TEST_CASE("reliability: broken NIfTI headers through the tools", "[reliability]") { run_group("nifti"); }

TEST_CASE("reliability: DICOM folders with mixed series or missing slices", "[reliability]") { run_group("dicom"); }

TEST_CASE("reliability: inputs on grids that do not match, from other heads", "[reliability]") { run_group("grids"); }

TEST_CASE("reliability: malformed target library, targets.json and protocols", "[reliability]") { run_group("json"); }

TEST_CASE("reliability: output paths that cannot be written", "[reliability]") { run_group("outputs"); }

TEST_CASE("reliability: usage errors of every tool exit 2 naming the option", "[reliability]") { run_group("usage"); }

// target-pick reads skull_strip.json from the subject folder for the reference T1: a malformed one
// is named (it used to give nlohmann's parse message without the file).
TEST_CASE("reliability: target-pick names a malformed skull_strip.json in the subject folder", "[reliability]") {
  const Fixture* fx = fixture();
  if (!fx) {
    testing::skip("samples not generated (run make-samples)");
  }
  Context c;
  c.work = testing::temp_dir("reliability-known-gaps");
  c.fx = fx;
  const std::string dir = subject_copy(c);
  put(dir + "/skull_strip.json", "{\"inputs\": ");
  const auto before = snapshot(dir);
  const auto r = testing::run(pick_in(dir, "").command);
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(contains(r.err, dir + "/skull_strip.json"));
  CHECK(snapshot(dir) == before);
}

// ---- a failed run removes what it had written ------------------------------------------------------

TEST_CASE("reliability: a tool run that fails after writing some outputs leaves none of them", "[reliability]") {
  const std::string dir = testing::temp_dir("reliability-late-failure");
  put(dir + "/earlier.txt", "from an earlier step\n");
  std::vector<std::string> args = {"probe", "--quiet"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  {
    cli::Tool tool("probe", "test");
    const int code = tool.run(int(argv.size()), argv.data(), [&] {
      write_file_atomic(dir + "/a.txt", "a", false);
      write_file_atomic(dir + "/b.txt", "b", false);
      throw Error("late failure", dir + "/c.txt");
    });
    CHECK(code == 1);
  }
  CHECK(testing::list_files(dir) == "earlier.txt ");
  {
    cli::Tool tool("probe", "test");
    const int code = tool.run(int(argv.size()), argv.data(), [&] { write_file_atomic(dir + "/a.txt", "a", false); });
    CHECK(code == 0);
  }
  CHECK(testing::list_files(dir) == "a.txt earlier.txt ");
  // Outside a tool run (library use) nothing is tracked or removed.
  write_file_atomic(dir + "/lib.txt", "x", false);
  CHECK(fs::exists(dir + "/lib.txt"));
}

// ---- interrupted runs ------------------------------------------------------------------------------

namespace {

struct Child {
  pid_t pid = -1;
  std::string err_path;
  int code = -1;  // like testing::run: exit code, or 128 + signal
  bool done = false;
};

Child spawn(const std::string& command_line, const std::string& err_path) {
  Child c;
  c.err_path = err_path;
  const std::string cmd = "exec " + command_line;  // the shell becomes the tool: signals reach it
  c.pid = ::fork();
  if (c.pid == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(err, 2);
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  REQUIRE(c.pid > 0);
  return c;
}

bool poll_exit(Child& c, bool block) {
  if (c.done) return true;
  int status = 0;
  const pid_t r = ::waitpid(c.pid, &status, block ? 0 : WNOHANG);
  if (r != c.pid) return false;
  c.done = true;
  c.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

bool is_temp(const std::string& rel) {
  const std::string name = fs::path(rel).filename().string();
  return !name.empty() && name[0] == '.' && name != ".stamp";
}

// Starts `command` on `dir`, sends `sig` once `ready` says so, and checks: the run ends non-zero,
// no temp file is left, none of its outputs is left, and the files that were there are unchanged
// (all of them when the signal came before the run committed anything).
// Returns false when the run finished before `ready` said so (then it must have succeeded).
bool interrupt_once(const std::string& name, const std::string& command, const std::string& dir, int sig,
                    const std::function<bool(double elapsed)>& ready, double speed) {
  const auto before = snapshot(dir);
  Child child = spawn(command, dir + "/../" + name + ".err");
  const auto t0 = std::chrono::steady_clock::now();
  bool sent = false, touched_before_signal = false;
  while (!poll_exit(child, false)) {
    if (ready(speed * seconds_since(t0))) {
      touched_before_signal = snapshot(dir) != before;
      ::kill(child.pid, sig);
      sent = true;
      break;
    }
    if (seconds_since(t0) > 300) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (sent) poll_exit(child, true);
  if (!child.done) {
    ::kill(child.pid, SIGKILL);
    poll_exit(child, true);
    FAIL(name << ": neither finished nor became ready in 300 s");
  }
  const std::string err = slurp(child.err_path);
  INFO(name << ": " << command << "\nstderr: " << err);
  if (!sent) {
    CHECK(child.code == 0);
    return false;
  }
  CHECK(child.code != 0);
  const auto after = snapshot(dir);
  INFO("folder changes:" << describe_diff(before, after));
  for (const auto& [rel, id] : after) {
    INFO(rel);
    CHECK(!is_temp(rel));
    CHECK(before.count(rel) == 1);  // nothing new: no partial output
    if (before.count(rel)) CHECK(before.at(rel) == id);
  }
  if (!touched_before_signal) CHECK(after == before);
  return true;
}

// interrupt_once on a folder made afresh by `prepare`; when the run finishes before the signal
// (a machine faster than the recorded wall time), again with the signal 4 and then 16 times
// earlier, and a failure if even then it was never interrupted.
void interrupt(const std::string& name, const std::string& command, const std::string& dir, int sig,
               const std::function<void()>& prepare, const std::function<bool(double elapsed)>& ready) {
  for (double speed : {1.0, 4.0, 16.0}) {
    fs::remove_all(dir);
    prepare();
    if (interrupt_once(name, command, dir, sig, ready, speed)) return;
    WARN(name << ": the run finished before the signal; again with the signal " << speed * 4 << " times earlier");
  }
  FAIL(name << ": the run finished before the signal in every attempt; the interrupt was not tested");
}

}  // namespace

TEST_CASE("reliability: interrupted runs leave no temp files, no partial outputs, earlier files unchanged",
          "[reliability]") {
  const Fixture* fx = fixture();
  if (!fx) {
    testing::skip("samples not generated (run make-samples)");
  }
  const std::string base = testing::temp_dir("reliability-interrupt");
  const auto after_fraction = [](double wall, double fraction) {
    return [=](double elapsed) { return elapsed >= std::max(0.3, fraction * wall); };
  };
  SECTION("skull-strip --force over an earlier set, SIGTERM while computing") {
    const std::string dir = base + "/skull-strip";
    interrupt(
        "skull-strip", step_command("skull-strip", fx->t1, dir, dir, 2) + " --force", dir, SIGTERM,
        [&] { link_all(fx->dir, dir, {".stamp"}); }, after_fraction(fx->wall("skull_strip.json"), 0.3));
  }
  SECTION("segment, SIGTERM half-way") {
    const std::string dir = base + "/segment";
    interrupt(
        "segment", step_command("segment", fx->t1, dir, dir, 2), dir, SIGTERM,
        [&] {
          link_all(fx->dir, dir,
                   {".stamp", "dseg.nii.gz", "probseg_csf.nii.gz", "probseg_gm.nii.gz", "probseg_wm.nii.gz",
                    "segment.json", "segment_qc.png"});
        },
        after_fraction(fx->wall("segment.json"), 0.5));
  }
  SECTION("cortex-map, SIGINT after its first outputs are written") {
    const std::string dir = base + "/cortex-map";
    double first_seen = -1;
    const auto prepare = [&] {
      first_seen = -1;
      fs::create_directories(dir);
      for (const char* f : {"t1w_biascorr.nii.gz", "brain_mask.nii.gz", "head_mask.nii.gz", "dseg.nii.gz",
                            "skull_strip.json", "segment.json"})
        fs::create_hard_link(fx->dir + "/" + f, dir + "/" + f);
    };
    interrupt("cortex-map", step_command("cortex-map", fx->t1, dir, dir, 2), dir, SIGINT, prepare, [&](double elapsed) {
      if (first_seen < 0 && fs::exists(dir + "/to_mni_affine.txt")) first_seen = elapsed;
      return first_seen >= 0 && elapsed > first_seen + 0.3;
    });
  }
  SECTION("target-pick, SIGINT half-way") {
    const std::string dir = base + "/target-pick";
    interrupt(
        "target-pick", step_command("target-pick", fx->t1, dir, dir, 2), dir, SIGINT,
        [&] {
          link_all(fx->dir, dir, {".stamp", "targets.json", "target_pick.json", "target_pick_qc.png"});
        },
        after_fraction(fx->wall("target_pick.json"), 0.5));
  }
  SECTION("protocol-export, SIGTERM late in the run") {
    const std::string dir = base + "/protocol-export";
    interrupt(
        "protocol-export", step_command("protocol-export", fx->t1, dir, dir, 2), dir, SIGTERM,
        [&] { link_all(fx->dir, dir, {".stamp"}); }, after_fraction(fx->wall("plan/protocol_export.json"), 0.7));
  }
}

// ---- concurrency and determinism ---------------------------------------------------------------------

namespace {

// JSON without the provenance that differs between runs (time, thread count, command line).
void strip_provenance(json& j) {
  if (j.is_object()) {
    for (const char* key : {"time", "finished_utc", "wall_seconds", "peak_memory_mib", "threads", "seconds",
                            "generated_utc", "command_line"})
      j.erase(key);
    for (auto& [k, v] : j.items()) strip_provenance(v);
  } else if (j.is_array()) {
    for (auto& v : j) strip_provenance(v);
  }
}

// JSON and HTML without provenance, with the run folders, timestamps, thread counts and the
// hashes of the runs' own files (`marks`: sha256 -> name) made neutral.
std::string normalized(const std::string& path, const std::vector<std::pair<std::string, std::string>>& marks,
                       const std::vector<std::string>& folders) {
  std::string text = slurp(path);
  if (fs::path(path).extension() == ".json") {
    json j = json::parse(text);
    strip_provenance(j);
    text = j.dump(1);
  }
  for (const auto& [sha, mark] : marks)
    for (std::size_t at; (at = text.find(sha)) != std::string::npos;) text.replace(at, sha.size(), mark);
  for (const auto& f : folders)
    for (std::size_t at; (at = text.find(f)) != std::string::npos;) text.replace(at, f.size(), "<DIR>");
  text = std::regex_replace(text, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"), "<TIME>");
  text = std::regex_replace(text, std::regex(R"(--threads \d+)"), "--threads N");
  return text;
}

// Every file of `run` (recursive) matches the same file of `reference`: volumes, surfaces,
// pictures and navigator files byte for byte, JSON and HTML after normalized().
void check_same_outputs(const std::string& reference, const std::string& run, const std::vector<std::string>& folders) {
  std::vector<std::string> rels;
  for (const auto& e : fs::recursive_directory_iterator(run))
    if (e.is_regular_file()) rels.push_back(fs::relative(e.path(), run).string());
  std::sort(rels.begin(), rels.end());
  REQUIRE(!rels.empty());
  std::map<std::string, std::pair<std::string, std::string>> sha;  // rel -> (run, reference)
  std::vector<std::pair<std::string, std::string>> marks;
  for (const auto& rel : rels) {
    INFO(rel);
    CHECK(!is_temp(rel));
    REQUIRE(fs::exists(reference + "/" + rel));
    sha[rel] = {sha256_file(run + "/" + rel), sha256_file(reference + "/" + rel)};
    marks.emplace_back(sha[rel].first, "<sha256 of " + rel + ">");
    marks.emplace_back(sha[rel].second, "<sha256 of " + rel + ">");
  }
  for (const auto& rel : rels) {
    INFO(rel);
    const std::string ext = fs::path(rel).extension().string();
    if (ext == ".json" || ext == ".html")
      CHECK(normalized(run + "/" + rel, marks, folders) == normalized(reference + "/" + rel, marks, folders));
    else
      CHECK(sha[rel].first == sha[rel].second);
  }
}

const std::vector<std::string> kSkullStripOutputs = {"t1w_biascorr.nii.gz", "brain_mask.nii.gz", "head_mask.nii.gz",
                                                     "skull_strip_qc.png", "skull_strip.json"};

// A folder holding one complete skull-strip set: the lone run's bytes, and a record whose output
// hashes are the files present (not a mixture of two runs).
void check_one_complete_set(const Fixture& fx, const std::string& dir) {
  std::vector<std::string> sorted = kSkullStripOutputs;
  std::sort(sorted.begin(), sorted.end());
  std::string expect;
  for (const auto& n : sorted) expect += n + " ";
  CHECK(testing::list_files(dir) == expect);
  check_same_outputs(fx.dir, dir, {fx.dir, dir});
  const json record = json::parse(slurp(dir + "/skull_strip.json"));
  for (const auto& [role, out] : record["outputs"].items()) {
    INFO(role);
    CHECK(out["sha256"] == sha256_file(out["path"].get<std::string>()));
  }
}

// Two runs raced into one folder without --force: one finished, the other refused in one error
// line (its temp files are gone: the folder checks that follow see none).
void check_one_refused(const Child& a, const Child& b) {
  const std::string err = slurp(a.err_path) + slurp(b.err_path);
  INFO(err);
  CHECK(((a.code == 0 && b.code == 1) || (a.code == 1 && b.code == 0)));
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK((contains(err, "another run") || contains(err, "use --force")));
}

}  // namespace

TEST_CASE("reliability: concurrent runs give the lone run's bytes or one refuses, never a mixture", "[reliability]") {
  const Fixture* fx = fixture();
  if (!fx) {
    testing::skip("samples not generated (run make-samples)");
  }
  const std::string base = testing::temp_dir("reliability-concurrent");
  const auto cmd = [&](const std::string& out) { return step_command("skull-strip", fx->t1, "", out, 1); };
  const auto both = [&](const std::string& a_dir, const std::string& b_dir, const std::string& extra) {
    Child a = spawn(cmd(a_dir) + extra, base + "/a.err"), b = spawn(cmd(b_dir) + extra, base + "/b.err");
    poll_exit(a, true);
    poll_exit(b, true);
    return std::make_pair(a, b);
  };
  SECTION("two runs into two folders") {
    fs::create_directories(base + "/one");
    fs::create_directories(base + "/two");
    const auto [a, b] = both(base + "/one", base + "/two", "");
    INFO(slurp(a.err_path) << slurp(b.err_path));
    REQUIRE(a.code == 0);
    REQUIRE(b.code == 0);
    check_one_complete_set(*fx, base + "/one");
    check_one_complete_set(*fx, base + "/two");
  }
  SECTION("two runs into one folder") {
    const std::string dir = base + "/same";
    fs::create_directories(dir);
    const auto [a, b] = both(dir, dir, "");
    check_one_refused(a, b);  // without --force the second to commit refuses
    check_one_complete_set(*fx, dir);
  }
  SECTION("two runs into one folder with --force") {
    const std::string dir = base + "/forced";
    fs::create_directories(dir);
    const auto [a, b] = both(dir, dir, " --force");
    INFO(slurp(a.err_path) << slurp(b.err_path));
    CHECK((a.code == 0 || b.code == 0));
    check_one_complete_set(*fx, dir);
  }
}

TEST_CASE("reliability: two cortex-map runs into one folder: one writes every output, the other nothing",
          "[reliability]") {
  // cortex-map writes its outputs in parallel tasks; the first output is committed alone before
  // them, so a race has one winner (in parallel, each run could win one file and both refuse).
  const Fixture* fx = fixture();
  if (!fx) {
    testing::skip("samples not generated (run make-samples)");
  }
  const std::string base = testing::temp_dir("reliability-concurrent-cortexmap");
  const std::string dir = base + "/same";
  fs::create_directories(dir);
  const std::string cmd = step_command("cortex-map", fx->t1, fx->dir, dir, 1);
  Child a = spawn(cmd, base + "/a.err"), b = spawn(cmd, base + "/b.err");
  poll_exit(a, true);
  poll_exit(b, true);
  check_one_refused(a, b);
  const json record = json::parse(slurp(dir + "/cortex_map.json"));
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file() ? 1 : 0;
  CHECK(files == record["outputs"].size() + 1);  // + the record itself
  check_same_outputs(fx->dir, dir, {fx->dir, dir});
}

TEST_CASE("reliability: every tool gives the same bytes with --threads 1 and --threads 2", "[reliability]") {
  const Fixture* fx = fixture();
  if (!fx) {
    testing::skip("samples not generated (run make-samples)");
  }
  // skull-strip is covered in test_cli.cpp; the fixture ran with --threads 2.
  const std::string base = testing::temp_dir("reliability-determinism");
  for (const std::string step : {"segment", "cortex-map", "target-pick", "protocol-export"}) {
    DYNAMIC_SECTION(step) {
      const std::string out = base + "/" + step;
      fs::create_directories(out);
      const auto r = testing::run(step_command(step, fx->t1, fx->dir, out, 1));
      INFO(r.err);
      REQUIRE(r.exit_code == 0);
      check_same_outputs(fx->dir, out, {fx->dir, out});
    }
  }
}

// The options --help shows with a default ("--snap-radius FLOAT:FLOAT in [1 - 30]=10", "--iterations
// INT=[60,40,10] x 3"), as arguments that give each default explicitly. A vector default becomes
// its items.
std::vector<std::string> help_defaults(const std::string& help) {
  // The type part holds no run of two spaces (the description starts after one).
  static const std::regex line(R"(^\s+(?:-\w,)?(--[\w-]+) ((?:\S| (?! ))*?)=(\S+))");
  std::vector<std::string> args;
  std::istringstream in(help);
  for (std::string s; std::getline(in, s);) {
    std::smatch m;
    if (!std::regex_search(s, m, line)) continue;
    args.push_back(m[1]);
    const std::string value = m[3];
    if (value.size() > 1 && value.front() == '[' && value.back() == ']') {
      std::istringstream items(value.substr(1, value.size() - 2));
      for (std::string item; std::getline(items, item, ',');) args.push_back(item);
    } else {
      args.push_back(value);
    }
  }
  return args;
}

// Runs `cmd` (a call of `tool` into a folder where its outputs exist) with every default that the
// tool's --help shows: it must get past the options and refuse the outputs (exit 1), not exit 2.
// Returns how many options it gave.
std::size_t check_defaults_accepted(const std::string& tool, std::string cmd) {
  const auto help = testing::run(testing::bin(tool) + " --help");
  REQUIRE(help.exit_code == 0);
  std::size_t options = 0;
  for (const auto& a : help_defaults(help.out)) {
    cmd += " " + q(a);
    options += a.rfind("--", 0) == 0;
  }
  INFO(cmd);
  const auto r = testing::run(cmd);
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("output exists") != std::string::npos);
  return options;
}

TEST_CASE("reliability: every default --help shows is accepted when given explicitly", "[reliability]") {
  // cortex-map's --iterations still took two counts after a third level was added, so every call
  // that gave it failed. Each step runs with all its shown defaults into the fixture's folder.
  const Fixture* fx = fixture();
  if (!fx) {
    testing::skip("samples not generated (run make-samples)");
  }
  for (const auto& step : kSteps) {
    DYNAMIC_SECTION(step) {
      const std::size_t shown = check_defaults_accepted(step, step_command(step, fx->t1, fx->dir, fx->dir, 1));
      // A parser that finds no default would make this test pass vacuously: segment shows 7.
      if (step == "segment") CHECK(shown >= 7);
    }
  }
  SECTION("efield") {
    // efield's inputs are the fixture's; one of its outputs exists in a folder of links to them.
    const std::string dir = testing::temp_dir("reliability-efield-defaults");
    for (const auto& e : fs::directory_iterator(fx->dir))
      if (e.is_regular_file()) fs::create_symlink(e.path(), dir + "/" + e.path().filename().string());
    put(dir + "/targets_efield.json", "{}");
    CHECK(check_defaults_accepted("efield", testing::bin("efield") + " -s " + q(dir) + " --quiet") >= 11);
  }
}

TEST_CASE("reliability: plan-subject.sh refuses a bad option or name before any step runs", "[reliability]") {
  const std::string samples = testing::samples_dir();
  if (samples.empty()) {
    testing::skip("samples not generated (run make-samples)");
  }
  const std::string script = "TMSPLAN_BIN=" + std::string(TMSPLAN_BIN_DIR) + " " + std::string(TMSPLAN_SOURCE_DIR) +
                             "/scripts/plan-subject.sh " + samples + "/small-2mm.nii.gz ";
  for (const auto& [args, option] :
       std::vector<std::pair<std::string, std::string>>{{"--snap crest", "--snap"},
                                                        {"--efield-model fem", "--efield-model"},
                                                        {"--rmt 0", "--rmt"},
                                                        {"--rmt 45%", "--rmt"},
                                                        {"--target M1_hand_left --target M1_foot_left", "M1_foot_left"},
                                                        {"--protocol passard2099", "--protocol passard2099"},
                                                        {"--coil fig8-99", "--coil fig8-99"}}) {
    const std::string out = testing::temp_dir("reliability-plan-options");
    const auto r = testing::run(script + q(out) + " " + args);
    INFO(args << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(option) != std::string::npos);
    CHECK(testing::list_files(out).empty());  // skull-strip did not run
  }
}

TEST_CASE("reliability: the list flags print the names the data files hold and need no other option", "[reliability]") {
  for (const auto& [cmd, names] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"target-pick --list-targets", {"M1_hand_left", "M1_hand_right", "DLPFC_BA46", "DLPFC_BA9"}},
           {"protocol-export --list-protocols", {"passard2007", "lefaucheur2020_np_m1_hf"}},
           {"efield --list-coils", {"fig8-70"}}}) {
    const auto r = testing::run(testing::bin(cmd));
    INFO(cmd << ": " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    for (const auto& n : names) CHECK(("\n" + r.out).find("\n" + n + "\n") != std::string::npos);
  }
  // Another library: its names; a broken one: one error line naming it, exit 1.
  const std::string dir = testing::temp_dir("reliability-list-library");
  std::string lib = slurp(std::string(TMSPLAN_SOURCE_DIR) + "/data/targets.json");
  const auto at = lib.find("\"M1_hand_right\"");
  REQUIRE(at != std::string::npos);
  lib.replace(at, 15, "\"M1_hand_other\"");
  put(dir + "/targets.json", lib);
  auto r = testing::run(testing::bin("target-pick") + " --list-targets --library " + q(dir + "/targets.json"));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("M1_hand_other\n") != std::string::npos);
  CHECK(r.out.find("M1_hand_right\n") == std::string::npos);
  put(dir + "/broken.json", "{\"targets\": [");
  r = testing::run(testing::bin("target-pick") + " --library " + q(dir + "/broken.json") + " --list-targets");
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find("broken.json") != std::string::npos);
}
