#pragma once
// The wall clock as written into records and plans (defined in lib/core/provenance.cpp).
#include <string>

namespace tmsplan {

/// The current time in UTC as ISO 8601 to the second, e.g. "2026-11-30T08:25:00Z".
std::string utc_timestamp();

}  // namespace tmsplan
