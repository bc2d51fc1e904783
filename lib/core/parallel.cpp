// Deterministic parallel loops on a persistent pool of worker threads.
//
// parallel_for splits [0, n) exactly as one thread per chunk would (min(threads, n) contiguous
// chunks of ceil(n / chunks)), so each body call sees the same range as before the pool and the
// bytes do not depend on it. The chunks of a call are a job in a shared queue: the calling thread
// runs chunks of its own job first, then, while it waits, any queued chunk (so a nested call made
// inside a chunk, e.g. by parallel_tasks' tasks, is run by whichever thread is free: no deadlock,
// no idle core while another thread still has queued work). Workers are started lazily, up to
// threads() - 1, and joined at exit; a forked child starts with an empty pool.
#include "tmsplan/parallel.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace tmsplan {
namespace {
int g_threads = 0;

// One parallel_for call: its chunks, how many are claimed and finished, the errors by chunk.
struct Job {
  const std::function<void(std::int64_t, std::int64_t)>* body = nullptr;
  std::int64_t n = 0, chunk = 0, chunks = 0;
  std::int64_t claimed = 0, finished = 0;  // guarded by Pool::mutex_
  std::vector<std::exception_ptr> errors;
};

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    for (auto& t : workers_) {
      if (t.get_id() == std::this_thread::get_id())
        t.detach();  // exit() called from inside a chunk: the process is ending anyway
      else if (t.joinable())
        t.join();
    }
  }

  // Runs all chunks of `job` (on this thread and the workers) and returns when they are done.
  void run(Job& job, int threads) {
    std::unique_lock<std::mutex> lock(mutex_);
    while (static_cast<int>(workers_.size()) < threads - 1) workers_.emplace_back([this] { work(); });
    queue_.push_back(&job);
    lock.unlock();
    changed_.notify_all();
    lock.lock();
    while (job.finished < job.chunks) {
      Job* next = job.claimed < job.chunks ? &job : queue_.empty() ? nullptr : queue_.front();
      if (next) {
        run_chunk(*next, lock);
      } else {
        changed_.wait(lock);
      }
    }
  }

 private:
  void work() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      changed_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      run_chunk(*queue_.front(), lock);
    }
  }

  // Claims the next chunk of `job` (it has one unclaimed), runs it unlocked, records its end.
  void run_chunk(Job& job, std::unique_lock<std::mutex>& lock) {
    const std::int64_t c = job.claimed++;
    if (job.claimed == job.chunks) queue_.erase(std::find(queue_.begin(), queue_.end(), &job));
    lock.unlock();
    const std::int64_t begin = c * job.chunk, end = std::min(job.n, begin + job.chunk);
    try {
      (*job.body)(begin, end);
    } catch (...) {
      job.errors[static_cast<std::size_t>(c)] = std::current_exception();
    }
    lock.lock();
    if (++job.finished == job.chunks) changed_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable changed_;  // work queued, a job finished, or stop
  std::deque<Job*> queue_;           // jobs with unclaimed chunks, oldest first
  std::vector<std::thread> workers_;
  bool stop_ = false;
};

// The pool, created on first use and joined at exit. A forked child has none of the parent's
// threads: it drops the parent's pool (never touching its mutex) and makes its own.
Pool* g_pool = nullptr;
std::once_flag g_pool_once;

std::atomic<bool> g_pool_gone{false};

struct PoolOwner {
  ~PoolOwner() {
    g_pool_gone = true;
    delete g_pool;
  }
};

// The pool; nullptr once it is joined at exit (a loop started by a later static destructor then
// runs its chunks in order on the calling thread).
Pool* pool() {
  static PoolOwner owner;
  std::call_once(g_pool_once, [] {
    g_pool = new Pool;
    pthread_atfork(nullptr, nullptr, [] { g_pool = new Pool; });  // the old one leaks in the child
  });
  return g_pool_gone ? nullptr : g_pool;
}
}  // namespace

void set_threads(int n) { g_threads = std::max(0, n); }

int threads() {
  if (g_threads > 0) return g_threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body) {
  if (n <= 0) return;
  const int t = threads();
  const std::int64_t workers = std::min<std::int64_t>(t, n);
  if (workers <= 1) {
    body(0, n);
    return;
  }
  Job job;
  job.body = &body;
  job.n = n;
  job.chunk = (n + workers - 1) / workers;
  job.chunks = (n + job.chunk - 1) / job.chunk;  // the chunks that are not empty
  job.errors.resize(static_cast<std::size_t>(job.chunks));
  if (Pool* p = pool()) {
    p->run(job, t);
  } else {
    for (std::int64_t c = 0; c < job.chunks; ++c) {
      try {
        body(c * job.chunk, std::min(n, (c + 1) * job.chunk));
      } catch (...) {
        job.errors[static_cast<std::size_t>(c)] = std::current_exception();
      }
    }
  }
  for (auto& e : job.errors)
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
