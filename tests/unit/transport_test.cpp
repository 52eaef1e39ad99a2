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
#include <string>
#include <thread>

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

}  // namespace
}  // namespace weir::exporter
