// Decode: golden frames for each header kind, and truncated/malformed frames by reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "packet/decode.h"

using namespace weir::packet;
using Bytes = std::vector<uint8_t>;

namespace {

void put16(Bytes& b, uint16_t v) {
    b.push_back(v >> 8);
    b.push_back(v & 0xFF);
}
Bytes eth(uint16_t type) {
    Bytes b = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb};
    put16(b, type);
    return b;
}
Bytes ipv4(uint8_t proto, uint16_t total_len, uint16_t frag = 0, uint8_t ihl = 5, uint8_t ttl = 64, uint8_t tos = 0x10) {
    Bytes b = {static_cast<uint8_t>(0x40 | ihl), tos};
    put16(b, total_len);
    put16(b, 0x1234);
    put16(b, frag);
    b.push_back(ttl);
    b.push_back(proto);
    put16(b, 0);
    for (uint8_t x : {10, 0, 0, 1, 192, 168, 1, 2}) b.push_back(x);
    for (int i = 5; i < ihl; ++i) b.insert(b.end(), {1, 1, 1, 1});  // NOP options
    return b;
}
Bytes ipv6(uint8_t next, uint16_t plen, uint8_t hops = 32) {
    Bytes b = {0x6A, 0xB0, 0x00, 0x00};  // traffic class 0xAB
    put16(b, plen);
    b.push_back(next);
    b.push_back(hops);
    for (int i = 0; i < 15; ++i) b.push_back(0x20);
    b.push_back(0x01);
    for (int i = 0; i < 15; ++i) b.push_back(0x20);
    b.push_back(0x02);
    return b;
}
Bytes tcp(uint16_t sport, uint16_t dport, uint8_t flags) {
    Bytes b;
    put16(b, sport);
    put16(b, dport);
    b.insert(b.end(), 8, 0);
    b.push_back(0x50);
    b.push_back(flags);
    b.insert(b.end(), 6, 0);
    return b;
}
Bytes udp(uint16_t sport, uint16_t dport, uint16_t len = 8) {
    Bytes b;
    put16(b, sport);
    put16(b, dport);
    put16(b, len);
    put16(b, 0);
    return b;
}
Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}
Drop run(const Bytes& f, PacketInfo& pi, uint16_t lt = kLinkEthernet, size_t caplen = SIZE_MAX) {
    return decode(f.data(), static_cast<uint32_t>(std::min(caplen, f.size())), lt, pi);
}

}  // namespace

