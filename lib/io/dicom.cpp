// DICOM series through ITK/GDCM: the only place ITK's image IO is used. ITK works in LPS; the
// conversion to our RAS frame goes through geometry.hpp. The series is read in a child process
// (fork): Debian's GDCM keeps its assertions, and a malformed file can abort inside it (found by
// the mutation test in tests/test_io.cpp); the child's death then becomes one error line here
// instead of the tool's crash, and GDCM's own messages to stderr stay out of the tool's log.
#include <fmt/format.h>
#include <gdcmReader.h>
#include <itkGDCMImageIO.h>
#include <itkGDCMSeriesFileNames.h>
#include <itkImage.h>
#include <itkImageSeriesReader.h>
#include <itkMetaDataObject.h>
#include <itkMultiThreaderBase.h>

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <new>
#include <optional>
#include <set>
#include <sstream>

#include "nifti_internal.hpp"
#include "tmsplan/error.hpp"
#include "tmsplan/log.hpp"

namespace fs = std::filesystem;

namespace tmsplan::detail {
namespace {
using ItkImage = itk::Image<float, 3>;

// The raw bytes of `tag` in `file`, the header read with GDCM up to the pixel data (not the
// pixels); nullopt when the file cannot be read or has no such element.
std::optional<std::string> raw_tag(const std::string& file, const gdcm::Tag& tag) {
  gdcm::Reader reader;
  reader.SetFileName(file.c_str());
  if (!reader.ReadUpToTag(gdcm::Tag(0x7fe0, 0x0010))) return std::nullopt;
  const gdcm::DataSet& ds = reader.GetFile().GetDataSet();
  if (!ds.FindDataElement(tag)) return std::nullopt;
  const gdcm::ByteValue* bv = ds.GetDataElement(tag).GetByteValue();
  if (!bv) return std::nullopt;
  return std::string(bv->GetPointer(), bv->GetLength());
}

// Philips' private scale slope (2005,100E) is a binary float32; ITK's string form keeps only six
// digits, so read the exact value with GDCM. Returns 0 when absent.
double philips_scale_slope(const std::string& file) {
  const auto bytes = raw_tag(file, gdcm::Tag(0x2005, 0x100e));
  if (!bytes || bytes->size() != 4) return 0.0;
  float value = 0.0f;
  std::memcpy(&value, bytes->data(), 4);  // DICOM little endian, as is this machine
  return std::isfinite(value) ? double(value) : 0.0;
}

// Number of Frames (0028,0008), an integer string; 1 when absent or unreadable. An enhanced
// (multi-frame) image holds a whole volume in one file.
long number_of_frames(const std::string& file) {
  const auto text = raw_tag(file, gdcm::Tag(0x0028, 0x0008));
  if (!text) return 1;
  char* end = nullptr;
  const long n = std::strtol(text->c_str(), &end, 10);
  return end != text->c_str() && n > 1 ? n : 1;
}

using Dicts = itk::ImageSeriesReader<ItkImage>::DictionaryArrayType;

// True when the file has DICOM's preamble mark ("DICM" at byte 128).
bool has_dicom_mark(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  char mark[4] = {};
  return in.seekg(128) && in.read(mark, 4) && std::memcmp(mark, "DICM", 4) == 0;
}

// GDCM's series scan passes over a file it cannot parse without a word: a slice damaged or cut
// short by a copy would vanish from the series (at either end of the stack no gap shows). So a file
// that looks like DICOM (the "DICM" mark, or a .dcm / .ima / .dicom name) and that no series of the
// folder lists refuses the folder, named. DICOMDIR, hidden files and other names (a .json sidecar,
// a README) are left alone.
void check_unlisted_files(const std::string& dir, itk::GDCMSeriesFileNames& names,
                          const std::vector<std::string>& uids) {
  std::set<std::string> listed;
  for (const auto& u : uids)
    for (const auto& f : names.GetFileNames(u)) listed.insert(fs::path(f).filename().string());
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  auto upper = [](std::string t) {
    for (auto& ch : t) ch = char(std::toupper(static_cast<unsigned char>(ch)));
    return t;
  };
  for (const auto& file : files) {
    const std::string name = file.filename().string(), ext = upper(file.extension().string());
    if (listed.count(name) || upper(name) == "DICOMDIR" || name.front() == '.') continue;
    if (ext == ".DCM" || ext == ".IMA" || ext == ".DICOM" || has_dicom_mark(file))
      throw Error("DICOM file " + name + " is not part of the series (damaged or cut short?); the series would lack it",
                  dir);
  }
}

// The files of the one series in the folder (or of options.series_uid), sorted by GDCM.
std::vector<std::string> series_files(const std::string& dir, const ReadOptions& options) {
  // ITK prints warnings straight to stderr; our errors say what went wrong instead.
  itk::Object::GlobalWarningDisplayOff();
  auto names = itk::GDCMSeriesFileNames::New();
  names->SetUseSeriesDetails(true);
  names->SetDirectory(dir);
  std::vector<std::string> uids;
  try {
    uids = names->GetSeriesUIDs();
  } catch (const itk::ExceptionObject& e) {
    throw Error(std::string("cannot scan the folder for DICOM series: ") + e.GetDescription(), dir);
  }
  if (uids.empty()) throw Error("no DICOM image series found in the folder", dir);
  std::string uid = options.series_uid;
  if (uid.empty()) {
    if (uids.size() > 1) {
      std::string list;  // one line: the tools print one error line
      for (const auto& u : uids) list += (list.empty() ? " " : ", ") + u;
      throw Error("folder holds " + std::to_string(uids.size()) + " DICOM series; choose one with --series UID:" + list,
                  dir);
    }
    uid = uids.front();
  } else if (std::find(uids.begin(), uids.end(), uid) == uids.end()) {
    throw Error("no series '" + uid + "' in the folder", dir);
  }
  std::vector<std::string> file_names = names->GetFileNames(uid);
  check_unlisted_files(dir, *names, uids);
  const long frames = file_names.empty() ? 1 : number_of_frames(file_names.front());
  if (frames > 1)
    throw Error("series holds enhanced (multi-frame) DICOM files (" + std::to_string(frames) +
                    " frames in the first), which are not read here: convert the series to NIfTI first (e.g. "
                    "dcm2niix)",
                dir);
  if (file_names.size() < 2) throw Error("series has a single slice: a 3D series is needed", dir);
  return file_names;
}

// The numbers of a backslash-separated DICOM value (decimal strings); empty when any is not one.
std::vector<double> dicom_numbers(const itk::MetaDataDictionary& dict, const char* key) {
  std::string text;
  if (!itk::ExposeMetaData<std::string>(dict, key, text)) return {};
  std::replace(text.begin(), text.end(), '\\', ' ');
  std::istringstream in(text);
  std::vector<double> out;
  for (double v; in >> v;) {
    if (!std::isfinite(v)) return {};
    out.push_back(v);
  }
  in.clear();
  std::string rest;
  return (in >> rest) ? std::vector<double>{} : out;
}

// Every slice's geometry, which ITK takes from the first slice alone: each must carry a readable
// Image Position (Patient), and the same Image Orientation (Patient) and Pixel Spacing as the first
// (a localizer or a damaged header among the slices would otherwise build a wrong head, silently:
// the mutation test in tests/test_io.cpp read one 43 mm off). Returns the positions, in file order.
std::vector<Eigen::Vector3d> slice_positions(const Dicts& dicts, const std::vector<std::string>& file_names,
                                             const std::string& dir) {
  std::vector<Eigen::Vector3d> positions;
  std::vector<double> orientation0, spacing0;
  for (std::size_t k = 0; k < dicts.size(); ++k) {
    const std::string name = k < file_names.size() ? fs::path(file_names[k]).filename().string() : "?";
    const std::vector<double> pos = dicom_numbers(*dicts[k], "0020|0032");
    const std::vector<double> orientation = dicom_numbers(*dicts[k], "0020|0037");
    const std::vector<double> spacing = dicom_numbers(*dicts[k], "0028|0030");
    if (pos.size() != 3 || orientation.size() != 6 || spacing.size() != 2)
      throw Error("DICOM file " + name +
                      " lacks a readable Image Position, Image Orientation or Pixel Spacing: the series' "
                      "geometry is unknown",
                  dir);
    if (k == 0) orientation0 = orientation, spacing0 = spacing;
    for (std::size_t i = 0; i < 6; ++i)
      if (std::abs(orientation[i] - orientation0[i]) > 1e-3)
        throw Error("DICOM file " + name +
                        " is turned unlike the series' first slice (a localizer, or a damaged header?)",
                    dir);
    for (std::size_t i = 0; i < 2; ++i)
      if (std::abs(spacing[i] - spacing0[i]) > 1e-3)
        throw Error("DICOM file " + name + " has another pixel spacing than the series' first slice", dir);
    positions.emplace_back(pos[0], pos[1], pos[2]);
  }
  // The slices lie on one line along the normal (ITK stacks them so): an in-plane shift of one
  // slice beyond the positions' rounding (0.02 mm) would be lost.
  const Eigen::Vector3d row(orientation0[0], orientation0[1], orientation0[2]);
  const Eigen::Vector3d col(orientation0[3], orientation0[4], orientation0[5]);
  for (std::size_t k = 1; k < positions.size(); ++k) {
    const Eigen::Vector3d d = positions[k] - positions[0];
    if (std::abs(d.dot(row)) > 0.02 || std::abs(d.dot(col)) > 0.02)
      throw Error("DICOM file " + fs::path(file_names[k]).filename().string() +
                      " lies beside the series' other slices, not above them (a tilted or damaged series?)",
                  dir);
  }
  return positions;
}

// Slice positions (sorted by GDCM along the normal): refuse gaps (missing slices) and duplicates.
void check_slice_spacing(const std::vector<Eigen::Vector3d>& positions, std::size_t files,
                         const Eigen::Vector3d& normal, const std::string& dir) {
  if (!(positions.size() == files && positions.size() >= 2)) return;
  std::vector<double> along;
  for (const auto& p : positions) along.push_back(p.dot(normal));
  std::vector<double> gaps;
  for (std::size_t i = 1; i < along.size(); ++i) gaps.push_back(std::abs(along[i] - along[i - 1]));
  std::vector<double> sorted = gaps;
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
  const double median = sorted[sorted.size() / 2];
  if (median < 1e-4) throw Error("slices share the same position (duplicate or multi-echo series?)", dir);
  for (double g : gaps)
    if (g > 1.5 * median || g < 0.5 * median)
      throw Error("slice spacing is not uniform (missing slices?): gap of " + std::to_string(g) + " mm, typical " +
                      std::to_string(median) + " mm",
                  dir);
}

// A slice cut short inside its pixel data is read without a word, the missing pixels left as they
// were. Each file's pixel data element (explicit VR little endian: tag, OW or OB, its length) must
// fit in the file. (Implicit VR files and undefined lengths, i.e. compressed fragments, are left to
// the decoder; the element is found from the end, the 8-byte pattern does not occur by chance.)
void check_file_lengths(const std::vector<std::string>& file_names, const std::string& dir) {
  for (const auto& file : file_names) {
    std::ifstream in(file, std::ios::binary);
    const std::string b{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::size_t at = std::string::npos;
    for (const char* vr : {"OW", "OB"}) {
      const std::size_t f = b.rfind(std::string("\xe0\x7f\x10\x00", 4) + vr + std::string(2, '\0'));
      if (f != std::string::npos && (at == std::string::npos || f > at)) at = f;
    }
    if (at == std::string::npos || at + 12 > b.size()) continue;
    std::uint32_t length = 0;
    std::memcpy(&length, b.data() + at + 8, 4);  // little endian, as is this machine
    if (length == 0xffffffffu) continue;
    if (at + 12 + std::uint64_t(length) > b.size())
      throw Error("DICOM file " + fs::path(file).filename().string() + " holds " + std::to_string(b.size()) +
                      " bytes, fewer than its pixel data says (" + std::to_string(length) + " bytes from byte " +
                      std::to_string(at + 12) + "): cut short?",
                  dir);
  }
}

// Philips stores a private scale slope: like dcm2niix (its default "Philips precise" scaling),
// values become (PV * RS + RI) / (RS * SS). GDCM has applied RS and RI already.
void apply_philips_scaling(const Dicts& dicts, const std::vector<std::string>& file_names, std::size_t slice,
                           Image& image) {
  for (std::size_t k = 0; k < dicts.size(); ++k) {
    const auto& dict = *dicts[k];
    std::string maker, ss_text, rs_text;
    itk::ExposeMetaData<std::string>(dict, "0008|0070", maker);
    if (maker.find("Philips") == std::string::npos) break;
    if (!itk::ExposeMetaData<std::string>(dict, "2005|100e", ss_text)) break;
    double rs = 1.0;
    if (itk::ExposeMetaData<std::string>(dict, "0028|1053", rs_text)) rs = std::atof(rs_text.c_str());
    double ss = philips_scale_slope(file_names[k]);
    if (!(ss > 0.0)) ss = std::atof(ss_text.c_str());
    if (!(ss > 0.0) || !(rs > 0.0) || !std::isfinite(ss * rs)) break;
    std::string ri_text;
    double ri = 0.0;
    if (itk::ExposeMetaData<std::string>(dict, "0028|1052", ri_text)) ri = std::atof(ri_text.c_str());
    // Recover the stored value PV, then scale with the float32 slope and intercept that
    // dcm2niix writes (scl_slope = 1/SS, scl_inter = RI/(RS*SS)), so both inputs agree exactly.
    const double slope = static_cast<float>(1.0 / static_cast<float>(ss)), inter = static_cast<float>(ri / (rs * ss));
    for (std::size_t n = k * slice; n < (k + 1) * slice; ++n) {
      const double pv = std::round((double(image.data[n]) - ri) / rs);
      image.data[n] = static_cast<float>(pv * slope + inter);
    }
  }
}

// The series read in this process (the child's work): the image in the series' own voxel order.
Image read_series_here(const std::string& dir, const ReadOptions& options, ImageInfo* info) {
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file()) ++files;
  if (files == 0) throw Error("folder holds no files (expected a DICOM series)", dir);

  const std::vector<std::string> file_names = series_files(dir, options);

  auto io = itk::GDCMImageIO::New();
  io->LoadPrivateTagsOn();  // Philips scale slope (2005,100E)
  auto reader = itk::ImageSeriesReader<ItkImage>::New();
  reader->SetImageIO(io);
  reader->SetFileNames(file_names);
  try {
    reader->UpdateOutputInformation();
    const auto size = reader->GetOutput()->GetLargestPossibleRegion().GetSize();
    const std::uint64_t voxels = std::uint64_t(size[0]) * size[1] * size[2];
    if (voxels > kMaxVoxels) throw Error("series asks for an absurd size", dir);
    reader->Update();
  } catch (const itk::ExceptionObject& e) {
    throw Error(std::string("cannot read the DICOM series: ") + e.GetDescription(), dir);
  }

  const auto* dicts = reader->GetMetaDataDictionaryArray();
  const std::vector<Eigen::Vector3d> positions = slice_positions(*dicts, file_names, dir);
  ItkImage::Pointer itk_image = reader->GetOutput();
  const auto dirm = itk_image->GetDirection();
  Eigen::Vector3d normal(dirm(0, 2), dirm(1, 2), dirm(2, 2));
  check_slice_spacing(positions, file_names.size(), normal, dir);
  check_file_lengths(file_names, dir);

  Eigen::Matrix4d vox2lps = Eigen::Matrix4d::Identity();
  const auto spacing = itk_image->GetSpacing();
  const auto origin = itk_image->GetOrigin();
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) vox2lps(r, c) = dirm(r, c) * spacing[c];
    vox2lps(r, 3) = origin[r];
  }
  Image image;
  const auto size = itk_image->GetLargestPossibleRegion().GetSize();
  image.grid.dim = {std::int64_t(size[0]), std::int64_t(size[1]), std::int64_t(size[2])};
  image.grid.vox2ras = vox2ras_from_vox2lps(LpsMatrix(vox2lps));
  const float* buffer = itk_image->GetBufferPointer();
  image.data.assign(buffer, buffer + image.grid.voxels());

