// The public face of the NIfTI header's qform code (lib/io/nifti_header.hpp stays private to io).
#include "tmsplan/nifti_info.hpp"

#include "nifti_header.hpp"

namespace tmsplan {

NiftiQform nifti_qform(const Eigen::Matrix3d& vox2world) {
  const detail::QformRotation r = detail::qform_rotation(vox2world);
  NiftiQform out;
  out.quatern = {r.q.x(), r.q.y(), r.q.z()};
  out.qfac = r.qfac;
  out.spacing = r.spacing;
  return out;
}

}  // namespace tmsplan
