// SPDX-License-Identifier: BSD-3-Clause
#include "common/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace weir::notify {

bool send(const std::string& state) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return false;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    const size_t len = std::strlen(path);
    if (len >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@')) return false;
    std::memcpy(sa.sun_path, path, len);
    if (path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
    const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const socklen_t salen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    const bool ok = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), salen) ==
        static_cast<ssize_t>(state.size());
    close(fd);
    return ok;
}

bool reloading() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const unsigned long long usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ull + ts.tv_nsec / 1000;
    return send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

uint64_t watchdog_usec() {
    const char* us = std::getenv("WATCHDOG_USEC");
    if (!us) return 0;
    if (const char* pid = std::getenv("WATCHDOG_PID"); pid && std::strtol(pid, nullptr, 10) != getpid()) return 0;
    return std::strtoull(us, nullptr, 10);
}

}  // namespace weir::notify
