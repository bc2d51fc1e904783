// fast_exp: std::exp on an array of floats, bit for bit.
//
// The EM of segment.cpp spends a third of its time in expf. glibc (2.28 on) computes expf in
// double precision (sysdeps/ieee754/flt-32/e_expf.c, from Arm's optimized-routines): x/ln2 split
// into k/32 + r, 2^(k/32) from a 32-entry table, a cubic in r, one rounding to float at the end.
// On a CPU with AVX2 and FMA glibc runs its FMA build (__expf_fma), whose operations are replayed
// here, four lanes per AVX2 vector with the same fused multiply-adds, so each lane gives the same
// bits. The lanes glibc sends to its special branches (x < -103.28, x >= 88, NaN) go to std::exp,
// except x < -103.97, where glibc returns +0 without computing.
//
// Used only when the CPU has AVX2 and FMA (as glibc's own dispatch) and a check at first use
// finds std::exp's bits on 65,536 inputs spread over [-110, 90] (a C library with another expf
// then keeps std::exp); otherwise every element calls std::exp. Either way the result is
// std::exp's, so the bytes of every output do not depend on which path ran.
#include "fast_exp.hpp"

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace tmsplan::tissue {
namespace {

// __exp2f_data of glibc: tab[i] = bits(2^(i/32)) - (i << 47); the cubic scaled for k/32 steps.
alignas(32) constexpr std::uint64_t kTable[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540};
constexpr double kInvLn2N = 0x1.71547652b82fep+5;  // 32 / ln 2
constexpr double kShift = 0x1.8p+52;               // rounds to an integer when added
constexpr double kC0 = 0x1.c6af84b912394p-20, kC1 = 0x1.ebfce50fac4f3p-13, kC2 = 0x1.62e42ff0c52d6p-6;
constexpr float kUnder = -0x1.9fe368p6f;  // below: glibc returns +0 (log of 2^-150)
constexpr float kLow = -0x1.9d1d9ep6f;    // from here up to kHigh glibc takes its main path
constexpr float kHigh = 88.0f;

__attribute__((target("avx2,fma"))) __m128 exp4_fma(__m128 x) {
  const __m256d xd = _mm256_cvtps_pd(x);
  const __m256d inv = _mm256_set1_pd(kInvLn2N), shift = _mm256_set1_pd(kShift);
  __m256d kd = _mm256_fmadd_pd(inv, xd, shift);  // glibc: kd = z + shift, z = InvLn2N * xd fused in
  const __m256i ki = _mm256_castpd_si256(kd);
  kd = _mm256_sub_pd(kd, shift);
  const __m256d r = _mm256_fmsub_pd(inv, xd, kd);  // r = z - kd, fused
  const __m256i index = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
  __m256i t = _mm256_i64gather_epi64(reinterpret_cast<const long long*>(kTable), index, 8);
  t = _mm256_add_epi64(t, _mm256_slli_epi64(ki, 47));
  const __m256d s = _mm256_castsi256_pd(t);
  const __m256d z = _mm256_fmadd_pd(_mm256_set1_pd(kC0), r, _mm256_set1_pd(kC1));
  const __m256d r2 = _mm256_mul_pd(r, r);
  __m256d y = _mm256_fmadd_pd(_mm256_set1_pd(kC2), r, _mm256_set1_pd(1.0));
  y = _mm256_fmadd_pd(z, r2, y);
  return _mm256_cvtpd_ps(_mm256_mul_pd(y, s));
}

// Eight lanes: the main path's values where glibc takes it, +0 below kUnder, std::exp elsewhere.
__attribute__((target("avx2,fma"))) inline void exp8_fma(float* v) {
  const __m256 x = _mm256_loadu_ps(v);
  const __m256 main_path = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(kLow), _CMP_GE_OQ),
                                         _mm256_cmp_ps(x, _mm256_set1_ps(kHigh), _CMP_LT_OQ));
  const __m256 zero = _mm256_cmp_ps(x, _mm256_set1_ps(kUnder), _CMP_LT_OQ);
  const __m256 y = _mm256_set_m128(exp4_fma(_mm256_extractf128_ps(x, 1)), exp4_fma(_mm256_castps256_ps128(x)));
  const int done = _mm256_movemask_ps(_mm256_or_ps(main_path, zero));
  if (done == 0xff) {
    _mm256_storeu_ps(v, _mm256_and_ps(y, main_path));  // +0 in the lanes below kUnder
    return;
  }
  float in[8];
  _mm256_storeu_ps(in, x);
  _mm256_storeu_ps(v, _mm256_and_ps(y, main_path));
  for (int i = 0; i < 8; ++i)
    if (!(done >> i & 1)) v[i] = std::exp(in[i]);
}

__attribute__((target("avx2,fma"))) void exp_fma(float* v, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) exp8_fma(v + i);
  if (i == n) return;
  float tail[8] = {};
  std::memcpy(tail, v + i, (n - i) * sizeof(float));
  exp8_fma(tail);
  std::memcpy(v + i, tail, (n - i) * sizeof(float));
}

void exp_libm(float* v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) v[i] = std::exp(v[i]);
}

// True when exp_fma gives std::exp's bits on 65,536 floats spread over [-110, 90].
bool fma_path_agrees() {
  constexpr int kSamples = 1 << 16;
  const double lo = -110.0, hi = 90.0;
  std::vector<float> in(kSamples), got(kSamples);
  for (int i = 0; i < kSamples; ++i) in[std::size_t(i)] = float(lo + (hi - lo) * i / (kSamples - 1));
  got = in;
  exp_fma(got.data(), got.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const float want = std::exp(in[i]);
    if (std::memcmp(&want, &got[i], sizeof want) != 0) return false;
  }
  return true;
}

using ExpN = void (*)(float*, std::size_t);

ExpN choose() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && fma_path_agrees()) return exp_fma;
  return exp_libm;
}

}  // namespace

void exp_inplace(float* v, std::size_t n) {
  static const ExpN f = choose();
  f(v, n);
}

}  // namespace tmsplan::tissue
