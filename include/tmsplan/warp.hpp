#pragma once
/// Umbrella header (kept for its includers): the MNI point map (mni_map.hpp), the deformable
/// registration (deformable.hpp), the ITK/ANTs transform files (transform_io.hpp) and the
/// cortex-map step (cortex_map.hpp). New code includes the one it needs.
#include "tmsplan/cortex_map.hpp"
#include "tmsplan/deformable.hpp"
#include "tmsplan/mni_map.hpp"
#include "tmsplan/transform_io.hpp"
