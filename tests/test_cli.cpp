// The tool contract through real processes: exit codes, one error line naming the file, no
// output left behind, no overwriting without --force, determinism across thread counts.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "fixtures.hpp"
#include "support.hpp"
#include "tmsplan/files.hpp"
#include "tmsplan/image.hpp"

using namespace tmsplan;
namespace fs = std::filesystem;

namespace {

Image blob(std::int64_t n = 48) { return testing::blob(n); }

std::string write_nii(const std::string& path, const Image& im) {
  WriteOptions wo;
  wo.force = true;
  write_image(path, im, wo);
  return path;
}

template <class T> void poke(const std::string& path, std::size_t offset, T value) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(std::streamoff(offset));
  f.write(reinterpret_cast<const char*>(&value), sizeof(T));
}

void truncate_file(const std::string& path, double fraction) {
  const auto size = fs::file_size(path);
  fs::resize_file(path, std::uintmax_t(double(size) * fraction));
}

struct BadInput {
  std::string name;
  std::string expect;  // part of the error line
  std::function<std::string(const std::string& dir)> make;
};

std::vector<BadInput> bad_inputs() {
  return {
      {"missing file", "does not exist", [](const std::string& d) { return d + "/nothing.nii.gz"; }},
      {"text file", "not a NIfTI",
       [](const std::string& d) {
         std::ofstream(d + "/notes.nii") << std::string(1000, 'x');
         return d + "/notes.nii";
       }},
      {"truncated gzip", "truncated",
       [](const std::string& d) {
         const auto p = write_nii(d + "/t.nii.gz", blob());
         truncate_file(p, 0.5);
         return p;
       }},
      {"corrupt gzip", "corrupt",
       [](const std::string& d) {
         const auto p = write_nii(d + "/c.nii.gz", blob());
         std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
         f.seekp(std::streamoff(fs::file_size(p) / 2));
         f.write("garbage-garbage-garbage-garbage!", 32);
         return p;
       }},
      {"2D image", "2D image",
       [](const std::string& d) {
         const auto p = write_nii(d + "/s.nii", blob());
         poke<std::int16_t>(p, 40, 2);
         return p;
       }},
      {"4D image", "4D image",
       [](const std::string& d) {
         const auto p = write_nii(d + "/f.nii", blob());
         poke<std::int16_t>(p, 40, 4);
         poke<std::int16_t>(p, 48, 5);
         return p;
       }},
      {"zero spacing", "spacing",
       [](const std::string& d) {
         const auto p = write_nii(d + "/z.nii", blob());
         poke<float>(p, 84, 0.0f);
         return p;
       }},
      {"absurd size", "absurd size",
       [](const std::string& d) {
         const auto p = write_nii(d + "/a.nii", blob());
         for (std::size_t o : {42, 44, 46}) poke<std::int16_t>(p, o, 30000);
         return p;
       }},
      {"singular orientation", "not invertible",
       [](const std::string& d) {
         const auto p = write_nii(d + "/o.nii", blob());
         for (std::size_t o = 280; o < 328; o += 4) poke<float>(p, o, 0.0f);
         return p;
       }},
      {"unsupported datatype", "datatype",
       [](const std::string& d) {
         const auto p = write_nii(d + "/dt.nii", blob());
         poke<std::int16_t>(p, 70, 128);  // RGB
         return p;
       }},
      {"constant image", "same value",
       [](const std::string& d) {
         Image im = blob();
         std::fill(im.data.begin(), im.data.end(), 3.0f);
         return write_nii(d + "/k.nii.gz", im);
       }},
      {"NaN voxels", "NaN",
       [](const std::string& d) {
         Image im = blob();
         im.data[100] = std::nanf("");
         return write_nii(d + "/n.nii.gz", im);
       }},
      {"random noise", "head",
       [](const std::string& d) {
         Image im = blob(64);
         std::mt19937 rng(7);
         std::uniform_real_distribution<float> u(0.0f, 1000.0f);
         for (auto& v : im.data) v = u(rng);
         return write_nii(d + "/noise.nii.gz", im);
       }},
      {"empty folder", "no files",
       [](const std::string& d) {
         fs::create_directories(d + "/dicom-empty");
         return d + "/dicom-empty";
       }},
      {"folder of non-DICOM files", "DICOM",
       [](const std::string& d) {
         fs::create_directories(d + "/dicom-junk");
         std::ofstream(d + "/dicom-junk/a.dcm") << "not dicom";
         std::ofstream(d + "/dicom-junk/b.dcm") << "not dicom either";
         return d + "/dicom-junk";
       }},
  };
}

}  // namespace

