// The encoder kernels' thread pool (encoder/cpu_pool.hpp): every chunk runs exactly once, slots
// stay below the thread count, concurrent callers and fork() are safe, affinity sets the default.
#include <catch2/catch.hpp>

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

#include "encoder/cpu_pool.hpp"

using namespace routenlp::detail;

namespace {

// The backoff test below needs a 1 ms size limit for backing off, and the pool reads it once,
// when the process's pool is created: set it before any test case runs (run as one process,
// as the TSan stage does, an earlier case creates the pool).
const bool kSmallJobLimitSet = ::setenv("ROUTENLP_CPU_POOL_SMALL_JOB_US", "1000", 1) == 0;
// The free-core check would run jobs alone whenever the test machine is busy (ctest -j, CI):
// the counts checked below need the pool to share. Its rule is tested on its own below.
const bool kLoadCheckOff = ::setenv("ROUTENLP_CPU_POOL_LOADCHECK", "off", 1) == 0;

// Runs one job and returns how often each chunk ran; records the largest slot seen.
std::vector<int> run_counts(int64_t chunks, int threads, int* max_slot) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(chunks));
  std::atomic<int> top{-1};
  cpu_pool_for(chunks, threads, [&](int64_t c, int slot) {
    hits[static_cast<size_t>(c)].fetch_add(1);
    int seen = top.load();
    while (slot > seen && !top.compare_exchange_weak(seen, slot)) {
    }
  });
  if (max_slot) *max_slot = top.load();
  std::vector<int> out;
  for (auto& h : hits) out.push_back(h.load());
  return out;
}

}  // namespace

TEST_CASE("cpu_pool: every chunk runs exactly once, slots below the thread count", "[cpu_pool]") {
  for (int threads : {1, 2, 3, 8, 16, 40}) {
    for (int64_t chunks : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{7}, int64_t{64}, int64_t{1000}}) {
      INFO("threads " << threads << " chunks " << chunks);
      int max_slot = -1;
      auto counts = run_counts(chunks, threads, &max_slot);
      int wrong = 0;
      for (int c : counts) wrong += c != 1;
      CHECK(wrong == 0);
      CHECK(max_slot < std::max(1, std::min(threads, kCpuPoolMaxThreads)));
      if (chunks == 0) CHECK(max_slot == -1);  // the body never ran
    }
  }
  CHECK(cpu_pool_default_threads() >= 1);
  CHECK(cpu_pool_default_threads() <= kCpuPoolMaxThreads);
}

TEST_CASE("cpu_pool: back-to-back jobs and concurrent callers all complete", "[cpu_pool]") {
  // Many short jobs in a row exercise the spin / park hand-over between jobs.
  for (int j = 0; j < 2000; ++j) {
    auto counts = run_counts(1 + j % 13, 2 + j % 3, nullptr);
    int wrong = 0;
    for (int c : counts) wrong += c != 1;
    REQUIRE(wrong == 0);
  }
  // Four callers at once: one gets the pool per job, the others run on their own threads.
  std::atomic<int> bad{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int j = 0; j < 300; ++j) {
        auto counts = run_counts(5 + (j + t) % 40, 4, nullptr);
        for (int c : counts) bad += c != 1;
      }
    });
  for (auto& c : callers) c.join();
  CHECK(bad.load() == 0);
}

TEST_CASE("cpu_pool: a worker that arrives after the caller closed its job runs none of it", "[cpu_pool]") {
  // Two quick chunks: the caller often runs both before the worker enters, closes the job and
  // returns without waiting for it. No chunk may run after cpu_pool_for returned (the worker
  // must see the job closed), and every chunk runs once.
  std::atomic<int> after_return{0}, wrong{0};
  for (int j = 0; j < 5000; ++j) {
    std::atomic<bool> returned{false};
    std::atomic<int> hits[2] = {{0}, {0}};
    cpu_pool_for(2, 2, [&](int64_t c, int) {
      if (returned.load()) after_return.fetch_add(1);
      hits[c].fetch_add(1);
    });
    returned.store(true);
    wrong += (hits[0].load() != 1) + (hits[1].load() != 1);
  }
  CHECK(after_return.load() == 0);
  CHECK(wrong.load() == 0);
}

