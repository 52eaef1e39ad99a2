// SPDX-License-Identifier: BSD-3-Clause
// For the benchmarks: a UDP socket bound on 127.0.0.1 (a large receive buffer) whose thread
// counts the datagrams that arrive, the collector an exporter sends to.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>

namespace weir::perf {

struct UdpSink {
    int fd = -1;
    uint16_t port = 0;
    std::atomic<uint64_t> datagrams{0};
    std::atomic<bool> stop{false};
    std::thread t;
    UdpSink() {
        fd = socket(AF_INET, SOCK_DGRAM, 0);
        int big = 64 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));  // as root; else the default
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
        timeval tv{0, 100000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
        socklen_t len = sizeof(a);
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        t = std::thread([this] {
            char buf[65536];
            while (!stop.load())
                if (recv(fd, buf, sizeof(buf), 0) > 0) datagrams.fetch_add(1);
        });
    }
    ~UdpSink() {
        stop = true;
        t.join();
        close(fd);
    }
    UdpSink(const UdpSink&) = delete;
    UdpSink& operator=(const UdpSink&) = delete;
};

}  // namespace weir::perf
