// Stands in for lib/io/dicom.cpp in the fuzz build (TMSPLAN_FUZZ): Debian's ITK headers refuse any
// compiler but GCC, and the fuzz targets need clang. DICOM is fuzzed by mutation in the normal build
// instead (tests/test_io.cpp, docs/reliability.md).
#include "../../lib/io/nifti_internal.hpp"
#include "tmsplan/error.hpp"

namespace tmsplan::detail {

Image read_dicom_series(const std::string& dir, const ReadOptions&, ImageInfo*) {
  throw Error("DICOM reading is not built into the fuzz targets", dir);
}

}  // namespace tmsplan::detail
