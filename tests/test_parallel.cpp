// parallel_for / parallel_tasks (lib/core/parallel.cpp): the static split each body call sees, the
// persistent pool under nesting (tasks whose bodies start loops of their own), errors, and reuse.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <utility>
#include <vector>

#include "tmsplan/parallel.hpp"

using namespace tmsplan;

namespace {

struct ThreadsGuard {
  int saved = threads();
  ~ThreadsGuard() { set_threads(saved); }
};

// The ranges body(begin, end) is called with, sorted.
std::vector<std::pair<std::int64_t, std::int64_t>> ranges_of(std::int64_t n) {
  std::mutex m;
  std::vector<std::pair<std::int64_t, std::int64_t>> r;
  parallel_for(n, [&](std::int64_t b, std::int64_t e) {
    std::lock_guard<std::mutex> lock(m);
    r.emplace_back(b, e);
  });
  std::sort(r.begin(), r.end());
  return r;
}

}  // namespace

TEST_CASE("parallel: each call sees the static split of one thread per chunk", "[parallel][unit]") {
  ThreadsGuard guard;
  for (int t : {1, 2, 3, 4, 7}) {
    set_threads(t);
    for (std::int64_t n : {1, 2, 3, 5, 7, 8, 100, 1001}) {
      // min(t, n) chunks of ceil(n / chunks), the last one shorter, none empty
      const std::int64_t workers = std::min<std::int64_t>(t, n), chunk = (n + workers - 1) / workers;
      std::vector<std::pair<std::int64_t, std::int64_t>> want;
      for (std::int64_t b = 0; b < n; b += chunk) want.emplace_back(b, std::min(n, b + chunk));
      CAPTURE(t, n);
      CHECK(ranges_of(n) == want);
    }
  }
  set_threads(3);
  CHECK(ranges_of(0).empty());
  CHECK(ranges_of(-5).empty());
}

TEST_CASE("parallel: nested loops inside tasks finish and cover every index once", "[parallel][unit]") {
  ThreadsGuard guard;
  for (int t : {2, 3, 4}) {
    set_threads(t);
    constexpr int kTasks = 6, kOuter = 5;
    constexpr std::int64_t kInner = 4099;
    std::vector<std::vector<std::atomic<int>>> hits(kTasks * kOuter);
    for (auto& h : hits) h = std::vector<std::atomic<int>>(kInner);
    std::vector<std::function<void()>> tasks;
    for (int k = 0; k < kTasks; ++k)
      tasks.push_back([&, k] {
        // three levels: task -> loop -> loop
        parallel_for(kOuter, [&](std::int64_t b, std::int64_t e) {
          for (std::int64_t o = b; o < e; ++o)
            parallel_for(kInner, [&](std::int64_t ib, std::int64_t ie) {
              for (std::int64_t i = ib; i < ie; ++i) ++hits[std::size_t(k * kOuter + o)][std::size_t(i)];
            });
        });
      });
    parallel_tasks(tasks);
    std::int64_t wrong = 0;
    for (auto& h : hits)
      for (auto& x : h) wrong += x.load() != 1;
    CAPTURE(t);
    CHECK(wrong == 0);
  }
}

TEST_CASE("parallel: the earliest failing chunk's error is rethrown and the pool goes on", "[parallel][unit]") {
  ThreadsGuard guard;
  set_threads(4);
  auto fail_from = [](std::int64_t first_bad) {
    parallel_for(100, [&](std::int64_t b, std::int64_t) {
      if (b >= first_bad) throw std::runtime_error("chunk " + std::to_string(b));
    });
  };
  CHECK_THROWS_WITH(fail_from(0), "chunk 0");
  CHECK_THROWS_WITH(fail_from(50), "chunk 50");  // chunks 50 and 75 fail: 50 comes first
  std::vector<std::function<void()>> tasks{[] {}, [] { throw std::runtime_error("task 1"); },
                                           [] { throw std::runtime_error("task 2"); }};
  CHECK_THROWS_WITH(parallel_tasks(tasks), "task 1");
  // a failure inside a nested loop reaches the outer caller
  CHECK_THROWS_WITH(parallel_tasks({[] {}, [&] { fail_from(25); }}), "chunk 25");
  std::atomic<std::int64_t> sum{0};
  parallel_for(1000, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) sum += i;
  });
  CHECK(sum.load() == 999 * 1000 / 2);
}

TEST_CASE("parallel: many short loops and a change of thread count", "[parallel][unit]") {
  ThreadsGuard guard;
  std::int64_t total = 0;
  for (int t : {2, 1, 3, 2}) {
    set_threads(t);
    for (int rep = 0; rep < 2000; ++rep) {
      std::vector<std::int64_t> part(8, 0);
      parallel_for(8, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) part[std::size_t(i)] = i + rep;
      });
      total += std::accumulate(part.begin(), part.end(), std::int64_t(0));
    }
  }
  // sum over 4 rounds, 2000 reps, i in 0..7 of (i + rep)
  CHECK(total == 4 * (2000 * 28 + 8 * (1999 * 2000 / 2)));
}
