// Dose per target: the motor threshold at M1 carried to a deeper or shallower target by the
// scalp-to-cortex distance difference (Stokes 2005), with every step written out.
#include <fmt/format.h>

#include <cmath>

#include "tmsplan/error.hpp"
#include "tmsplan/plan.hpp"

namespace tmsplan::plan {

namespace {

const Target* find_reference(const Targets& all, const std::vector<const Target*>& selected, const std::string& m1_name,
                             std::vector<std::string>& warnings) {
  if (!m1_name.empty()) {
    for (const auto& t : all.targets)
      if (t.name == m1_name) return &t;
    throw Error(fmt::format("the M1 reference target '{}' (--m1) is not in targets.json", m1_name));
  }
  std::vector<const Target*> motor;
  for (const auto* t : selected)
    if (is_motor_target(*t)) motor.push_back(t);
  if (motor.empty())
    for (const auto& t : all.targets)
      if (is_motor_target(t)) motor.push_back(&t);
  if (motor.empty()) return nullptr;
  if (motor.size() > 1) {
    std::string names;
    for (const auto* t : motor) names += (names.empty() ? "" : ", ") + t->name;
    warnings.push_back(fmt::format("several M1 targets ({}); '{}' is the reference for the depth adjustment "
                                   "(the hemisphere where the motor threshold is measured; choose with --m1)",
                                   names, motor.front()->name));
  }
  return motor.front();
}

}  // namespace

std::vector<TargetDose> compute_doses(const Targets& all, const std::vector<const Target*>& selected,
                                      const protocol::Protocol& p, std::optional<double> rmt_pct_mso,
                                      const std::string& m1_name, std::vector<std::string>& warnings) {
  if (rmt_pct_mso && !(*rmt_pct_mso > 0 && *rmt_pct_mso <= 100))
    throw Error(fmt::format("--rmt {:g} is not a motor threshold in %MSO (0 < RMT <= 100)", *rmt_pct_mso));
  const Target* m1 = find_reference(all, selected, m1_name, warnings);
  const double k = kDoseFactorPctMsoPerMm;
  std::vector<TargetDose> out;
  for (const Target* t : selected) {
    TargetDose d;
    d.target = t->name;
    d.is_motor = (t == m1) || is_motor_target(*t);
    d.d_target_mm = t->scalp_to_cortex_mm;
    std::string steps;
    if (!m1) {
      d.adjustable = false;
      steps = fmt::format("d_target = {:.2f} mm. No M1 target in targets.json: no depth adjustment is possible "
                          "(add M1_hand_left or M1_hand_right in target-pick, or pass --m1).",
                          d.d_target_mm);
      if (rmt_pct_mso) {
        d.mt_target_pct_mso = *rmt_pct_mso;
        steps += fmt::format(" Unadjusted: MT = RMT = {:g} %MSO.", *rmt_pct_mso);
      }
    } else {
      d.adjustable = true;
      d.m1_target = m1->name;
      d.d_m1_mm = m1->scalp_to_cortex_mm;
      if (t == m1) {
        d.offset_pct_mso = 0.0;
        steps = fmt::format("M1 reference: d_M1 = {:.2f} mm; MT = RMT (measured here){}", *d.d_m1_mm,
                            rmt_pct_mso ? fmt::format(" = {:g} %MSO", *rmt_pct_mso) : std::string());
        if (rmt_pct_mso) d.mt_target_pct_mso = *rmt_pct_mso;
      } else {
        d.offset_pct_mso = protocol::depth_offset(d.d_target_mm, *d.d_m1_mm, k);
        steps = fmt::format("d_target = {:.2f} mm, d_M1 = {:.2f} mm ({}); MT_target = RMT + k x (d_target - d_M1)",
                            d.d_target_mm, *d.d_m1_mm, m1->name);
        if (rmt_pct_mso) {
          const auto adj = protocol::adjust_for_depth(*rmt_pct_mso, d.d_target_mm, *d.d_m1_mm, k);
          d.mt_target_pct_mso = adj.mt_target_pct_mso;
          steps += fmt::format(" = {:g} + {:g} x ({:.2f} - {:.2f}) = {:g} {} {:.1f} = {:.1f} %MSO", *rmt_pct_mso, k,
                               d.d_target_mm, *d.d_m1_mm, *rmt_pct_mso, *d.offset_pct_mso < 0 ? "-" : "+",
                               std::abs(*d.offset_pct_mso), adj.mt_target_pct_mso);
        } else {
          steps +=
              fmt::format(" = RMT + {:g} x ({:.2f} - {:.2f}) = RMT {} {:.1f} %MSO (give --rmt to compute)", k,
                          d.d_target_mm, *d.d_m1_mm, *d.offset_pct_mso < 0 ? "-" : "+", std::abs(*d.offset_pct_mso));
        }
      }
    }
    if (d.mt_target_pct_mso && p.intensity_pct_rmt) {
      d.intensity_pct_mso = *d.mt_target_pct_mso * *p.intensity_pct_rmt / 100.0;
      steps += fmt::format("; intensity = {:g}% x {:.1f} = {:.1f} %MSO", *p.intensity_pct_rmt, *d.mt_target_pct_mso,
                           *d.intensity_pct_mso);
      if (p.intensity_pct_rmt_max) {
        d.intensity_max_pct_mso = *d.mt_target_pct_mso * *p.intensity_pct_rmt_max / 100.0;
        steps += fmt::format(" (up to {:g}%: {:.1f} %MSO)", *p.intensity_pct_rmt_max, *d.intensity_max_pct_mso);
      }
    } else if (d.mt_target_pct_mso) {
      steps += "; the protocol gives no intensity in %RMT";
    }
    const double top = d.intensity_max_pct_mso ? *d.intensity_max_pct_mso
                       : d.intensity_pct_mso   ? *d.intensity_pct_mso
                       : d.mt_target_pct_mso   ? *d.mt_target_pct_mso
                                               : 0.0;
    if (top > 100.0) {
      d.exceeds_stimulator = true;
      steps += "; above 100 %MSO: not achievable with this stimulator";
      warnings.push_back(fmt::format("{}: the dose ({:.1f} %MSO) is above 100 %MSO, not achievable", t->name, top));
    }
    if (d.adjustable && t != m1 && std::abs(d.d_target_mm - *d.d_m1_mm) > 10.0)
      warnings.push_back(fmt::format("{}: scalp-to-cortex distance differs from M1 by {:+.1f} mm; check both "
                                     "distances on the MRI (the Stokes rule is a linear approximation)",
                                     t->name, d.d_target_mm - *d.d_m1_mm));
    d.arithmetic = steps + ".";
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace tmsplan::plan