  // Philips' private scale slope (the whole series carries one dictionary per slice).
  if (dicts->size() == static_cast<std::size_t>(size[2]))
    apply_philips_scaling(*dicts, file_names, std::size_t(size[0]) * std::size_t(size[1]), image);
  if (info) info->source_datatype = io->GetComponentTypeAsString(io->GetInternalComponentType());
  return image;
}

// --- The child process and what it hands back: a status byte, then either the image (grid, the
// source datatype, the voxels) or the error (message, file), written to an anonymous memory file
// that the parent reads after the child has ended (no pipe to fill, nothing to deadlock).
enum class Status : std::uint8_t { Image = 0, Error = 1, Other = 2 };

class Channel {
 public:
  explicit Channel(const char* name) : fd_(memfd_create(name, MFD_CLOEXEC)) {
    if (fd_ < 0) {  // no memfd (an old kernel, a sandbox): an unnamed temporary file instead
      if (std::FILE* f = std::tmpfile()) {
        fd_ = dup(fileno(f));
        std::fclose(f);
      }
    }
    if (fd_ < 0)
      throw Error(std::string("cannot create a file for the DICOM reader's answer: ") + std::strerror(errno));
  }
  ~Channel() { close(fd_); }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  int fd() const { return fd_; }

  // Writer side (child): all or nothing; false when a write failed.
  bool put(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      p += w, n -= std::size_t(w);
    }
    return true;
  }
  bool put_string(const std::string& s) {
    const std::uint64_t n = s.size();
    return put(&n, sizeof n) && put(s.data(), s.size());
  }

  // Reader side (parent), from the start of the file; false when it ends early.
  void rewind() { lseek(fd_, 0, SEEK_SET); }
  bool get(void* data, std::size_t n) {
    char* p = static_cast<char*>(data);
    while (n > 0) {
      const ssize_t r = read(fd_, p, n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      p += r, n -= std::size_t(r);
    }
    return true;
  }
  bool get_string(std::string& s) {
    std::uint64_t n = 0;
    if (!get(&n, sizeof n) || n > (1u << 20)) return false;
    s.resize(n);
    return get(s.data(), n);
  }
  // Everything from the start (the child's stderr), at most `limit` bytes.
  std::string all(std::size_t limit) {
    rewind();
    std::string s(limit, '\0');
    std::size_t got = 0;
    for (ssize_t r; got < limit && (r = read(fd_, s.data() + got, limit - got)) != 0;)
      if (r > 0)
        got += std::size_t(r);
      else if (errno != EINTR)
        break;
    s.resize(got);
    return s;
  }

 private:
  int fd_;
};

