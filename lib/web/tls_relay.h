// SPDX-License-Identifier: BSD-3-Clause
// TLS in front of the management server. Debian 12's civetweb cannot serve TLS with OpenSSL 3
// (it looks up SSL_get_peer_certificate, which OpenSSL 3 no longer exports, and calls the null
// pointer after every handshake), so weir terminates TLS itself: this relay accepts on the
// public address, does the handshake with OpenSSL (certificate, versions, client certificates
// of the web configuration), and passes the plain bytes to the HTTP server on a loopback port
// of its own. The HTTP server tells the relay's connections from any other by their source
// port (from_relay), and refuses the others, so nobody reaches it without TLS. A thread per
// connection, at most max_connections at once (more are closed at once, counted); a handshake
// or an idle connection gets `timeout_ms`.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "web/web_config.h"

namespace weir::web {

class TlsRelay {
public:
    // listen: "ADDRESS:PORT" ("[v6]:PORT" for IPv6). Throws std::runtime_error naming the reason.
    TlsRelay(const std::string& listen, uint16_t backend_port, const Tls& tls, unsigned max_connections = 32,
             int timeout_ms = 10000);
    ~TlsRelay();
    TlsRelay(const TlsRelay&) = delete;
    TlsRelay& operator=(const TlsRelay&) = delete;

    // Whether a connection to the backend from this loopback source port is one of the relay's.
    bool from_relay(uint16_t port) const;

    uint64_t handshakes_failed() const { return failed_.load(); }
    uint64_t refused() const { return refused_.load(); }  // over max_connections

private:
    void accept_loop();
    void serve(int fd);

    void* ctx_ = nullptr;  // SSL_CTX
    int listen_fd_ = -1;
    int wake_[2] = {-1, -1};  // a pipe that ends the accept loop
    uint16_t backend_port_;
    unsigned max_connections_;
    int timeout_ms_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> failed_{0}, refused_{0};
    mutable std::mutex mu_;
    std::set<uint16_t> ports_;  // the relay's source ports towards the backend
    std::set<int> open_;        // client sockets being served (shut down at stop)
    unsigned active_ = 0;       // connection threads running (detached; the destructor waits for 0)
    std::condition_variable idle_;
    std::thread acceptor_;
};

}  // namespace weir::web