TEST_CASE("skull-strip: every bad input ends with exit 1, one error line naming it, no output", "[cli]") {
  const std::string base = testing::temp_dir("cli-bad");
  const auto cases = bad_inputs();
  for (std::size_t n = 0; n < cases.size(); ++n) {
    const auto& c = cases[n];
    DYNAMIC_SECTION(c.name) {
      const std::string in_dir = base + "/in" + std::to_string(n), out_dir = base + "/out" + std::to_string(n);
      fs::create_directories(in_dir);
      fs::create_directories(out_dir);
      const std::string input = c.make(in_dir);
      const auto r = testing::run(testing::bin("skull-strip") + " '" + input + "' -o " + out_dir);
      CHECK(r.exit_code == 1);
      INFO("stderr: " << r.err);
      CHECK(r.err.rfind("skull-strip: error: ", 0) == 0);
      CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
      CHECK(r.err.find(c.expect) != std::string::npos);
      CHECK(r.err.find(input) != std::string::npos);
      CHECK(r.out.empty());
      CHECK(testing::list_files(out_dir).empty());
    }
  }
}

TEST_CASE("tools: usage errors exit 2, --help and --version exit 0 on stdout", "[cli]") {
  for (const std::string tool : {"skull-strip"}) {
    const auto bad = testing::run(testing::bin(tool) + " --no-such-option");
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find(tool + ": error:") != std::string::npos);
    const auto help = testing::run(testing::bin(tool) + " --help");
    CHECK(help.exit_code == 0);
    CHECK(help.out.find("--threads") != std::string::npos);
    CHECK(help.out.find("--force") != std::string::npos);
    const auto version = testing::run(testing::bin(tool) + " --version");
    CHECK(version.exit_code == 0);
    CHECK(version.out.find("tmsplan") != std::string::npos);
    const auto threads = testing::run(testing::bin(tool) + " x -o . --threads -3");
    CHECK(threads.exit_code == 2);
  }
}

TEST_CASE("skull-strip: missing output folder and existing outputs are refused before any work", "[cli]") {
  const std::string samples = testing::samples_dir();
  if (samples.empty()) {
    testing::skip("samples not generated (run make-samples)");
  }
  const std::string dir = testing::temp_dir("cli-outputs");
  const std::string input = samples + "/small-2mm.nii.gz";
  auto r = testing::run(testing::bin("skull-strip") + " " + input + " -o " + dir + "/missing");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("output folder does not exist") != std::string::npos);

  r = testing::run(testing::bin("skull-strip") + " " + input + " -o " + dir + " --threads 2");
  REQUIRE(r.exit_code == 0);
  const auto mask_hash = sha256_file(dir + "/brain_mask.nii.gz");
  r = testing::run(testing::bin("skull-strip") + " " + input + " -o " + dir);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("use --force") != std::string::npos);
  CHECK(sha256_file(dir + "/brain_mask.nii.gz") == mask_hash);

  // Determinism: --force rerun with one thread gives the same bytes.
  const std::string dir1 = testing::temp_dir("cli-outputs-1thread");
  r = testing::run(testing::bin("skull-strip") + " " + input + " -o " + dir1 + " --threads 1");
  REQUIRE(r.exit_code == 0);
  for (const std::string f : {"brain_mask.nii.gz", "head_mask.nii.gz", "t1w_biascorr.nii.gz", "skull_strip_qc.png"})
    CHECK(sha256_file(dir + "/" + f) == sha256_file(dir1 + "/" + f));
  CHECK(testing::list_files(dir) == testing::list_files(dir1));
}
