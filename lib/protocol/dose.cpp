// Dose adjustment for scalp-to-cortex distance (Stokes 2005, 2007).
#include "tmsplan/error.hpp"
#include "tmsplan/protocol.hpp"

#include <fmt/format.h>

#include <cmath>

namespace tmsplan::protocol {

DoseAdjustment adjust_for_depth(double mt_m1_pct_mso, double d_target_mm, double d_m1_mm, double k_pct_mso_per_mm) {
  const auto check = [](double v, const char* name, bool allow_zero) {
    if (!std::isfinite(v) || v < 0 || (!allow_zero && v == 0)) {
      throw Error(fmt::format("dose adjustment: {} = {:g} must be a finite, {} number", name, v,
                              allow_zero ? "non-negative" : "positive"));
    }
  };
  check(mt_m1_pct_mso, "MT_M1 (%MSO)", false);
  check(d_target_mm, "d_target (mm)", true);
  check(d_m1_mm, "d_M1 (mm)", true);
  check(k_pct_mso_per_mm, "k (%MSO/mm)", false);
  if (mt_m1_pct_mso > 100) throw Error(fmt::format("dose adjustment: MT_M1 = {:g} %MSO is above 100", mt_m1_pct_mso));

  DoseAdjustment out;
  out.mt_target_pct_mso = mt_m1_pct_mso + depth_offset(d_target_mm, d_m1_mm, k_pct_mso_per_mm);
  if (out.mt_target_pct_mso <= 0) {
    throw Error(fmt::format("dose adjustment gives {:g} %MSO (target {:g} mm shallower than M1): not meaningful",
                            out.mt_target_pct_mso, d_m1_mm - d_target_mm));
  }
  out.exceeds_stimulator = out.mt_target_pct_mso > 100;
  out.arithmetic =
      fmt::format("MT_target = MT_M1 + k x (d_target - d_M1) = {:g} + {:g} x ({:g} - {:g}) = {:.1f} %MSO "
                  "(k in %MSO/mm, Stokes 2005: 3, Stokes 2007: 2.8; distances scalp to cortex on the subject's MRI){}",
                  mt_m1_pct_mso, k_pct_mso_per_mm, d_target_mm, d_m1_mm, out.mt_target_pct_mso,
                  out.exceeds_stimulator ? "; above 100 %MSO, not achievable" : "");
  return out;
}

}  // namespace tmsplan::protocol
