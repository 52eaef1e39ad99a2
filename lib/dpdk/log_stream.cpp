// SPDX-License-Identifier: BSD-3-Clause
#include "dpdk/log_stream.h"

#include <rte_log.h>

#include <cstdio>

#include "common/log.h"

namespace weir::dpdk {
namespace {

ssize_t write_dpdk(void*, const char* buf, size_t n) {
    // DPDK's levels are syslog's plus one (RTE_LOG_EMERG is 1).
    const int prio = rte_log_cur_msg_loglevel() - 1;
    const log::Level l = prio <= 3 ? log::Level::kError
        : prio >= 7                ? log::Level::kDebug
                                   : static_cast<log::Level>(prio);
    log::raw(l, buf, n);
    return static_cast<ssize_t>(n);
}

}  // namespace

bool route_dpdk_log() {
    cookie_io_functions_t io{};
    io.write = write_dpdk;
    std::FILE* f = fopencookie(nullptr, "w", io);
    if (!f) return false;
    setvbuf(f, nullptr, _IOLBF, 0);  // a line at a time
    return rte_openlog_stream(f) == 0;
}

}  // namespace weir::dpdk
