#pragma once
// Small inputs shared by several test files.
#include <cstdint>
#include <string>

#include "tmsplan/image.hpp"

namespace testing {

/// A small synthetic volume of n^3 unit voxels with structure (not constant, no NaN).
inline tmsplan::Image blob(std::int64_t n) {
  tmsplan::Grid g;
  g.dim = {n, n, n};
  g.vox2ras.m.setIdentity();
  tmsplan::Image im(g, 0.0f);
  for (std::int64_t k = 0; k < n; ++k)
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < n; ++i) im(i, j, k) = float((i * 7 + j * 3 + k) % 50);
  return im;
}

/// A complete, valid user protocol; tests replace one "key": value pair at a time.
inline const std::string kUserProtocol = R"({
  "schema_version": 1,
  "id": "mine",
  "name": "My protocol",
  "target": "M1_hand_left",
  "frequency_hz": 10,
  "intensity_pct_rmt": 80,
  "train_duration_s": 8,
  "inter_train_interval_s": 52,
  "trains": 25,
  "pulses_per_session": 2000,
  "sessions": 10
})";

}  // namespace testing
