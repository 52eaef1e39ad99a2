// SPDX-License-Identifier: BSD-3-Clause
// DPDK's log through weir's: one stream for both, each DPDK line with its own priority, and no
// second copy to syslog (DPDK's default stream writes to both stdout and syslog).
#pragma once

namespace weir::dpdk {

// Call before rte_eal_init; false if the stream cannot be made (DPDK then logs as it would).
bool route_dpdk_log();

}  // namespace weir::dpdk
