// The encoder kernels' thread pool (cpu_pool.hpp): spin briefly, then park; dynamic chunks.
#include "cpu_pool.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RN_CPU_RELAX() _mm_pause()
#else
#define RN_CPU_RELAX() std::this_thread::yield()
#endif

namespace routenlp::detail {
namespace {

constexpr int kMaxThreads = kCpuPoolMaxThreads;  // helpers must fit the job word's low byte
// How long an idle worker (or a caller waiting for workers) polls before parking. Long enough
// to bridge the gap between two GEMMs of one forward (tens of microseconds), short enough that
// an idle pool costs nothing measurable.
constexpr auto kSpin = std::chrono::microseconds(50);

template <class Pred>
bool spin_until(const Pred& done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
    RN_CPU_RELAX();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return done();
  }
}

class Pool {
 public:
  explicit Pool(int workers) {
    threads_.reserve(static_cast<size_t>(workers));
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this, w] { work(w); });
  }
  // Never destroyed (see pool()): workers stay parked until the process exits.
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int workers() const { return static_cast<int>(threads_.size()); }

  // Returns false (and runs nothing) when another caller's job is in progress.
  bool run(int64_t chunks, int helpers, CpuPoolBody body, void* context) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    body_ = body;
    context_ = context;
    chunks_ = chunks;
    next_.store(0, std::memory_order_relaxed);
    finished_.store(0, std::memory_order_relaxed);
    {
      // Publishing under the mutex pairs with the parked workers' predicate check. The job
      // word carries the helper count, so a worker decides whether it is invited from the same
      // load that tells it a job exists (never from a field a later job may have rewritten).
      std::lock_guard<std::mutex> lock(mu_);
      const uint64_t gen = (job_.load(std::memory_order_relaxed) >> 8) + 1;
      job_.store(gen << 8 | static_cast<uint64_t>(helpers), std::memory_order_release);
    }
    wake_.notify_all();
    drain(0);
    if (!spin_until([&] { return finished_.load(std::memory_order_acquire) == helpers; })) {
      std::unique_lock<std::mutex> lock(mu_);
      done_.wait(lock, [&] { return finished_.load(std::memory_order_acquire) == helpers; });
    }
    return true;
  }

 private:
  void drain(int slot) {
    for (int64_t c; (c = next_.fetch_add(1, std::memory_order_relaxed)) < chunks_;) body_(c, slot, context_);
  }

  void work(int index) {
    uint64_t seen = 0;
    for (;;) {
      auto fresh = [&] { return job_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(fresh)) {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, fresh);
      }
      seen = job_.load(std::memory_order_acquire);
      const int helpers = static_cast<int>(seen & 0xff);
      if (index >= helpers) continue;  // not needed for this job
      // Invited: the caller waits for this worker, so the job's fields stay as published.
      drain(index + 1);
      if (finished_.fetch_add(1, std::memory_order_acq_rel) + 1 == helpers) {
        std::lock_guard<std::mutex> lock(mu_);
        done_.notify_one();
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex busy_;  // one job at a time
  std::mutex mu_;    // parking
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> job_{0};  // generation << 8 | helpers invited (workers 0..helpers-1)
  // The current job: written by the caller before job_ is published, read by invited workers
  // after they see it; the caller does not return (and so cannot start another job) until
  // every invited worker has finished with it.
  CpuPoolBody body_ = nullptr;
  void* context_ = nullptr;
  int64_t chunks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> finished_{0};
};

Pool* pool() {
  // Leaked on purpose: joining parked workers from a static destructor would race with other
  // static destructors that may still run encoder code. After fork() the child has none of the
  // parent's threads, so it gets a fresh pool (the parent's copy is leaked there too).
  static std::mutex mu;
  static Pool* p = nullptr;
  static pid_t owner = 0;
  std::lock_guard<std::mutex> lock(mu);
  if (!p || owner != ::getpid()) {
    p = new Pool(cpu_pool_default_threads() - 1);
    owner = ::getpid();
  }
  return p;
}

}  // namespace

int cpu_pool_default_threads() {
  // The CPUs this process may run on (taskset / cpuset containers), else all online CPUs.
  // CFS quotas (a container's "cpus: 2" on a 64-core host) are not visible here: such hosts
  // should set the thread count themselves.
  int n = 0;
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
#endif
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(n, 1, kMaxThreads);
}

void cpu_pool_run(int64_t chunks, int threads, CpuPoolBody body, void* context) {
  if (chunks <= 0) return;
  const int helpers = static_cast<int>(std::min<int64_t>(std::min(threads, kMaxThreads) - 1, chunks - 1));
  if (helpers > 0) {
    Pool* p = pool();
    if (p->run(chunks, std::min(helpers, p->workers()), body, context)) return;
  }
  for (int64_t c = 0; c < chunks; ++c) body(c, 0, context);
}

}  // namespace routenlp::detail
