// The thread pool behind the encoder's own CPU kernels (cpu_kernels.hpp).
//
// Why not OpenMP (libtorch's pool): libgomp's wait policy is fixed for the whole process when it
// loads. Its default busy-wait made two threads 4-8x slower than one on this project's loaded
// 2-core machines, and OMP_WAIT_POLICY=PASSIVE puts every worker to sleep after each parallel
// region (~20 us to wake here, ~30 regions per distilbert-base forward). This pool spins briefly
// (~50 us) after a job, then parks, and hands out work in small chunks from a shared counter,
// so a worker that lost its core to another process only delays its current chunk: the caller
// takes the rest. On a busy machine even that chunk costs more than sharing saves (the caller
// waits for a descheduled helper), so the pool watches each small job (under 50 us of work):
// when it took longer than the caller alone would have (the caller's time per chunk times every
// chunk), the next jobs of the same site (kernel and chunk count) run on the caller alone, and
// sharing is probed again after a span that doubles (16 .. 1024 jobs) while it keeps losing.
// Bigger jobs always share: they amortize a late helper.
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
struct CpuPoolStats {
  uint64_t shared_jobs = 0, late_jobs = 0, solo_jobs = 0;
};
CpuPoolStats cpu_pool_stats();

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
