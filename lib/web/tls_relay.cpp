// SPDX-License-Identifier: BSD-3-Clause
#include "web/tls_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace weir::web {
namespace {

// ADDRESS:PORT or [V6]:PORT into a socket address.
bool parse_listen(const std::string& s, sockaddr_storage& out, socklen_t& len) {
    std::string host, port;
    if (!s.empty() && s[0] == '[') {
        const auto close = s.find("]:");
        if (close == std::string::npos) return false;
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        const auto colon = s.rfind(':');
        if (colon == std::string::npos) return false;
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    char* end = nullptr;
    const unsigned long p = std::strtoul(port.c_str(), &end, 10);
    if (port.empty() || *end || p == 0 || p > 65535) return false;
    std::memset(&out, 0, sizeof(out));
    auto* a4 = reinterpret_cast<sockaddr_in*>(&out);
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&out);
    if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(static_cast<uint16_t>(p));
        len = sizeof(sockaddr_in);
        return true;
    }
    if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(static_cast<uint16_t>(p));
        len = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}

void set_timeouts(int fd, int ms) {
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

bool write_all(int fd, const char* p, size_t n) {
    while (n) {
        const ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

}  // namespace

TlsRelay::TlsRelay(const std::string& listen, uint16_t backend_port, const Tls& tls, unsigned max_connections,
                   int timeout_ms)
    : backend_port_(backend_port), max_connections_(max_connections), timeout_ms_(timeout_ms) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) throw std::runtime_error("cannot make a TLS context");
    ctx_ = ctx;
    const std::string why = configure_tls(ctx, tls);
    if (!why.empty()) {
        SSL_CTX_free(ctx);
        throw std::runtime_error(why);
    }
    sockaddr_storage sa;
    socklen_t len = 0;
    if (!parse_listen(listen, sa, len)) {
        SSL_CTX_free(ctx);
        throw std::runtime_error("cannot listen on " + listen + ": expected ADDRESS:PORT");
    }
    listen_fd_ = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (listen_fd_ >= 0) setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), len) != 0 ||
        ::listen(listen_fd_, 64) != 0 || pipe2(wake_, O_CLOEXEC) != 0) {
        const std::string e = std::strerror(errno);
        if (listen_fd_ >= 0) close(listen_fd_);
        SSL_CTX_free(ctx);
        throw std::runtime_error("cannot listen on " + listen + ": " + e);
    }
    acceptor_ = std::thread([this] { accept_loop(); });
}

TlsRelay::~TlsRelay() {
    stop_ = true;
    if (write(wake_[1], "x", 1) < 0) {}  // wakes the accept loop
    acceptor_.join();
    std::unique_lock<std::mutex> lock(mu_);
    for (int fd : open_) shutdown(fd, SHUT_RDWR);  // each connection's thread ends at once
    idle_.wait(lock, [this] { return active_ == 0; });
    lock.unlock();
    close(listen_fd_);
    close(wake_[0]);
    close(wake_[1]);
    SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

bool TlsRelay::from_relay(uint16_t port) const {
    std::lock_guard<std::mutex> lock(mu_);
    return ports_.count(port) != 0;
}

void TlsRelay::accept_loop() {
    while (!stop_) {
        pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0) continue;
        if (p[1].revents || stop_) return;
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        std::unique_lock<std::mutex> lock(mu_);
        if (active_ >= max_connections_) {
            lock.unlock();
            ++refused_;
            close(fd);
            continue;
        }
        ++active_;
        open_.insert(fd);
        lock.unlock();
        std::thread([this, fd] {
            serve(fd);
            std::lock_guard<std::mutex> g(mu_);
            open_.erase(fd);
            close(fd);
            --active_;
            idle_.notify_all();
        }).detach();
    }
}

void TlsRelay::serve(int fd) {
    set_timeouts(fd, timeout_ms_);  // the handshake too: a client that stalls it is let go
    SSL* ssl = SSL_new(static_cast<SSL_CTX*>(ctx_));
    if (!ssl) return;
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
        ++failed_;
        ERR_clear_error();
        SSL_free(ssl);
        return;
    }
    const int back = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in b{};
    b.sin_family = AF_INET;
    b.sin_port = htons(backend_port_);
    b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uint16_t local_port = 0;
    if (back >= 0) {
        // Bound first, so the port is known (and registered) before the server can see the connection.
        sockaddr_in l{};
        l.sin_family = AF_INET;
        l.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t ll = sizeof(l);
        if (bind(back, reinterpret_cast<sockaddr*>(&l), sizeof(l)) == 0 &&
            getsockname(back, reinterpret_cast<sockaddr*>(&l), &ll) == 0) {
            local_port = ntohs(l.sin_port);
            std::lock_guard<std::mutex> lock(mu_);
            ports_.insert(local_port);
        }
    }
    if (back >= 0 && local_port && connect(back, reinterpret_cast<sockaddr*>(&b), sizeof(b)) == 0) {
        const int one = 1;
        setsockopt(back, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        char buf[16384];
        bool open = true;
        while (open && !stop_) {
            // Bytes OpenSSL already decrypted do not show on the socket: take them first.
            if (SSL_pending(ssl) == 0) {
                pollfd p[2] = {{fd, POLLIN, 0}, {back, POLLIN, 0}};
                const int n = poll(p, 2, timeout_ms_);
                if (n <= 0) break;  // idle for the whole timeout
                if (p[1].revents) {
                    const ssize_t r = recv(back, buf, sizeof(buf), 0);
                    if (r <= 0 || SSL_write(ssl, buf, static_cast<int>(r)) <= 0) break;
                    continue;
                }
                if (!p[0].revents) continue;
            }
            const int r = SSL_read(ssl, buf, sizeof(buf));
            if (r <= 0) {
                const int e = SSL_get_error(ssl, r);
                open = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
                continue;
            }
            open = write_all(back, buf, static_cast<size_t>(r));
        }
        SSL_shutdown(ssl);
    }
    if (back >= 0) close(back);
    if (local_port) {
        std::lock_guard<std::mutex> lock(mu_);
        ports_.erase(local_port);
    }
    ERR_clear_error();
    SSL_free(ssl);
}

}  // namespace weir::web
