// SPDX-License-Identifier: BSD-3-Clause
// A counter written by exactly one thread (a worker) and read by others (the control thread).
// Relaxed atomics compile to plain loads and stores on x86: no lock prefix on the hot path.
#pragma once

#include <atomic>
#include <cstdint>

namespace weir {

class Counter {
public:
    void add(uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    void sub(uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
    void set(uint64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
    uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> v_{0};
};

}  // namespace weir
