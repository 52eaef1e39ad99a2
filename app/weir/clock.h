// SPDX-License-Identifier: BSD-3-Clause
// Clocks of the control side.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>

namespace weir {

// Monotonic seconds, for intervals.
inline double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
// Unix time in whole seconds (IPFIX export time).
inline uint32_t wall_s() { return static_cast<uint32_t>(std::time(nullptr)); }
// Unix time in seconds.
inline double unix_s() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace weir
