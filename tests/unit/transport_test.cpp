// SPDX-License-Identifier: BSD-3-Clause
// Transports against real sockets on the loopback interface.
#include "export/transport.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "export/exporter.h"
#include "flow/flow_record.h"

namespace weir::exporter {
namespace {

// A UDP port on 127.0.0.1 that nothing listens on (until listen() is called).
class UdpPort {
public:
    UdpPort() {
        fd_ = socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
        socklen_t len = sizeof(a);
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        close(fd_);  // free again: datagrams to it now draw ICMP port unreachable
        fd_ = -1;
    }
    ~UdpPort() {
        if (fd_ >= 0) close(fd_);
    }
    void listen() {
        fd_ = socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port_);
        ASSERT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    }
    // The next datagram, or "" after a second.
    std::string receive() {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 1000) != 1) return "";
        char buf[2048];
        const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    }
    uint16_t port() const { return port_; }
    // Whether a datagram is there now (not waiting for one).
    bool waiting() {
        char c;
        return recv(fd_, &c, 1, MSG_DONTWAIT | MSG_PEEK) >= 0;
    }

private:
    int fd_ = -1;
    uint16_t port_ = 0;
};

std::unique_ptr<Transport> udp_to(uint16_t port) {
    config::Exporter ex;
    ex.url = "udp://127.0.0.1:" + std::to_string(port);
    ex.scheme = config::Scheme::kUdp;
    ex.host = "127.0.0.1";
    ex.port = port;
    return make_transport(ex, config::Config{});
}

std::string numbered(char c, int i) {
    std::string s(1, c);
    s += std::to_string(i);
    return s;
}

bool send(Transport& t, const std::string& s) {
    return t.send(reinterpret_cast<const uint8_t*>(s.data()), s.size(), 0);
}

TEST(UdpTransport, ACollectorThatComesBackGetsTheNextDatagram) {
    UdpPort port;
    auto t = udp_to(port.port());
    EXPECT_TRUE(send(*t, "first"));  // out; nobody listens, an ICMP port unreachable comes back
    EXPECT_FALSE(t->take_refused());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    port.listen();  // the collector is back
    EXPECT_TRUE(send(*t, "second")) << "the pending refusal must not cost this datagram";
    EXPECT_TRUE(t->take_refused()) << "but it is reported";
    EXPECT_FALSE(t->take_refused());
    EXPECT_EQ(port.receive(), "second");
    EXPECT_TRUE(send(*t, "third"));
    EXPECT_FALSE(t->take_refused());
    EXPECT_EQ(port.receive(), "third");
}

TEST(UdpTransport, ACollectorThatStaysAwayIsReportedOnEverySend) {
    UdpPort port;
    auto t = udp_to(port.port());
    EXPECT_TRUE(send(*t, "a"));
    for (int i = 0; i < 3; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        EXPECT_TRUE(send(*t, "b"));
        EXPECT_TRUE(t->take_refused()) << i;
    }
}

// Batched (what the IPFIX exporter asks for): messages wait for flush(), or for a full queue,
// and leave in order, each a datagram of its own.
TEST(UdpTransport, BatchedMessagesLeaveAtFlushInOrder) {
    UdpPort port;
    port.listen();
    auto t = udp_to(port.port());
    t->batch();
    EXPECT_TRUE(t->batching());
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(send(*t, numbered('m', i)));
    EXPECT_FALSE(port.waiting()) << "nothing leaves before the flush";
    t->flush();
    for (int i = 0; i < 10; ++i) EXPECT_EQ(port.receive(), numbered('m', i));
    Transport::Lost l = t->take_lost();
    EXPECT_EQ(l.sent, 10u);
    EXPECT_EQ(l.failed, 0u);
    EXPECT_EQ(l.messages, 0u);
    // A full queue (64 messages) goes out by itself.
    for (int i = 0; i < 65; ++i) EXPECT_TRUE(send(*t, numbered('n', i)));
    for (int i = 0; i < 64; ++i) EXPECT_EQ(port.receive(), numbered('n', i));
    EXPECT_FALSE(port.waiting());
    t->flush();
    EXPECT_EQ(port.receive(), "n64");
    EXPECT_EQ(t->take_lost().sent, 65u);
}

