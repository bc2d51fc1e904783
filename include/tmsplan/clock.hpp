#pragma once
// The clocks: the wall clock as written into records and plans, a steady clock for timing steps,
// and the process's peak memory (defined in lib/core/clock.cpp).
#include <string>

namespace tmsplan {

/// The current time in UTC as ISO 8601 to the second, e.g. "2026-11-30T08:25:00Z".
std::string utc_timestamp();
/// Wall-clock seconds since an arbitrary epoch (steady clock).
double now_seconds();
/// Peak resident memory of this process in MiB.
double peak_memory_mib();

}  // namespace tmsplan
