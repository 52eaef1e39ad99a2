// SPDX-License-Identifier: BSD-3-Clause
// The service manager's notification protocol (sd_notify(3)), without libsystemd: a datagram
// of "KEY=VALUE" lines to the socket NOTIFY_SOCKET names. Does nothing outside systemd.
#pragma once

#include <cstdint>
#include <string>

namespace weir::notify {

// Sends `state` ("READY=1", "RELOADING=1\nMONOTONIC_USEC=...", "STOPPING=1", "WATCHDOG=1",
// "STATUS=..."); false when there is no socket or the send failed.
bool send(const std::string& state);
// RELOADING=1 with the monotonic time systemd asks to go with it.
bool reloading();
// The watchdog interval systemd expects pings within (WATCHDOG_USEC, for this process), 0 if none.
uint64_t watchdog_usec();

}  // namespace weir::notify
