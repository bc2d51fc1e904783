#pragma once
// Where tmsplan's data files are (target library, protocol presets, safety table, schema, sample
// recipe, coils). One place decides, in this order (docs/install.md):
//   1. TMSPLAN_DATA, when set and not empty: an explicit choice wins, even if the folder is wrong
//      (the file that is missing is then named in the error);
//   2. <folder of the running executable>/../share/tmsplan, when it holds targets.json: the
//      installed layout (<prefix>/bin/tool, <prefix>/share/tmsplan/);
//   3. the source tree's data/ folder, only for an executable inside the build tree it was built in.
// When none applies, (2) is returned so that errors name the place an installed tool expects.
#include <string>

namespace tmsplan {

/// The data directory in use (absolute, no trailing slash); computed once per process.
std::string data_dir();

/// data_dir() + "/" + rel, e.g. data_path("targets.json"), data_path("coils/mc-b70.json").
std::string data_path(const std::string& rel);

/// The MNI template every step registers to: Colin27 (ch2) from Debian's mricron-data, head and
/// brain on one grid. Declared once here; tools take them through cli::add_template_options.
inline constexpr const char* kMniTemplateHead = "/usr/share/mricron/templates/ch2.nii.gz";
inline constexpr const char* kMniTemplateBrain = "/usr/share/mricron/templates/ch2bet.nii.gz";

/// Which rule chose data_dir(): "TMSPLAN_DATA", "installed" or "build tree" (or "missing").
std::string data_dir_origin();

}  // namespace tmsplan