// A damaged header can give an element a length of gigabytes, which GDCM allocates and clears
// before it finds the file too short (seconds and GiB per file). The child's address space may
// grow by 256 MiB plus 8 bytes per byte of the folder's files (a float image of 16-bit slices is 2
// bytes per stored byte; compressed slices up to ~4:1 more): far more than a real series needs,
// far less than such a length. The voxel cap (kMaxVoxels) still applies after the header.
void limit_memory(const std::string& dir) {
  std::uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_regular_file(ec)) bytes += entry.file_size(ec);
  std::ifstream statm("/proc/self/statm");
  std::uint64_t pages = 0;
  if (!(statm >> pages)) return;  // no figure, no limit
  const std::uint64_t now = pages * std::uint64_t(sysconf(_SC_PAGESIZE));
  const std::uint64_t budget = (std::uint64_t(256) << 20) + 8 * bytes;
  struct rlimit lim {};
  if (getrlimit(RLIMIT_AS, &lim) != 0) return;
  const rlim_t want = rlim_t(now + budget);
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur <= want) return;
  lim.rlim_cur = want;
  setrlimit(RLIMIT_AS, &lim);
}

// The child: reads the series, writes the outcome, and leaves with _exit (no destructor or atexit
// handler of the parent's state runs in it; only this thread exists there).
[[noreturn]] void child_reads(const std::string& dir, const ReadOptions& options, Channel& out, int stderr_fd) {
  dup2(stderr_fd, STDERR_FILENO);
  // A fault or an interrupt ends the child the plain way: no handler of the parent's runs here (a
  // test framework's, or the tools' interrupt cleanup, which removes the parent's outputs).
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGINT, SIGTERM, SIGHUP}) std::signal(sig, SIG_DFL);
  // One thread: reading is sequential anyway, and no pool of thread stacks takes the budget below.
  itk::MultiThreaderBase::SetGlobalMaximumNumberOfThreads(1);
  itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(1);
  limit_memory(dir);
  // The outcome: a status byte and its strings (false when a write failed: exit code 3).
  auto reply = [&out](Status st, std::initializer_list<std::string> texts) {
    bool good = out.put(&st, 1);
    for (const auto& t : texts) good = good && out.put_string(t);
    return good;
  };
  bool good = false;
  try {
    ImageInfo info;
    const Image image = read_series_here(dir, options, &info);
    good = reply(Status::Image, {}) && out.put(image.grid.dim.data(), 3 * sizeof(std::int64_t)) &&
           out.put(image.grid.vox2ras.m.data(), 16 * sizeof(double)) && out.put_string(info.source_datatype) &&
           out.put(image.data.data(), image.data.size() * sizeof(float));
  } catch (const Error& e) {
    good = reply(Status::Error, {e.what(), e.file()});
  } catch (const std::bad_alloc&) {
    good = reply(Status::Error, {"the DICOM reader needed more memory than the folder's files can hold (a damaged "
                                 "header asks for a huge element?)",
                                 dir});
  } catch (const std::exception& e) {
    good = reply(Status::Other, {e.what()});
  } catch (...) {
    good = reply(Status::Other, {"unknown exception"});
  }
  const int code = good ? 0 : 3;
  _exit(code);
}

