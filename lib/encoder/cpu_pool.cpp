// The encoder kernels' thread pool (cpu_pool.hpp): spin briefly, then park; dynamic chunks.
#include "cpu_pool.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <string>
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
// Contention backoff (see Pool::run): after a job whose helpers came back late, this many next
// jobs run on the caller alone; the span doubles while probes keep finding the cores taken.
constexpr int kSoloMin = 16;
constexpr int kSoloMax = 1024;
// Sharing "lost" only when it cost more than this over running alone (timer noise).
constexpr double kLossFloorNs = 10000;
// Only jobs shorter than this (the caller alone) back off: a bigger job amortizes a late helper
// over work that sharing still speeds up (measured: backing off big GEMMs under load cost
// 1.25-1.9x with a 200 us limit, bench/contention/run.sh).
constexpr double kSmallJobNs = 50000;
// Free-core check (see Pool::free_helpers): how often the caller samples the machine's runnable
// count, and the weight of a new sample in the running estimate (time constant ~3 samples).
constexpr auto kLoadSample = std::chrono::milliseconds(1);
constexpr double kLoadWeight = 0.3;

// Set by CpuPoolCrowdCheck on the calling thread: its jobs take the free-core check.
thread_local bool t_crowd_check = false;

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
    // ROUTENLP_CPU_POOL_BACKOFF=off: always share (A/B benchmarks of the backoff itself).
    const char* b = std::getenv("ROUTENLP_CPU_POOL_BACKOFF");
    backoff_ = !(b && std::string(b) == "off");
    // ROUTENLP_CPU_POOL_SMALL_JOB_US: the size limit for backing off (tuning and tests).
    if (const char* us = std::getenv("ROUTENLP_CPU_POOL_SMALL_JOB_US")) {
      const double v = std::atof(us);
      if (v > 0) small_job_ns_ = v * 1000.0;
    }
    // Free-core check: only where /proc/loadavg exists and this process may use every online
    // CPU (inside a cpuset the machine-wide runnable count says nothing about our CPUs).
    // ROUTENLP_CPU_POOL_LOADCHECK=off disables it (A/B benchmarks).
    const char* lc = std::getenv("ROUTENLP_CPU_POOL_LOADCHECK");
    cores_ = workers + 1;
    if (!(lc && std::string(lc) == "off") && cores_ == static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)))
      loadavg_fd_ = ::open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    awake_.store(workers, std::memory_order_relaxed);  // workers start spinning
    threads_.reserve(static_cast<size_t>(workers));
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this, w] { work(w); });
  }
  // Never destroyed (see pool()): workers stay parked until the process exits.
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int workers() const { return static_cast<int>(threads_.size()); }

  // Returns false (and runs nothing) when another caller's job is in progress, or while the
  // pool backs off after helpers came back late: the caller then runs the job alone.
  bool run(int64_t chunks, int helpers, CpuPoolBody body, void* context) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    Site& site = site_of(body, chunks);
    if (site.solo_left > 0) {
      --site.solo_left;
      solo_jobs_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (t_crowd_check) helpers = free_helpers(helpers);
    if (helpers == 0) {
      crowded_jobs_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    const auto t0 = std::chrono::steady_clock::now();
    body_ = body;
    context_ = context;
    chunks_ = chunks;
    next_.store(0, std::memory_order_relaxed);
    uint64_t gen = 0;
    {
      // Publishing under the mutex pairs with the parked workers' predicate check. The job
      // word carries the helper count, so a worker decides whether it is invited from the same
      // load that tells it a job exists (never from a field a later job may have rewritten).
      std::lock_guard<std::mutex> lock(mu_);
      gen = (job_.load(std::memory_order_relaxed) >> 8) + 1;
      job_.store(gen << 8 | static_cast<uint64_t>(helpers), std::memory_order_seq_cst);
    }
    wake_.notify_all();
    const int64_t mine = drain(0);
    const auto t1 = std::chrono::steady_clock::now();
    // Close the job (a word that invites no one), then wait only for the helpers that entered it
    // while it was open: a helper another process descheduled before it entered does not hold up
    // the caller, who has run its chunks. Entering (worker: count itself in, then re-read the
    // word) and closing (caller: store the word, then read the count) are seq_cst, so either
    // the caller sees the helper counted in and waits for it, or the helper sees the job closed
    // and leaves without reading the job's fields.
    job_.store(gen << 8, std::memory_order_seq_cst);
    if (!spin_until([&] { return active_.load(std::memory_order_seq_cst) == 0; })) {
      std::unique_lock<std::mutex> lock(mu_);
      done_.wait(lock, [&] { return active_.load(std::memory_order_seq_cst) == 0; });
    }
    // Contention: sharing lost when the job took longer than the caller alone would have (its
    // own time per chunk times every chunk): a helper came back late, descheduled by another
    // process or woken too slowly for so small a job. Then the next jobs of this site run
    // alone, and sharing is probed again after a span that doubles while it keeps losing.
    const auto t2 = std::chrono::steady_clock::now();
    bool lost = false;
    if (mine > 0) {
      const double worked = std::chrono::duration<double, std::nano>(t1 - t0).count();
      const double alone = worked / static_cast<double>(mine) * static_cast<double>(chunks);
      lost = alone < small_job_ns_ &&
             std::chrono::duration<double, std::nano>(t2 - t0).count() > alone + kLossFloorNs;
    }
    if (backoff_ && lost) {
      site.solo_left = site.span;
      site.span = std::min(site.span * 2, kSoloMax);
      late_jobs_.fetch_add(1, std::memory_order_relaxed);
    } else {
      site.span = std::max(site.span / 2, kSoloMin);
    }
    shared_jobs_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  CpuPoolStats stats() const {
    return {shared_jobs_.load(std::memory_order_relaxed), late_jobs_.load(std::memory_order_relaxed),
            solo_jobs_.load(std::memory_order_relaxed), crowded_jobs_.load(std::memory_order_relaxed)};
  }

 private:
  // Runs chunks until none is left; returns how many this thread ran.
  int64_t drain(int slot) {
    int64_t ran = 0;
    for (int64_t c; (c = next_.fetch_add(1, std::memory_order_relaxed)) < chunks_; ++ran) body_(c, slot, context_);
    return ran;
  }

  void work(int index) {
    uint64_t seen = 0;
    for (;;) {
      auto fresh = [&] { return job_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(fresh)) {
        std::unique_lock<std::mutex> lock(mu_);
        awake_.fetch_sub(1, std::memory_order_relaxed);
        wake_.wait(lock, fresh);
        awake_.fetch_add(1, std::memory_order_relaxed);
      }
      seen = job_.load(std::memory_order_acquire);
      const int helpers = static_cast<int>(seen & 0xff);
      if (index >= helpers) continue;  // not needed for this job (or a closed one)
      // Invited: enter, and stay only if the job is still open (see run()). Once in, the caller
      // waits for this worker, so the job's fields stay as published.
      active_.fetch_add(1, std::memory_order_seq_cst);
      if (job_.load(std::memory_order_seq_cst) == seen) (void)drain(index + 1);
      if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);
        done_.notify_one();
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex busy_;  // one job at a time
  std::mutex mu_;    // parking
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> job_{0};  // generation << 8 | helpers invited (workers 0..helpers-1; 0: closed)
  // The current job: written by the caller before job_ is published, read by invited workers
  // after they entered it; the caller does not return (and so cannot start another job) until
  // every worker that entered has left.
  CpuPoolBody body_ = nullptr;
  void* context_ = nullptr;
  int64_t chunks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> active_{0};  // workers inside the current job
  // Contention backoff per job site: the kernel (body) and its chunk count. A tiny job (a
  // small model's LayerNorm, a 128-wide GEMM) learns to run alone while a big GEMM of the same
  // forward keeps sharing. Touched only by the holder of busy_.
  struct Site {
    CpuPoolBody body = nullptr;
    int64_t chunks = 0;
    int solo_left = 0;
    int span = kSoloMin;
  };
  static constexpr size_t kSites = 64;
  Site sites_[kSites];
  Site& site_of(CpuPoolBody body, int64_t chunks) {
    const size_t h = (reinterpret_cast<uintptr_t>(body) >> 4 ^ static_cast<uintptr_t>(chunks) * 0x9E3779B97F4A7C15ull) % kSites;
    for (size_t i = 0; i < 4; ++i) {
      Site& s = sites_[(h + i) % kSites];
      if (s.body == body && s.chunks == chunks) return s;
      if (s.body == nullptr) {
        s.body = body;
        s.chunks = chunks;
        return s;
      }
    }
    Site& s = sites_[h];  // table crowded: start this site afresh in its home slot
    s = Site{body, chunks};
    return s;
  }
  bool backoff_ = true;
  double small_job_ns_ = kSmallJobNs;
  std::atomic<uint64_t> shared_jobs_{0}, late_jobs_{0}, solo_jobs_{0}, crowded_jobs_{0};

  // Never more helpers than cores other processes leave free: the runnable count of
  // /proc/loadavg (4th field, machine-wide, instantaneous) minus this caller and the pool's
  // awake workers estimates the other processes' runnable threads, smoothed over samples taken
  // at most every kLoadSample. A helper on a core another process holds comes back a timeslice
  // late (milliseconds), which costs more than the caller running its chunks alone. Touched
  // only by the holder of busy_ (awake_ aside).
  int free_helpers(int helpers) {
    if (loadavg_fd_ < 0) return helpers;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_sample_ >= kLoadSample) {
      last_sample_ = now;
      char buf[128];
      const ssize_t n = ::pread(loadavg_fd_, buf, sizeof buf - 1, 0);
      int runnable = 0;
      if (n > 0) {
        buf[n] = 0;
        runnable = cpu_pool_parse_runnable(buf);
      }
      if (runnable > 0) {
        const double others = std::max(0, runnable - 1 - awake_.load(std::memory_order_relaxed));
        others_ = sampled_ ? (1.0 - kLoadWeight) * others_ + kLoadWeight * others : others;
        sampled_ = true;
      }
    }
    return cpu_pool_free_helpers(helpers, cores_, others_);
  }
  int cores_ = 1;
  int loadavg_fd_ = -1;
  bool sampled_ = false;
  double others_ = 0.0;
  std::chrono::steady_clock::time_point last_sample_{};
  std::atomic<int> awake_{0};  // workers not parked (spinning or working): runnable themselves
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

CpuPoolStats cpu_pool_stats() { return pool()->stats(); }

CpuPoolCrowdCheck::CpuPoolCrowdCheck(bool on) : prev_(t_crowd_check) { t_crowd_check = on; }
CpuPoolCrowdCheck::~CpuPoolCrowdCheck() { t_crowd_check = prev_; }

int cpu_pool_parse_runnable(const char* loadavg) {
  // "0.52 0.58 0.59 3/96 2369": the fourth field's numerator.
  const char* p = loadavg;
  for (int field = 0; field < 3; ++field) {
    while (*p && *p != ' ') ++p;
    while (*p == ' ') ++p;
  }
  int r = 0;
  bool any = false;
  for (; *p >= '0' && *p <= '9'; ++p) {
    r = r * 10 + (*p - '0');
    any = true;
    if (r > 1000000) return 0;
  }
  return any && *p == '/' ? r : 0;
}

int cpu_pool_free_helpers(int helpers, int cores, double others) {
  // Cores left for helpers: all but the caller's and those the others occupy (rounded, so one
  // transient runnable thread in a smoothed estimate does not stop sharing).
  const double free = static_cast<double>(cores) - 1.0 - std::max(0.0, others);
  const int n = free <= 0.0 ? 0 : static_cast<int>(free + 0.5);
  return std::clamp(n, 0, std::max(helpers, 0));
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
