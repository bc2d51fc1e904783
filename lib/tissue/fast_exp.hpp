#pragma once
// Single-precision exponentials of an array, the same bits as std::exp (tissue's private header).
#include <cstddef>

namespace tmsplan::tissue {

/// v[i] = std::exp(v[i]) for i < n, bit for bit; vectorised (fastest with n a multiple of 8).
void exp_inplace(float* v, std::size_t n);

}  // namespace tmsplan::tissue
