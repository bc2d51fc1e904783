// DICOM series through ITK/GDCM: the only place ITK's image IO is used. ITK works in LPS; the
// conversion to our RAS frame goes through geometry.hpp.
#include <gdcmReader.h>
#include <itkGDCMImageIO.h>
#include <itkGDCMSeriesFileNames.h>
#include <itkImage.h>
#include <itkImageSeriesReader.h>
#include <itkMetaDataObject.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
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

bool parse_position(const std::string& text, Eigen::Vector3d& out) {
  std::string s = text;
  std::replace(s.begin(), s.end(), '\\', ' ');
  std::istringstream in(s);
  return static_cast<bool>(in >> out[0] >> out[1] >> out[2]);
}
using Dicts = itk::ImageSeriesReader<ItkImage>::DictionaryArrayType;

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
  const long frames = file_names.empty() ? 1 : number_of_frames(file_names.front());
  if (frames > 1)
    throw Error("series holds enhanced (multi-frame) DICOM files (" + std::to_string(frames) +
                    " frames in the first), which are not read here: convert the series to NIfTI first (e.g. "
                    "dcm2niix)",
                dir);
  if (file_names.size() < 2) throw Error("series has a single slice: a 3D series is needed", dir);
  return file_names;
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

}  // namespace

Image read_dicom_series(const std::string& dir, const ReadOptions& options, ImageInfo* info) {
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
  std::vector<Eigen::Vector3d> positions;
  for (const auto* dict : *dicts) {
    std::string value;
    Eigen::Vector3d p;
    if (itk::ExposeMetaData<std::string>(*dict, "0020|0032", value) && parse_position(value, p)) positions.push_back(p);
  }
  ItkImage::Pointer itk_image = reader->GetOutput();
  const auto dirm = itk_image->GetDirection();
  Eigen::Vector3d normal(dirm(0, 2), dirm(1, 2), dirm(2, 2));
  check_slice_spacing(positions, file_names.size(), normal, dir);

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
  if (info) {
    info->path = dir;
    info->format = "dicom";
    info->source_datatype = io->GetComponentTypeAsString(io->GetInternalComponentType());
  }
  // DICOM voxel order depends on the acquisition; store it closest to RAS, as viewers expect.
  return reorient_closest_ras(image);
}

}  // namespace tmsplan::detail