// The first line of GDCM's (or ITK's) own words in the child's stderr that names the fault (an
// assertion or "Error:"), for the one error line; "" when there is none.
std::string fault_line(const std::string& text) {
  std::istringstream in(text);
  std::string line, found;
  while (std::getline(in, line)) {
    if (const auto at = line.find("Assertion"); at != std::string::npos) return line.substr(at, 160);
    if (found.empty() && line.find_first_not_of(" \t") != std::string::npos && line.rfind("Error:", 0) != 0)
      found = line.substr(0, 160);
  }
  return found;
}

}  // namespace

Image read_dicom_series(const std::string& dir, const ReadOptions& options, ImageInfo* info) {
  Channel out("tmsplan-dicom"), err("tmsplan-dicom-stderr");
  std::fflush(nullptr);  // nothing buffered is written twice
  const pid_t pid = fork();
  if (pid < 0) throw Error(std::string("cannot start the DICOM reader: ") + std::strerror(errno), dir);
  if (pid == 0) child_reads(dir, options, out, err.fd());
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw Error(std::string("lost the DICOM reader: ") + std::strerror(errno), dir);
  const std::string said = err.all(1 << 16);
  if (!said.empty()) log::debug("DICOM reader (GDCM/ITK) said: " + said);
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    if (sig == SIGABRT || sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL) {
      const std::string why = fault_line(said);
      throw Error(fmt::format("the DICOM reader stopped on a malformed file ({}{}): the series cannot be read",
                              strsignal(sig), why.empty() ? "" : ": " + why),
                  dir);
    }
    throw Error(fmt::format("the DICOM reader was ended by a signal ({})", strsignal(sig)), dir);
  }
  out.rewind();
  Status st{};
  if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) || !out.get(&st, 1))
    throw Error("the DICOM reader failed without saying why: the series cannot be read", dir);
  if (st != Status::Image) {
    std::string what, file;
    out.get_string(what);
    if (st == Status::Error) {
      out.get_string(file);
      throw Error(what, file);
    }
    throw Error("cannot read the DICOM series: " + what, dir);
  }
  Image image;
  std::string datatype;
  if (!out.get(image.grid.dim.data(), 3 * sizeof(std::int64_t)) ||
      !out.get(image.grid.vox2ras.m.data(), 16 * sizeof(double)) || !out.get_string(datatype))
    throw Error("the DICOM reader's answer is cut short", dir);
  image.data.resize(image.grid.voxels());
  if (!out.get(image.data.data(), image.data.size() * sizeof(float)))
    throw Error("the DICOM reader's answer is cut short", dir);
  if (info) {
    info->path = dir;
    info->format = "dicom";
    info->source_datatype = datatype;
  }
  // DICOM voxel order depends on the acquisition; store it closest to RAS, as viewers expect.
  return reorient_closest_ras(image);
}

}  // namespace tmsplan::detail