TEST(UdpTransport, ABatchedDatagramThatCannotLeaveIsLostAndTheOthersGo) {
    UdpPort port;
    port.listen();
    config::Exporter ex;
    ex.url = "udp://127.0.0.1:" + std::to_string(port.port());
    ex.scheme = config::Scheme::kUdp;
    ex.host = "127.0.0.1";
    ex.port = port.port();
    config::Config cfg;
    cfg.mtu = 70000;  // messages up to 69,952 bytes, past what a UDP datagram can hold
    auto t = make_transport(ex, cfg);
    t->batch();
    const std::string big(66000, 'x');
    EXPECT_TRUE(send(*t, "before"));
    EXPECT_TRUE(t->send(reinterpret_cast<const uint8_t*>(big.data()), big.size(), 0, 5, 7));
    EXPECT_TRUE(send(*t, "after"));
    t->flush();
    EXPECT_EQ(port.receive(), "before");
    EXPECT_EQ(port.receive(), "after");
    const Transport::Lost l = t->take_lost();
    EXPECT_EQ(l.sent, 2u);
    EXPECT_EQ(l.failed, 1u);
    EXPECT_EQ(l.messages, 1u);
    EXPECT_EQ(l.records, 5u);
    EXPECT_EQ(l.packets, 7u);
    EXPECT_EQ(l.err, EMSGSIZE);
    EXPECT_EQ(t->take_lost().failed, 0u);
}

// NetFlow v9 over UDP queues its datagrams too and sends them at the control loop's flush: one
// that cannot leave is counted lost with the records it carried, and the next still goes.
TEST(NetflowExporter, BatchedDatagramsAreAccountedAtTheFlush) {
    UdpPort port;
    port.listen();
    config::Exporter ex;
    ex.format = config::Format::kNetflow9;
    ex.url = "udp://127.0.0.1:" + std::to_string(port.port());
    ex.scheme = config::Scheme::kUdp;
    ex.host = "127.0.0.1";
    ex.port = port.port();
    config::Config cfg;
    cfg.mtu = 70000;  // the first datagram is larger than UDP can carry
    auto e = make_exporter(ex, cfg);
    std::vector<flow::FlowRecord> recs(1500);
    for (uint32_t i = 0; i < recs.size(); ++i) {
        flow::FlowRecord& r = recs[i];
        std::memset(&r, 0, sizeof(r));
        r.tuple.ip_version = 4;
        r.tuple.proto = 17;
        const uint32_t a = htonl(0x0A000000u + i), b = htonl(0x0A0000FFu);
        std::memcpy(r.tuple.src, &a, 4);
        std::memcpy(r.tuple.dst, &b, 4);
        r.tuple.sport = 5000;
        r.tuple.dport = 53;
        const uint64_t t0 = 1'700'000'000'000'000'000ull;
        r.fwd = {1, 80, t0, t0, 0, 64, 64, 0, 0};
        r.end_reason = 1;
    }
    const uint32_t now_s = 1'700'000'000;
    e->send_records(recs.data(), static_cast<uint32_t>(recs.size()), 1, now_s);
    EXPECT_FALSE(port.waiting()) << "nothing leaves before the flush";
    const uint64_t queued = e->stats().records.get();
    EXPECT_EQ(queued, recs.size());
    e->flush(now_s);
    const std::string d = port.receive();
    ASSERT_GE(d.size(), 2u);
    EXPECT_EQ(d[0], 0);
    EXPECT_EQ(d[1], 9) << "a NetFlow v9 datagram";
    EXPECT_FALSE(port.waiting()) << "one datagram went, the large one did not";
    const ExporterStats& s = e->stats();
    EXPECT_GT(s.lost_records.get(), 1000u);
    EXPECT_GT(s.records.get(), 0u);
    EXPECT_EQ(s.records.get() + s.lost_records.get(), recs.size());
    EXPECT_EQ(s.lost_packets.get(), s.lost_records.get());
    EXPECT_EQ(s.send_errors.get(), 1u);
}

}  // namespace
}  // namespace weir::exporter
