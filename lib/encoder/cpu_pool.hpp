// The thread pool behind the encoder's own CPU kernels (cpu_kernels.hpp).
//
// Why not OpenMP (libtorch's pool): libgomp's wait policy is fixed for the whole process when it
// loads. Its default busy-wait made two threads 4-8x slower than one on this project's loaded
// 2-core machines, and OMP_WAIT_POLICY=PASSIVE puts every worker to sleep after each parallel
// region (~20 us to wake here, ~30 regions per distilbert-base forward). This pool spins briefly
// (~50 us) after a job, then parks, and hands out work in small chunks from a shared counter,
// so a worker that lost its core to another process only delays its current chunk: the caller
// takes the rest, and does not wait at all for an invited worker that had not yet entered the
// job when the caller ran out of chunks. On a busy machine even that chunk costs more than sharing saves (the caller
// waits for a descheduled helper), so the pool watches each small job (under 50 us of work):
// when it took longer than the caller alone would have (the caller's time per chunk times every
// chunk), the next jobs of the same site (kernel and chunk count) run on the caller alone, and
// sharing is probed again after a span that doubles (16 .. 1024 jobs) while it keeps losing.
// Bigger jobs always share: they amortize a late helper. Inside a CpuPoolCrowdCheck (the
// encoder sets one for forwards that take about a millisecond or less alone) jobs also never
// invite more helpers than the cores other processes leave free (the machine's runnable count
// from /proc/loadavg, sampled at most every millisecond and smoothed; off inside a cpuset
// smaller than the machine, and with ROUTENLP_CPU_POOL_LOADCHECK=off). Only there: in a big
// forward a late helper is amortized, and under a fair-share scheduler two threads get more of
// contended cores than one (measured: checking every job cost 1.14-1.28x on distilbert-base
// batch 1 while it made the small router encoder's batch 1 0.55-0.69x, bench/contention/run.sh).
// Torch-free; tested under ThreadSanitizer.
#pragma once

#include <cstdint>

namespace routenlp::detail {

// Threads one job can use at most (the caller plus 15 workers).
constexpr int kCpuPoolMaxThreads = 16;

// body(chunk, slot, context) for chunk in [0, chunks); slot identifies the running thread
// (0 = the caller, 1.. = workers; always < the `threads` passed to cpu_pool_run), for per-thread
// scratch. Must not throw.
using CpuPoolBody = void (*)(int64_t chunk, int slot, void* context);

// Runs body for every chunk on the calling thread plus up to threads - 1 pool workers, and
// returns when all chunks are done. Chunks are handed out dynamically. threads <= 1, a single
// chunk, or a pool already busy with another caller's job (concurrent encoder calls) run
// everything on the calling thread, so concurrent callers never oversubscribe the cores.
// The process-wide pool is created on first use with min(cores, 16) - 1 workers and re-created
// in a child process after fork().
void cpu_pool_run(int64_t chunks, int threads, CpuPoolBody body, void* context);

// Jobs shared with workers, those among them where sharing lost (slower than the caller alone),
// and jobs run on the caller alone while backing off (process-wide counters since the pool started).
// crowded_jobs: jobs run on the caller alone because no core was free for a helper.
struct CpuPoolStats {
  uint64_t shared_jobs = 0, late_jobs = 0, solo_jobs = 0, crowded_jobs = 0;
};

// The runnable count in /proc/loadavg's text (the 4th field's numerator); 0 when malformed.
int cpu_pool_parse_runnable(const char* loadavg);
// Helpers a job may invite (at most `helpers`) on `cores` CPUs when other processes are
// estimated to keep `others` of them busy: the cores left after the caller's, rounded.
int cpu_pool_free_helpers(int helpers, int cores, double others);
CpuPoolStats cpu_pool_stats();

// While alive, the calling thread's jobs take the free-core check above (restores the previous
// setting when destroyed, so scopes nest).
class CpuPoolCrowdCheck {
 public:
  explicit CpuPoolCrowdCheck(bool on);
  ~CpuPoolCrowdCheck();
  CpuPoolCrowdCheck(const CpuPoolCrowdCheck&) = delete;
  CpuPoolCrowdCheck& operator=(const CpuPoolCrowdCheck&) = delete;

 private:
  bool prev_;
};

// Convenience for lambdas: cpu_pool_for(chunks, threads, [&](int64_t chunk, int slot) { ... }).
template <class F>
void cpu_pool_for(int64_t chunks, int threads, const F& f) {
  cpu_pool_run(chunks, threads, [](int64_t c, int slot, void* ctx) { (*static_cast<const F*>(ctx))(c, slot); },
               const_cast<F*>(&f));
}

// Threads the kernels use when the caller does not say: one per CPU this process may run on
// (sched_getaffinity, so taskset and cpuset limits count; CFS quotas do not), at most 16.
int cpu_pool_default_threads();

// A thread-count option as the kernels take it: requested > 0 as given, else the default.
inline int cpu_pool_threads(int requested) { return requested > 0 ? requested : cpu_pool_default_threads(); }

}  // namespace routenlp::detail