TEST(Decode, Ipv4TcpOverEthernet) {
    const Bytes f = cat({eth(0x0800), ipv4(6, 40), tcp(1234, 80, 0x12)});
    PacketInfo pi;
    ASSERT_EQ(run(f, pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.ip_version, 4);
    EXPECT_EQ(pi.tuple.proto, 6);
    EXPECT_EQ(pi.tuple.sport, 1234);
    EXPECT_EQ(pi.tuple.dport, 80);
    EXPECT_EQ(pi.tcp_flags, 0x12);
    EXPECT_EQ(pi.ip_octets, 40u);
    EXPECT_EQ(pi.ttl, 64);
    EXPECT_EQ(pi.tos, 0x10);
    EXPECT_EQ(pi.tuple.vlan, 0);
    const uint8_t src[16] = {10, 0, 0, 1};
    EXPECT_EQ(std::memcmp(pi.tuple.src, src, 16), 0);
    EXPECT_FALSE(pi.l4_truncated);
}

TEST(Decode, EthernetPaddingIsNotCounted) {
    // 28-byte IPv4/UDP datagram in a 60-byte frame: octets come from the IP header.
    Bytes f = cat({eth(0x0800), ipv4(17, 28), udp(53, 5353)});
    f.resize(60, 0);
    PacketInfo pi;
    ASSERT_EQ(run(f, pi), Drop::kNone);
    EXPECT_EQ(pi.ip_octets, 28u);
    EXPECT_EQ(pi.tuple.sport, 53);
}

TEST(Decode, SnaplenCutCountsHeaderLength) {
    const Bytes f = cat({eth(0x0800), ipv4(6, 1500), tcp(1, 2, 0x10), Bytes(1460, 0)});
    PacketInfo pi;
    ASSERT_EQ(run(f, pi, kLinkEthernet, 68), Drop::kNone);
    EXPECT_EQ(pi.ip_octets, 1500u);
    EXPECT_EQ(pi.tuple.dport, 2);
}

TEST(Decode, VlanAndQinQ) {
    Bytes tag = {0x00, 0x64, 0x08, 0x00};  // VID 100, then IPv4
    PacketInfo pi;
    ASSERT_EQ(run(cat({eth(0x8100), tag, ipv4(17, 28), udp(1, 2)}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.vlan, 100);
    Bytes outer = {0x20, 0x0A, 0x81, 0x00};  // PCP 1, VID 10, then 802.1Q
    Bytes inner = {0x00, 0x14, 0x86, 0xDD};  // VID 20, then IPv6
    ASSERT_EQ(run(cat({eth(0x88A8), outer, inner, ipv6(17, 8), udp(5, 6)}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.vlan, 10);  // the outer tag
    EXPECT_EQ(pi.tuple.ip_version, 6);
    EXPECT_EQ(pi.tuple.sport, 5);
}

TEST(Decode, TooManyVlanTags) {
    Bytes f = eth(0x8100);
    for (int i = 0; i < 6; ++i) f.insert(f.end(), {0x00, 0x01, 0x81, 0x00});
    PacketInfo pi;
    EXPECT_EQ(run(f, pi), Drop::kTooManyHeaders);
}

TEST(Decode, MplsStack) {
    Bytes labels = {0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40};  // two labels, second bottom
    PacketInfo pi;
    ASSERT_EQ(run(cat({eth(0x8847), labels, ipv4(6, 40), tcp(7, 8, 0x02)}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.sport, 7);
    EXPECT_EQ(run(cat({eth(0x8847), Bytes{0x00, 0x01}}), pi), Drop::kTruncatedL2);
}

TEST(Decode, PppoeSession) {
    Bytes pppoe = {0x11, 0x00, 0x00, 0x01, 0x00, 0x1e, 0x00, 0x21};
    PacketInfo pi;
    ASSERT_EQ(run(cat({eth(0x8864), pppoe, ipv4(17, 28), udp(9, 10)}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.dport, 10);
}

TEST(Decode, Ipv6ExtensionHeadersAndFragments) {
    // Hop-by-hop (8 bytes) then destination options (16 bytes) then TCP.
    Bytes hbh = {60, 0, 5, 2, 0, 0, 1, 0};
    Bytes dst = {6, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    PacketInfo pi;
    ASSERT_EQ(run(cat({eth(0x86DD), ipv6(0, 44), hbh, dst, tcp(443, 5000, 0x18)}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.proto, 6);
    EXPECT_EQ(pi.tuple.sport, 443);
    EXPECT_EQ(pi.ip_octets, 84u);
    EXPECT_EQ(pi.tos, 0xAB);
    EXPECT_EQ(pi.ttl, 32);
    // First fragment: ports are there.
    Bytes frag1 = {17, 0, 0x00, 0x01, 0, 0, 0, 7};
    ASSERT_EQ(run(cat({eth(0x86DD), ipv6(44, 16), frag1, udp(1000, 2000)}), pi), Drop::kNone);
    EXPECT_EQ(pi.fragment, kFirstFragment);
    EXPECT_EQ(pi.tuple.sport, 1000);
    // Later fragment: accounted under ports 0/0 with the fragment's upper protocol.
    Bytes frag2 = {17, 0, 0x00, 0xB8, 0, 0, 0, 7};
    ASSERT_EQ(run(cat({eth(0x86DD), ipv6(44, 16), frag2, Bytes(8, 0xEE)}), pi), Drop::kNone);
    EXPECT_EQ(pi.fragment, kLaterFragment);
    EXPECT_EQ(pi.tuple.proto, 17);
    EXPECT_EQ(pi.tuple.sport, 0);
    EXPECT_EQ(pi.tuple.dport, 0);
}

TEST(Decode, Ipv6CutInsideExtensionHeaderIsAccounted) {
    // Only the next-header byte of the hop-by-hop header is captured: it still says TCP.
    Bytes hbh = {6, 3};
    PacketInfo pi;
    ASSERT_EQ(run(cat({eth(0x86DD), ipv6(0, 40), hbh}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.proto, 6);
    EXPECT_EQ(pi.tuple.sport, 0);
    EXPECT_TRUE(pi.l4_truncated);
    EXPECT_EQ(pi.ip_octets, 80u);
    // Not even that: accounted under the extension header's own number.
    ASSERT_EQ(run(cat({eth(0x86DD), ipv6(0, 40), Bytes{6}}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.proto, 0);
    EXPECT_TRUE(pi.l4_truncated);
}

TEST(Decode, Ipv4Fragments) {
    PacketInfo pi;
    ASSERT_EQ(run(cat({eth(0x0800), ipv4(17, 28, 0x2000), udp(11, 12)}), pi), Drop::kNone);
    EXPECT_EQ(pi.fragment, kFirstFragment);
    EXPECT_EQ(pi.tuple.sport, 11);
    ASSERT_EQ(run(cat({eth(0x0800), ipv4(17, 28, 0x00B9), udp(11, 12)}), pi), Drop::kNone);
    EXPECT_EQ(pi.fragment, kLaterFragment);
    EXPECT_EQ(pi.tuple.sport, 0);  // the bytes there are payload, not ports
    EXPECT_EQ(pi.tuple.dport, 0);
}

TEST(Decode, Ipv4OptionsSkipped) {
    PacketInfo pi;
    ASSERT_EQ(run(cat({eth(0x0800), ipv4(6, 48, 0, 7), tcp(21, 22, 0x01)}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.sport, 21);
    EXPECT_EQ(pi.tcp_flags, 0x01);
}

TEST(Decode, IcmpTypeCode) {
    Bytes icmp = {8, 0, 0, 0, 0, 1, 0, 1};
    PacketInfo pi;
    ASSERT_EQ(run(cat({eth(0x0800), ipv4(1, 28), icmp}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.sport, 0);
    EXPECT_EQ(pi.tuple.dport, 0x0800);
    Bytes icmp6 = {135, 0, 0, 0};
    ASSERT_EQ(run(cat({eth(0x86DD), ipv6(58, 4), icmp6}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.dport, 135 << 8);
}

TEST(Decode, SctpPorts) {
    Bytes sctp = {0x0B, 0x59, 0x0B, 0x59, 0, 0, 0, 0, 0, 0, 0, 0};
    PacketInfo pi;
    ASSERT_EQ(run(cat({eth(0x0800), ipv4(132, 32), sctp}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.sport, 2905);
}

TEST(Decode, TcpHeaderCutAfterPorts) {
    const Bytes f = cat({eth(0x0800), ipv4(6, 40), tcp(80, 81, 0x02)});
    PacketInfo pi;
    ASSERT_EQ(run(f, pi, kLinkEthernet, 14 + 20 + 6), Drop::kNone);
    EXPECT_EQ(pi.tuple.sport, 80);
    EXPECT_EQ(pi.tcp_flags, 0);
    EXPECT_TRUE(pi.l4_truncated);
}

struct BadCase {
    const char* name;
    Bytes frame;
    uint16_t linktype;
    Drop want;
};

TEST(Decode, MalformedAndTruncatedFramesAreCountedByReason) {
    const BadCase cases[] = {
        {"empty", {}, kLinkEthernet, Drop::kTruncatedL2},
        {"half ethernet", Bytes(10, 0), kLinkEthernet, Drop::kTruncatedL2},
        {"arp", cat({eth(0x0806), Bytes(28, 0)}), kLinkEthernet, Drop::kNonIp},
        {"llc", cat({eth(0x0026), Bytes(38, 0)}), kLinkEthernet, Drop::kNonIp},
        {"vlan cut", cat({eth(0x8100), Bytes{0x00}}), kLinkEthernet, Drop::kTruncatedL2},
        {"ipv4 cut", cat({eth(0x0800), Bytes(19, 0x45)}), kLinkEthernet, Drop::kTruncatedIp},
        {"ipv6 cut", cat({eth(0x86DD), Bytes(39, 0x60)}), kLinkEthernet, Drop::kTruncatedIp},
        {"ihl 4", cat({eth(0x0800), ipv4(6, 40, 0, 4), Bytes(20, 0)}), kLinkEthernet, Drop::kBadIpHeader},
        {"total < header", cat({eth(0x0800), ipv4(6, 12), Bytes(20, 0)}), kLinkEthernet, Drop::kBadIpHeader},
        {"v6 in v4 ethertype", cat({eth(0x0800), ipv6(6, 20), Bytes(20, 0)}), kLinkEthernet, Drop::kBadIpHeader},
        {"802.11", Bytes(40, 0), 105, Drop::kUnsupportedLink},
        {"raw not ip", Bytes{0x12, 0x34}, kLinkRaw, Drop::kBadIpHeader},
        {"null family unknown", Bytes{7, 0, 0, 0, 0x45}, kLinkNull, Drop::kNonIp},
        {"sll cut", Bytes(15, 0), kLinkLinuxSll, Drop::kTruncatedL2},
    };
    for (const auto& c : cases) {
        PacketInfo pi;
        EXPECT_EQ(run(c.frame, pi, c.linktype), c.want) << c.name;
    }
}

TEST(Decode, OtherLinkTypes) {
    const Bytes ip = cat({ipv4(17, 28), udp(100, 200)});
    PacketInfo pi;
    ASSERT_EQ(run(ip, pi, kLinkRaw), Drop::kNone);
    EXPECT_EQ(pi.tuple.sport, 100);
    ASSERT_EQ(run(ip, pi, kLinkIpv4), Drop::kNone);
    ASSERT_EQ(run(cat({Bytes{2, 0, 0, 0}, ip}), pi, kLinkNull), Drop::kNone);   // little-endian AF_INET
    ASSERT_EQ(run(cat({Bytes{0, 0, 0, 2}, ip}), pi, kLinkNull), Drop::kNone);   // big-endian AF_INET
    ASSERT_EQ(run(cat({Bytes{0, 0, 0, 2}, ip}), pi, kLinkLoop), Drop::kNone);
    Bytes sll = Bytes(14, 0);
    put16(sll, 0x0800);
    ASSERT_EQ(run(cat({sll, ip}), pi, kLinkLinuxSll), Drop::kNone);
    Bytes sll2;
    put16(sll2, 0x0800);
    sll2.resize(20, 0);
    ASSERT_EQ(run(cat({sll2, ip}), pi, kLinkLinuxSll2), Drop::kNone);
    EXPECT_EQ(pi.tuple.dport, 200);
}

TEST(Decode, EveryPrefixOfAFrameIsSafe) {
    // Each truncation point gives an answer, never a read past caplen (ASan checks that).
    Bytes hbh = {6, 0, 5, 2, 0, 0, 1, 0};
    const Bytes frames[] = {
        cat({eth(0x8100), Bytes{0x00, 0x05, 0x86, 0xDD}, ipv6(0, 28), hbh, tcp(1, 2, 0x11)}),
        cat({eth(0x8847), Bytes{0x00, 0x01, 0x01, 0x40}, ipv4(6, 48, 0, 7), tcp(1, 2, 0x11)}),
    };
    for (const auto& f : frames)
        for (size_t n = 0; n <= f.size(); ++n) {
            Bytes copy(f.begin(), f.begin() + static_cast<long>(n));  // exact-size heap block
            PacketInfo pi;
            decode(copy.data(), static_cast<uint32_t>(n), kLinkEthernet, pi);
        }
}

TEST(Decode, DropNamesAreDistinct) {
    std::set<std::string> names;
    for (size_t d = 0; d < kDropCount; ++d) names.insert(drop_name(static_cast<Drop>(d)));
    EXPECT_EQ(names.size(), kDropCount);
}
