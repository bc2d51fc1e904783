// NIfTI-1 reading (lib/io/nifti.cpp through read_image, and the displacement-field reader of
// lib/registration/transform_io.cpp): header checks, byte order, gzip, extensions, voxel types.
// The readers take a path, so each input is written to a file in /dev/shm first, named .nii.gz
// when it starts with the gzip magic, else .nii. An image that is accepted must survive a write
// and read back with the same grid and voxels.
#include "fuzz_common.hpp"
#include "tmsplan/image.hpp"
#include "tmsplan/warp.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tmsplan::log::set_level(tmsplan::log::Level::Quiet);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::InputFile input("nifti");
  static fuzz::InputFile copy("nifti-copy");
  // Readers may go by the name for gzip (the displacement-field reader does): gzip data gets ".gz".
  const bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  const std::string path = input.write(data, size, gz ? ".nii.gz" : ".nii");

  tmsplan::Image image;
  if (fuzz::accepts("read_image", [&] { image = tmsplan::read_image(path); })) {
    tmsplan::WriteOptions options;
    options.force = true;
    options.type = tmsplan::DiskType::Float32;
    options.gzip_level = 1;
    tmsplan::Image back;
    if (!fuzz::accepts("write_image + read_image", [&] {
          tmsplan::write_image(copy.path(".nii"), image, options);
          back = tmsplan::read_image(copy.path(".nii"));
        })) {
      fuzz::finding("round trip", "an accepted image could not be written and read back");
    }
    if (back.grid.dim != image.grid.dim || !back.grid.vox2ras.m.isApprox(image.grid.vox2ras.m, 1e-6) ||
        back.data != image.data) {
      fuzz::finding("round trip", "the image read back differs from the one written");
    }
  }
  fuzz::accepts("read_displacement_field", [&] { (void)tmsplan::read_displacement_field(path); });
  return 0;
}