TEST_CASE("cpu_pool: a forked child gets a working pool", "[cpu_pool]") {
  (void)run_counts(16, 4, nullptr);  // the parent's pool exists before the fork
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Child: the parent's workers do not exist here; a job must still complete (not hang).
    auto counts = run_counts(100, 4, nullptr);
    int wrong = 0;
    for (int c : counts) wrong += c != 1;
    ::_exit(wrong == 0 ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("cpu_pool: the default thread count follows the CPU affinity mask", "[cpu_pool]") {
  // In a child, so the restriction does not leak into other tests.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    if (::sched_setaffinity(0, sizeof(one), &one) != 0) ::_exit(2);
    ::_exit(cpu_pool_default_threads() == 1 ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("cpu_pool: a job whose helper comes back late makes the next jobs of its site run on the caller",
          "[cpu_pool]") {
  if (cpu_pool_default_threads() < 2) {
    WARN("one CPU: the pool has no workers, nothing to back off from");
    return;
  }
  REQUIRE(kSmallJobLimitSet);  // the 1 ms limit, set before this process's pool was created
  using std::chrono::milliseconds;
  // One job site (the same kernel type and chunk count) for every job below.
  using Body = std::function<void(int64_t, int)>;
  auto run = [](const Body& body) { cpu_pool_for(8, 2, body); };
  // A small job (the caller's chunks take 15 us each, ~120 us alone: below the 1 ms limit for
  // backing off set at start-up) whose helper chunk stands for a
  // worker that lost its core (20 ms).
  run_counts(64, 2, nullptr);  // another site: leaves the worker spinning, ready for a chunk
  const CpuPoolStats before = cpu_pool_stats();
  std::atomic<int> helper_chunks{0};
  std::atomic<int64_t> caller_ns{0};  // from just before the job to the end of the caller's last chunk
  std::atomic<int> caller_chunks{0};
  const auto start = std::chrono::steady_clock::now();
  run([&](int64_t, int slot) {
    if (slot == 0) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(15);
      while (std::chrono::steady_clock::now() < until) {
      }
      caller_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
      caller_chunks.fetch_add(1);
    } else {
      helper_chunks.fetch_add(1);
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  const CpuPoolStats after_late = cpu_pool_stats();
  CHECK(after_late.shared_jobs == before.shared_jobs + 1);
  // The pool's premise: the caller alone would have been quick (its time per chunk times every
  // chunk under the 1 ms limit). A caller preempted during its part of the job (a loaded
  // machine, a sanitizer build) makes the job "big", which rightly does not back off: nothing
  // to check then (measured here from before the job, so at least the pool's own estimate).
  const double alone_ns = caller_chunks.load() > 0 ? double(caller_ns.load()) / caller_chunks.load() * 8 : 0.0;
  if (alone_ns >= 900e3) {
    WARN("the caller was preempted in its own chunks (alone estimate " << alone_ns / 1e3 << " us): nothing to check");
    return;
  }
  if (helper_chunks.load() > 0) CHECK(after_late.late_jobs == before.late_jobs + 1);  // waited 20 ms
  if (after_late.late_jobs == before.late_jobs) {
    WARN("sharing did not lose this time (the helper woke fast and took no chunk): nothing to check");
    return;
  }
  // Backing off: the next job of the site runs on the caller alone (slot 0 only), counted.
  std::atomic<int> max_slot{0}, ran{0};
  run([&](int64_t, int slot) {
    ran.fetch_add(1);
    if (slot > max_slot.load()) max_slot.store(slot);
  });
  CHECK(ran.load() == 8);
  CHECK(max_slot.load() == 0);
  CHECK(cpu_pool_stats().solo_jobs == after_late.solo_jobs + 1);
  // Another site (a chunk count not used before) is not affected: it is shared.
  const uint64_t shared_before = cpu_pool_stats().shared_jobs;
  run_counts(63, 2, nullptr);
  CHECK(cpu_pool_stats().shared_jobs == shared_before + 1);
  // After the solo span the site shares again: within 20 more jobs one is shared.
  bool shared = false;
  for (int i = 0; i < 20 && !shared; ++i) {
    const uint64_t s0 = cpu_pool_stats().shared_jobs;
    run([](int64_t, int) {});
    shared = cpu_pool_stats().shared_jobs > s0;
  }
  CHECK(shared);
}

TEST_CASE("cpu_pool: the runnable count is read from /proc/loadavg's fourth field", "[cpu_pool]") {
  CHECK(kLoadCheckOff);
  CHECK(cpu_pool_parse_runnable("0.52 0.58 0.59 3/96 2369\n") == 3);
  CHECK(cpu_pool_parse_runnable("12.00 9.10 4.00 17/1024 99") == 17);
  CHECK(cpu_pool_parse_runnable("0.52 0.58 0.59 /96 2369") == 0);  // no number
  CHECK(cpu_pool_parse_runnable("0.52 0.58 0.59 3 96") == 0);      // no '/'
  CHECK(cpu_pool_parse_runnable("0.52 0.58") == 0);                 // truncated
  CHECK(cpu_pool_parse_runnable("") == 0);
  CHECK(cpu_pool_parse_runnable("0 0 0 99999999999/1 1") == 0);     // absurd
#if defined(__linux__)
  // The live file parses (this thread at least is running).
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    char buf[128] = {0};
    const bool got = std::fgets(buf, sizeof buf, f) != nullptr;
    std::fclose(f);
    if (got) CHECK(cpu_pool_parse_runnable(buf) >= 1);
  }
#endif
}

TEST_CASE("cpu_pool: never more helpers than the cores other processes leave free", "[cpu_pool]") {
  // Idle 2-core machine: the caller and one helper.
  CHECK(cpu_pool_free_helpers(1, 2, 0.0) == 1);
  // One other busy process on 2 cores: no core for a helper.
  CHECK(cpu_pool_free_helpers(1, 2, 1.0) == 0);
  CHECK(cpu_pool_free_helpers(1, 2, 6.0) == 0);
  // A transient runnable thread in the smoothed estimate does not stop sharing; a steady one does.
  CHECK(cpu_pool_free_helpers(1, 2, 0.3) == 1);
  CHECK(cpu_pool_free_helpers(1, 2, 0.7) == 0);
  // 16 cores, 5 taken by others: 10 helpers at most, never more than asked.
  CHECK(cpu_pool_free_helpers(15, 16, 5.0) == 10);
  CHECK(cpu_pool_free_helpers(3, 16, 5.0) == 3);
  CHECK(cpu_pool_free_helpers(0, 16, 0.0) == 0);
  CHECK(cpu_pool_free_helpers(-1, 16, 0.0) == 0);
  CHECK(cpu_pool_free_helpers(3, 16, -2.0) == 3);  // a negative estimate counts as none
  CHECK(cpu_pool_free_helpers(3, 1, 0.0) == 0);    // one core: the caller's
}
