// SPDX-License-Identifier: BSD-3-Clause
// The ClickHouse exporter's sender thread against a small HTTP server on loopback written here:
// every row of every batch arrives once; a server that is down at first is retried until it
// answers (nothing lost, nothing twice); one that answers with errors costs counted losses; and
// finish() gives up on a server that never comes. Also run under ThreadSanitizer (tests/run.sh):
// the control thread and the sender share the queue and the counters.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "export/exporter.h"

namespace weir::exporter {
namespace {

// A one-connection-at-a-time HTTP/1.1 server: reads each request (headers, then the body by
// Content-Length), counts the body's lines, answers `status`.
class HttpServer {
public:
    explicit HttpServer(int status, uint16_t port = 0) : status_(status) {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        const int one = 1;
        setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
        socklen_t len = sizeof(a);
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        listen(fd_, 8);
        thread_ = std::thread([this] { run(); });
    }
    ~HttpServer() {
        stop_ = true;
        thread_.join();
        close(fd_);
    }
    uint16_t port() const { return port_; }
    uint64_t rows() const { return rows_.load(); }
    uint64_t requests() const { return requests_.load(); }

private:
    void run() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, 50) != 1) continue;
            const int c = accept(fd_, nullptr, nullptr);
            if (c < 0) continue;
            serve(c);
            close(c);
        }
    }
    void serve(int c) {
        std::string in;
        char buf[65536];
        for (;;) {  // requests on a kept-alive connection
            size_t head;
            while ((head = in.find("\r\n\r\n")) == std::string::npos) {
                pollfd p{c, POLLIN, 0};
                if (stop_ || poll(&p, 1, 200) != 1) {
                    if (stop_) return;
                    continue;
                }
                const ssize_t n = recv(c, buf, sizeof(buf), 0);
                if (n <= 0) return;
                in.append(buf, static_cast<size_t>(n));
            }
            const char* cl = strcasestr(in.c_str(), "Content-Length:");
            const size_t body_len = cl ? std::strtoul(cl + 15, nullptr, 10) : 0;
            while (in.size() < head + 4 + body_len) {
                const ssize_t n = recv(c, buf, sizeof(buf), 0);
                if (n <= 0) return;
                in.append(buf, static_cast<size_t>(n));
            }
            const std::string body = in.substr(head + 4, body_len);
            in.erase(0, head + 4 + body_len);
            ++requests_;
            if (status_ == 200)
                for (char ch : body) rows_ += ch == '\n';
            const std::string answer = "HTTP/1.1 " + std::to_string(status_) + (status_ == 200 ? " OK" : " Error") +
                "\r\nContent-Length: 0\r\n\r\n";
            send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
        }
    }
    int status_;
    int fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> rows_{0}, requests_{0};
    std::thread thread_;
};

std::vector<flow::FlowRecord> conversations(uint32_t n) {
    std::vector<flow::FlowRecord> v(n);
    for (uint32_t i = 0; i < n; ++i) {
        flow::FlowRecord& r = v[i];
        std::memset(&r, 0, sizeof(r));
        r.tuple.ip_version = 4;
        r.tuple.proto = 17;
        const uint32_t a = htonl(0x0A000001 + i);
        std::memcpy(r.tuple.src, &a, 4);
        r.tuple.sport = static_cast<uint16_t>(1000 + i);
        r.tuple.dport = 53;
        r.fwd = {2, 200, 1'700'000'000'000'000'000ull, 1'700'000'000'500'000'000ull, 0, 64, 64, 0, 0};
        r.end_reason = 1;
    }
    return v;
}

std::unique_ptr<Exporter> clickhouse(uint16_t port, uint32_t batch_rows) {
    config::Config cfg;
    cfg.probe = "unit";
    config::Exporter ex;
    ex.format = config::Format::kClickhouse;
    config::parse_url("http://127.0.0.1:" + std::to_string(port), ex);
    ex.batch_rows = batch_rows;
    ex.compress = false;
    return make_exporter(ex, cfg);
}

// Hands the records over in batches of 10, ticking as the control loop does, then finishes.
void feed(Exporter& e, const std::vector<flow::FlowRecord>& recs) {
    for (size_t i = 0; i < recs.size(); i += 10) {
        e.send_records(recs.data() + i, static_cast<uint32_t>(std::min<size_t>(10, recs.size() - i)), 1, 100);
        e.tick(100);
    }
}

}  // namespace

TEST(ClickHouse, EveryRowOnce) {
    HttpServer server(200);
    const auto recs = conversations(1000);
    auto e = clickhouse(server.port(), 64);
    feed(*e, recs);
    e->finish(100);
    EXPECT_EQ(server.rows(), 1000u);
    EXPECT_EQ(e->stats().records.get(), 1000u);
    EXPECT_EQ(e->stats().lost_records.get(), 0u);
    EXPECT_GE(e->stats().messages.get(), 1000u / 64);
}

TEST(ClickHouse, ServerDownAtFirstIsRetriedUntilItAnswers) {
    uint16_t port;
    {
        HttpServer probe(200);  // a port that is free again once this one closes
        port = probe.port();
    }
    const auto recs = conversations(300);
    auto e = clickhouse(port, 50);
    feed(*e, recs);
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // a few tries against nothing
    HttpServer server(200, port);
    e->finish(100);
    EXPECT_EQ(server.rows(), 300u) << "every row, once";
    EXPECT_EQ(e->stats().lost_records.get(), 0u);
    EXPECT_GT(e->stats().retries.get(), 0u);
}

TEST(ClickHouse, ErrorsAreCountedLost) {
    HttpServer server(500);
    const auto recs = conversations(100);
    auto e = clickhouse(server.port(), 50);
    feed(*e, recs);
    e->finish(100);
    EXPECT_EQ(e->stats().records.get(), 0u);
    EXPECT_EQ(e->stats().lost_records.get(), 100u);
    EXPECT_EQ(server.requests(), 2u * 3) << "two batches, three tries each";
}

}  // namespace weir::exporter
