#pragma once
/// Deterministic parallel loops: a static split of [0, n) into min(threads, n) contiguous chunks,
/// run on a persistent pool of threads (lib/core/parallel.cpp; nested calls are helped, not
/// blocked). Each index is handled by exactly one call, so results written per index do not depend
/// on the thread count. Reductions must be combined by the caller in index order.
#include <cstdint>
#include <functional>
#include <vector>

namespace tmsplan {

void set_threads(int n);
int threads();

/// Calls body(begin, end) on disjoint ranges covering [0, n).
void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body);

/// Runs independent tasks on the threads (static split in list order). When tasks throw, the
/// exception of the earliest one in list order is rethrown, as a serial run would.
void parallel_tasks(const std::vector<std::function<void()>>& tasks);

}  // namespace tmsplan
