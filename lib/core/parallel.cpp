#include "tmsplan/parallel.hpp"

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

namespace tmsplan {
namespace {
int g_threads = 0;
}

void set_threads(int n) { g_threads = std::max(0, n); }

int threads() {
  if (g_threads > 0) return g_threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body) {
  if (n <= 0) return;
  const std::int64_t workers = std::min<std::int64_t>(threads(), n);
  if (workers <= 1) {
    body(0, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(workers));
  const std::int64_t chunk = (n + workers - 1) / workers;
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(workers));
  for (std::int64_t w = 0; w < workers; ++w) {
    const std::int64_t begin = w * chunk;
    const std::int64_t end = std::min(n, begin + chunk);
    if (begin >= end) break;
    pool.emplace_back([&, w, begin, end] {
      try {
        body(begin, end);
      } catch (...) {
        errors[static_cast<std::size_t>(w)] = std::current_exception();
      }
    });
  }
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

void parallel_tasks(const std::vector<std::function<void()>>& tasks) {
  std::vector<std::exception_ptr> errors(tasks.size());
  parallel_for(static_cast<std::int64_t>(tasks.size()), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t t = b; t < e; ++t) {
      try {
        tasks[static_cast<std::size_t>(t)]();
      } catch (...) {
        errors[static_cast<std::size_t>(t)] = std::current_exception();
      }
    }
  });
  for (auto& err : errors)
    if (err) std::rethrow_exception(err);
}

}  // namespace tmsplan
