// SPDX-License-Identifier: BSD-3-Clause
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
Bytes ipv4(uint8_t proto, uint16_t total_len, uint16_t frag = 0, uint8_t ihl = 5, uint8_t ttl = 64,
           uint8_t tos = 0x10) {
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

TEST(Decode, ManyVlanTagsAreFollowed) {
    // Six tags are unusual but valid: the packet is accounted, the first two tags kept.
    Bytes f = eth(0x8100);
    for (int i = 0; i < 5; ++i) f.insert(f.end(), {0x00, static_cast<uint8_t>(i + 1), 0x81, 0x00});
    f.insert(f.end(), {0x00, 0x06, 0x08, 0x00});
    f = cat({f, ipv4(17, 28), udp(1, 2)});
    PacketInfo pi;
    ASSERT_EQ(run(f, pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.vlan, 1);
    EXPECT_EQ(pi.cvlan, 2);
    // A chain longer than any real one is refused.
    Bytes g = eth(0x8100);
    for (int i = 0; i < 70; ++i) g.insert(g.end(), {0x00, 0x01, 0x81, 0x00});
    EXPECT_EQ(run(g, pi), Drop::kTooManyHeaders);
}

TEST(Decode, MplsStack) {
    Bytes labels = {0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40};  // two labels, second bottom
    PacketInfo pi;
    ASSERT_EQ(run(cat({eth(0x8847), labels, ipv4(6, 40), tcp(7, 8, 0x02)}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.sport, 7);
    EXPECT_EQ(run(cat({eth(0x8847), Bytes{0x00, 0x01}}), pi), Drop::kTruncatedL2);
}

TEST(Decode, MplsTopEntryWhenAsked) {
    // Top label 16 with traffic class 5, then label 32 at the bottom.
    Bytes labels = {0x00, 0x01, 0x0A, 0x40, 0x00, 0x02, 0x01, 0x40};
    const Bytes f = cat({eth(0x8847), labels, ipv4(6, 40), tcp(7, 8, 0x02)});
    DecodeOptions o;
    PacketInfo pi;
    ASSERT_EQ(decode(f.data(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()), kLinkEthernet, o, pi),
              Drop::kNone);
    EXPECT_FALSE(pi.has_macs);  // not asked
    o.want_mpls = true;
    ASSERT_EQ(decode(f.data(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()), kLinkEthernet, o, pi),
              Drop::kNone);
    EXPECT_TRUE(pi.has_macs);
    EXPECT_EQ(mpls_of(pi.macs), 1u << 24 | 16u << 4 | 5u << 1);
    EXPECT_EQ(pi.macs[0], 0);  // MACs were not asked for
    o.want_macs = true;
    ASSERT_EQ(decode(f.data(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()), kLinkEthernet, o, pi),
              Drop::kNone);
    EXPECT_EQ(pi.macs[1], 0x11);
    EXPECT_EQ(mpls_of(pi.macs), 1u << 24 | 16u << 4 | 5u << 1);
    // A plain frame takes the quick path: MACs, no MPLS entry.
    const Bytes plain = cat({eth(0x0800), ipv4(6, 40), tcp(7, 8, 0x02)});
    ASSERT_EQ(decode(plain.data(), static_cast<uint32_t>(plain.size()), static_cast<uint32_t>(plain.size()),
                     kLinkEthernet, o, pi),
              Drop::kNone);
    EXPECT_EQ(mpls_of(pi.macs), 0u);
    EXPECT_EQ(pi.macs[1], 0x11);
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
    // Only its first byte: that byte still names the next header, as Wireshark reads it.
    ASSERT_EQ(run(cat({eth(0x86DD), ipv6(0, 40), Bytes{6}}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.proto, 6);
    EXPECT_TRUE(pi.l4_truncated);
    // Not even that: accounted under the extension header's own number.
    ASSERT_EQ(run(cat({eth(0x86DD), ipv6(0, 40)}), pi), Drop::kNone);
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
        {"version 5", cat({eth(0x0800), Bytes{0x55}, Bytes(39, 0)}), kLinkEthernet, Drop::kBadIpHeader},
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
    ASSERT_EQ(run(cat({Bytes{2, 0, 0, 0}, ip}), pi, kLinkNull), Drop::kNone);  // little-endian AF_INET
    ASSERT_EQ(run(cat({Bytes{0, 0, 0, 2}, ip}), pi, kLinkNull), Drop::kNone);  // big-endian AF_INET
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

// ---- tunnels and unusual link layers ----------------------------------------------------

namespace {

Bytes ipv4_between(uint8_t proto, uint16_t total_len, std::initializer_list<uint8_t> src,
                   std::initializer_list<uint8_t> dst) {
    Bytes b = ipv4(proto, total_len);
    std::copy(src.begin(), src.end(), b.begin() + 12);
    std::copy(dst.begin(), dst.end(), b.begin() + 16);
    return b;
}
Bytes ipv6_between(uint8_t next, uint16_t plen, uint8_t src_last, uint8_t dst_last) {
    Bytes b = ipv6(next, plen);
    b[8 + 15] = src_last;
    b[24 + 15] = dst_last;
    return b;
}
// The tenant's packet: Ethernet, IPv4 192.168.0.1:1111 -> 192.168.0.2:80, TCP SYN.
Bytes tenant_v4(bool with_eth = true, uint16_t vlan = 0) {
    Bytes ip = ipv4_between(6, 40, {192, 168, 0, 1}, {192, 168, 0, 2});
    Bytes t = cat({ip, tcp(1111, 80, 0x02)});
    if (!with_eth) return t;
    if (vlan)
        return cat({eth(0x8100), Bytes{static_cast<uint8_t>(vlan >> 8), static_cast<uint8_t>(vlan), 0x08, 0x00}, t});
    return cat({eth(0x0800), t});
}
// Outer IPv4 10.1.1.1 -> 10.2.2.2 carrying `payload` with protocol `proto`.
Bytes outer_v4(uint8_t proto, const Bytes& payload) {
    return cat({eth(0x0800),
                ipv4_between(proto, static_cast<uint16_t>(20 + payload.size()), {10, 1, 1, 1}, {10, 2, 2, 2}),
                payload});
}
Bytes outer_udp(uint16_t sport, uint16_t dport, const Bytes& payload) {
    return outer_v4(17, cat({udp(sport, dport, static_cast<uint16_t>(8 + payload.size())), payload}));
}
Bytes vxlan_hdr(uint32_t vni) {
    return {0x08, 0, 0, 0, static_cast<uint8_t>(vni >> 16), static_cast<uint8_t>(vni >> 8), static_cast<uint8_t>(vni),
            0};
}
Bytes gre_hdr(uint16_t flags, uint16_t proto, std::initializer_list<uint32_t> words = {}) {
    Bytes b;
    put16(b, flags);
    put16(b, proto);
    for (uint32_t w : words) {
        put16(b, static_cast<uint16_t>(w >> 16));
        put16(b, static_cast<uint16_t>(w));
    }
    return b;
}

Drop run_opt(const Bytes& f, PacketInfo& pi, const DecodeOptions& o, size_t caplen = SIZE_MAX) {
    const uint32_t n = static_cast<uint32_t>(std::min(caplen, f.size()));
    return decode(f.data(), n, n, kLinkEthernet, o, pi);
}

void expect_tenant(const PacketInfo& pi) {
    EXPECT_EQ(pi.tuple.ip_version, 4);
    EXPECT_EQ(pi.tuple.src[0], 192);
    EXPECT_EQ(pi.tuple.dst[3], 2);
    EXPECT_EQ(pi.tuple.sport, 1111);
    EXPECT_EQ(pi.tuple.dport, 80);
    EXPECT_EQ(pi.tcp_flags, 0x02);
    EXPECT_EQ(pi.ip_octets, 40u);
}

void expect_outer_10(const PacketInfo& pi) {
    EXPECT_EQ(pi.tunnel.ip_version, 4);
    EXPECT_EQ(pi.tunnel.src[0], 10);
    EXPECT_EQ(pi.tunnel.src[3], 1);
    EXPECT_EQ(pi.tunnel.dst[3], 2);
    EXPECT_EQ(pi.outer.tuple.src[3], 1);
}

}  // namespace

TEST(Tunnels, VxlanInnerFlowKeepsTheTunnel) {
    const Bytes f = outer_udp(49152, 4789, cat({vxlan_hdr(0x123456), tenant_v4(true, 300)}));
    PacketInfo pi;
    ASSERT_EQ(run(f, pi), Drop::kNone);
    expect_tenant(pi);
    EXPECT_EQ(pi.tuple.vlan, 300);  // the tenant frame's own tag
    EXPECT_EQ(pi.tunnel.type, TunnelType::kVxlan);
    EXPECT_EQ(pi.tunnel.id, 0x123456u);
    EXPECT_EQ(pi.tunnel.depth, 1);
    EXPECT_TRUE(pi.tunnel.entropy);
    EXPECT_EQ(pi.stop, TunnelStop::kNone);
    expect_outer_10(pi);
    EXPECT_EQ(pi.outer.tuple.proto, 17);
    EXPECT_EQ(pi.outer.tuple.dport, 4789);
    EXPECT_EQ(pi.outer.ip_octets, f.size() - 14);
}

TEST(Tunnels, OuterModeLeavesTunnelsClosed) {
    const Bytes f = outer_udp(49152, 4789, cat({vxlan_hdr(7), tenant_v4()}));
    DecodeOptions o;
    o.mode = TunnelMode::kOuter;
    PacketInfo pi;
    ASSERT_EQ(run_opt(f, pi, o), Drop::kNone);
    EXPECT_EQ(pi.tunnel.depth, 0);
    EXPECT_EQ(pi.tuple.proto, 17);
    EXPECT_EQ(pi.tuple.dport, 4789);
}

TEST(Tunnels, UdpPortsAreConfigurable) {
    const Bytes f = outer_udp(1000, 9999, cat({vxlan_hdr(7), tenant_v4()}));
    PacketInfo pi;
    ASSERT_EQ(run(f, pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.depth, 0);  // 9999 is no tunnel port by default
    DecodeOptions o;
    o.set_udp_port(9999, TunnelType::kVxlan);
    ASSERT_EQ(run_opt(f, pi, o), Drop::kNone);
    EXPECT_EQ(pi.tunnel.type, TunnelType::kVxlan);
    expect_tenant(pi);
    o.clear_udp_ports();
    ASSERT_EQ(run_opt(outer_udp(1, 4789, cat({vxlan_hdr(7), tenant_v4()})), pi, o), Drop::kNone);
    EXPECT_EQ(pi.tunnel.depth, 0);
}

TEST(Tunnels, VxlanOverIpv6CarryingIpv6) {
    Bytes inner = cat({eth(0x86DD), ipv6_between(17, 8, 0x11, 0x22), udp(5353, 53)});
    Bytes payload = cat({udp(40000, 4789, static_cast<uint16_t>(8 + 8 + inner.size())), vxlan_hdr(42), inner});
    const Bytes f = cat({eth(0x86DD), ipv6_between(17, static_cast<uint16_t>(payload.size()), 0xA, 0xB), payload});
    PacketInfo pi;
    ASSERT_EQ(run(f, pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.ip_version, 6);
    EXPECT_EQ(pi.tuple.dport, 53);
    EXPECT_EQ(pi.tunnel.ip_version, 6);
    EXPECT_EQ(pi.tunnel.src[15], 0xA);
    EXPECT_EQ(pi.tunnel.id, 42u);
}

TEST(Tunnels, GeneveWithOptionsAndBothPayloads) {
    Bytes opts(8, 0xAB);                                           // two 4-byte words of options
    Bytes hdr = {0x02, 0x00, 0x65, 0x58, 0x00, 0x10, 0x01, 0x00};  // optlen 2 words, TEB, VNI 0x1001
    PacketInfo pi;
    ASSERT_EQ(run(outer_udp(1234, 6081, cat({hdr, opts, tenant_v4()})), pi), Drop::kNone);
    expect_tenant(pi);
    EXPECT_EQ(pi.tunnel.type, TunnelType::kGeneve);
    EXPECT_EQ(pi.tunnel.id, 0x1001u);
    Bytes hdr_ip = {0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x05, 0x00};  // no options, IPv4 payload
    ASSERT_EQ(run(outer_udp(1234, 6081, cat({hdr_ip, tenant_v4(false)})), pi), Drop::kNone);
    expect_tenant(pi);
    EXPECT_EQ(pi.tunnel.id, 5u);
    Bytes bad = {0x40, 0x00, 0x08, 0x00, 0, 0, 5, 0};  // version 1
    ASSERT_EQ(run(outer_udp(1234, 6081, cat({bad, tenant_v4(false)})), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.depth, 0);
    EXPECT_EQ(pi.stop, TunnelStop::kMalformed);
}

TEST(Tunnels, GreVariants) {
    PacketInfo pi;
    // Key, checksum and sequence present; IPv4 inside.
    ASSERT_EQ(run(outer_v4(47, cat({gre_hdr(0xB000, 0x0800, {0xFFFF0000, 0xCAFE, 9}), tenant_v4(false)})), pi),
              Drop::kNone);
    expect_tenant(pi);
    EXPECT_EQ(pi.tunnel.type, TunnelType::kGre);
    EXPECT_EQ(pi.tunnel.id, 0xCAFEu);
    EXPECT_FALSE(pi.tunnel.entropy);  // outer IP hashing keeps both directions together
    expect_outer_10(pi);
    // NVGRE: Transparent Ethernet Bridging with a key = VSID << 8 | flow id.
    ASSERT_EQ(run(outer_v4(47, cat({gre_hdr(0x2000, 0x6558, {0x00ABCD07}), tenant_v4()})), pi), Drop::kNone);
    expect_tenant(pi);
    EXPECT_EQ(pi.tunnel.type, TunnelType::kNvgre);
    EXPECT_EQ(pi.tunnel.id, 0xABCDu);
    // Plain Ethernet over GRE.
    ASSERT_EQ(run(outer_v4(47, cat({gre_hdr(0, 0x6558), tenant_v4()})), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.type, TunnelType::kGre);
    EXPECT_EQ(pi.tunnel.id, 0u);
    // ERSPAN type I (no sequence: the frame follows directly), II and III (with a sub-header).
    ASSERT_EQ(run(outer_v4(47, cat({gre_hdr(0, 0x88BE), tenant_v4()})), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.type, TunnelType::kErspan);
    expect_tenant(pi);
    Bytes e2 = {0x10, 0x64, 0x00, 0x2A, 0, 0, 0, 0};  // version 1, VLAN 100, session 42
    ASSERT_EQ(run(outer_v4(47, cat({gre_hdr(0x1000, 0x88BE, {5}), e2, tenant_v4()})), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.id, 42u);
    expect_tenant(pi);
    Bytes e3 = {0x20, 0x00, 0x00, 0x07, 0, 0, 0, 0, 0, 0, 0, 0x01};  // version 2, session 7, O flag
    ASSERT_EQ(run(outer_v4(47, cat({gre_hdr(0x1000, 0x22EB, {5}), e3, Bytes(8, 0), tenant_v4()})), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.id, 7u);
    expect_tenant(pi);
    // PPTP: enhanced GRE (version 1, key = length + call id, sequence), PPP with address and control.
    ASSERT_EQ(
        run(outer_v4(47,
                     cat({gre_hdr(0x3001, 0x880B, {0x00280001, 3}), Bytes{0xFF, 0x03, 0x00, 0x21}, tenant_v4(false)})),
            pi),
        Drop::kNone);
    expect_tenant(pi);
    EXPECT_EQ(pi.tunnel.id, 0u);  // call ids differ per direction: not part of the identity
    // MPLS over GRE: the bottom label is the id.
    ASSERT_EQ(
        run(outer_v4(
                47, cat({gre_hdr(0, 0x8847), Bytes{0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40}, tenant_v4(false)})),
            pi),
        Drop::kNone);
    EXPECT_EQ(pi.tunnel.type, TunnelType::kMpls);
    EXPECT_EQ(pi.tunnel.id, 0x20u);
    expect_tenant(pi);
    // GRE carrying something else (NHRP): accounted as the GRE flow, counted.
    ASSERT_EQ(run(outer_v4(47, cat({gre_hdr(0, 0x2001), Bytes(20, 0)})), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.depth, 0);
    EXPECT_EQ(pi.tuple.proto, 47);
    EXPECT_EQ(pi.stop, TunnelStop::kPayload);
}

TEST(Tunnels, GtpUWithExtensionHeaders) {
    // Version 1, PT, E flag; G-PDU; TEID; sequence/N-PDU/next type 0x85; one 4-byte extension.
    Bytes g = {0x34, 0xFF, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x85, 0x01, 0x10, 0x01, 0x00};
    PacketInfo pi;
    ASSERT_EQ(run(outer_udp(2152, 2152, cat({g, tenant_v4(false)})), pi), Drop::kNone);
    expect_tenant(pi);
    EXPECT_EQ(pi.tunnel.type, TunnelType::kGtpU);
    EXPECT_EQ(pi.tunnel.id, 0u);  // TEIDs differ per direction
    Bytes echo = {0x32, 0x01, 0x00, 0x04, 0, 0, 0, 0, 0, 1, 0, 0};
    ASSERT_EQ(run(outer_udp(2152, 2152, echo), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.depth, 0);
    EXPECT_EQ(pi.stop, TunnelStop::kPayload);
    Bytes zero_ext = {0x34, 0xFF, 0x00, 0x00, 0, 0, 0, 1, 0, 0, 0, 0x85, 0x00};
    ASSERT_EQ(run(outer_udp(2152, 2152, cat({zero_ext, tenant_v4(false)})), pi), Drop::kNone);
    EXPECT_EQ(pi.stop, TunnelStop::kMalformed);
}

TEST(Tunnels, IpInIpFamilies) {
    PacketInfo pi;
    ASSERT_EQ(run(outer_v4(4, tenant_v4(false)), pi), Drop::kNone);  // 4in4
    expect_tenant(pi);
    EXPECT_EQ(pi.tunnel.type, TunnelType::kIpInIp);
    Bytes v6 = cat({ipv6_between(6, 20, 1, 2), tcp(7, 8, 0x10)});
    ASSERT_EQ(run(outer_v4(41, v6), pi), Drop::kNone);  // 6in4
    EXPECT_EQ(pi.tuple.ip_version, 6);
    EXPECT_EQ(pi.tuple.sport, 7);
    const Bytes v4in6 = cat({eth(0x86DD), ipv6_between(4, 40, 0xA, 0xB), tenant_v4(false)});
    ASSERT_EQ(run(v4in6, pi), Drop::kNone);  // 4in6
    expect_tenant(pi);
    EXPECT_EQ(pi.tunnel.ip_version, 6);
    const Bytes v6in6in6 = cat({eth(0x86DD), ipv6_between(41, 100, 1, 2), ipv6_between(41, 60, 3, 4), v6});
    ASSERT_EQ(run(v6in6in6, pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.depth, 2);
    EXPECT_EQ(pi.tunnel.src[15], 3);  // the innermost tunnel's end points
    EXPECT_EQ(pi.outer.tuple.src[15], 1);
    EXPECT_EQ(pi.tuple.sport, 7);
    // 4 after an IPv4 header that is really IPv6: malformed, accounted outside.
    ASSERT_EQ(run(outer_v4(4, v6), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.depth, 0);
    EXPECT_EQ(pi.stop, TunnelStop::kMalformed);
}

TEST(Tunnels, MplsInUdpAndIp) {
    Bytes labels = {0x00, 0x0A, 0x01, 0x40};  // label 0xA0, bottom of stack
    PacketInfo pi;
    ASSERT_EQ(run(outer_udp(5000, 6635, cat({labels, tenant_v4(false)})), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.type, TunnelType::kMpls);
    EXPECT_EQ(pi.tunnel.id, 0xA0u);
    expect_tenant(pi);
    ASSERT_EQ(run(outer_v4(137, cat({labels, tenant_v4(false)})), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.id, 0xA0u);
    expect_tenant(pi);
}

TEST(Tunnels, TeredoWithIndicators) {
    Bytes v6 = cat({ipv6_between(17, 8, 1, 2), udp(1, 2)});
    Bytes auth = {0x00, 0x01, 0x02, 0x01, 0xAA, 0xBB, 0xCC, 1, 2, 3, 4, 5, 6, 7, 8, 0};  // id 2, auth 1, nonce, conf
    Bytes origin = {0x00, 0x00, 0x12, 0x34, 1, 2, 3, 4};
    PacketInfo pi;
    ASSERT_EQ(run(outer_udp(3544, 50000, cat({auth, origin, v6})), pi), Drop::kNone);  // the server's port as source
    EXPECT_EQ(pi.tunnel.type, TunnelType::kTeredo);
    EXPECT_EQ(pi.tuple.ip_version, 6);
    EXPECT_EQ(pi.tuple.dport, 2);
}

TEST(Tunnels, PimRegisterAndVxlanGpeWithNsh) {
    PacketInfo pi;
    Bytes reg = {0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    ASSERT_EQ(run(outer_v4(103, cat({reg, tenant_v4(false)})), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.type, TunnelType::kPim);
    expect_tenant(pi);
    Bytes hello = {0x20, 0x00, 0x00, 0x00, 0, 1, 0, 2};
    ASSERT_EQ(run(outer_v4(103, hello), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.depth, 0);
    EXPECT_EQ(pi.stop, TunnelStop::kNone);                         // not a register: nothing inside
    Bytes gpe = {0x0C, 0x00, 0x00, 0x04, 0x00, 0x00, 0x09, 0x00};  // P flag, next protocol NSH, VNI 9
    Bytes nsh = {0x00, 0x06, 0x01, 0x01, 0x00, 0x00, 0x01, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    ASSERT_EQ(run(outer_udp(1, 4790, cat({gpe, nsh, tenant_v4(false)})), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.type, TunnelType::kVxlanGpe);
    EXPECT_EQ(pi.tunnel.id, 9u);
    expect_tenant(pi);
}

TEST(Tunnels, NestingIsBounded) {
    Bytes f = tenant_v4();
    for (int i = 0; i < 6; ++i)
        f = outer_udp(static_cast<uint16_t>(100 + i), 4789, cat({vxlan_hdr(static_cast<uint32_t>(i)), f}));
    PacketInfo pi;
    ASSERT_EQ(run(f, pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.depth, 4);
    EXPECT_EQ(pi.stop, TunnelStop::kDepth);
    EXPECT_EQ(pi.tuple.proto, 17);  // the fourth tunnel's payload: still a VXLAN packet
    EXPECT_EQ(pi.tunnel.id, 2u);
    DecodeOptions o;
    o.max_depth = 8;
    ASSERT_EQ(run_opt(f, pi, o), Drop::kNone);
    EXPECT_EQ(pi.tunnel.depth, 6);
    EXPECT_EQ(pi.stop, TunnelStop::kNone);
    expect_tenant(pi);
    EXPECT_EQ(pi.tunnel.id, 0u);  // the innermost tunnel
}

TEST(Tunnels, NonIpPayloadIsAccountedOutside) {
    Bytes arp = cat({eth(0x0806), Bytes(28, 0)});
    PacketInfo pi;
    ASSERT_EQ(run(outer_udp(1, 4789, cat({vxlan_hdr(5), arp})), pi), Drop::kNone);
    EXPECT_EQ(pi.tunnel.depth, 0);
    EXPECT_EQ(pi.stop, TunnelStop::kPayload);
    EXPECT_EQ(pi.tuple.dport, 4789);
}

TEST(Tunnels, EveryPrefixOfATunnelFrameIsSafe) {
    // Cut at every byte: never a read past the end (ASan), never a drop once the outer IP
    // header is whole, and the tenant's flow only once its headers are there.
    const Bytes frames[] = {
        outer_udp(49152, 4789, cat({vxlan_hdr(1), tenant_v4(true, 7)})),
        outer_v4(47, cat({gre_hdr(0xB000, 0x0800, {0, 1, 2}), tenant_v4(false)})),
        outer_v4(47,
                 cat({gre_hdr(0x1000, 0x22EB, {5}), Bytes{0x20, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1}, Bytes(8, 0),
                      tenant_v4()})),
        outer_udp(2152, 2152,
                  cat({Bytes{0x34, 0xFF, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0x85, 0x01, 0x10, 0x01, 0x00}, tenant_v4(false)})),
        outer_udp(1, 6081, cat({Bytes{0x01, 0x00, 0x65, 0x58, 0, 0, 1, 0, 9, 9, 9, 9}, tenant_v4()})),
        outer_udp(
            1, 4790,
            cat({Bytes{0x0C, 0, 0, 4, 0, 0, 9, 0}, Bytes{0x00, 0x02, 0x01, 0x01, 0, 0, 1, 0xFF}, tenant_v4(false)})),
        outer_udp(3544, 9, cat({Bytes{0, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0}, ipv6_between(17, 8, 1, 2), udp(1, 2)})),
        outer_v4(4, cat({ipv4_between(4, 60, {10, 9, 9, 1}, {10, 9, 9, 2}), tenant_v4(false)})),
    };
    for (size_t k = 0; k < std::size(frames); ++k) {
        const Bytes& f = frames[k];
        for (size_t n = 0; n <= f.size(); ++n) {
            Bytes copy(f.begin(), f.begin() + static_cast<long>(n));
            PacketInfo pi;
            const Drop d = decode(copy.data(), static_cast<uint32_t>(n), kLinkEthernet, pi);
            if (n >= 34) {
                EXPECT_EQ(d, Drop::kNone) << "frame " << k << " cut at " << n;
            }
            if (n == f.size()) {
                EXPECT_GT(pi.tunnel.depth, 0) << "frame " << k;
            }
            if (d == Drop::kNone && pi.tunnel.depth > 0 && !pi.l4_truncated &&
                (pi.tuple.proto == 6 || pi.tuple.proto == 17)) {
                EXPECT_TRUE(pi.tuple.dport == 80 || pi.tuple.dport == 2) << "frame " << k << " cut at " << n;
            }
            EXPECT_FALSE(pi.short_read);  // the whole captured frame was at hand
        }
    }
}

TEST(Tunnels, HeadersAcrossBuffersAskForALinearCopy) {
    const Bytes f = outer_udp(49152, 4789, cat({vxlan_hdr(1), tenant_v4()}));
    PacketInfo pi;
    DecodeOptions o;
    // Only the first 60 bytes are contiguous; the frame has more.
    ASSERT_EQ(decode(f.data(), 60, static_cast<uint32_t>(f.size()), kLinkEthernet, o, pi), Drop::kNone);
    EXPECT_TRUE(pi.short_read);
    ASSERT_EQ(decode(f.data(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()), kLinkEthernet, o, pi),
              Drop::kNone);
    EXPECT_FALSE(pi.short_read);
    expect_tenant(pi);
    // A frame that really ends there is truncated, not short.
    ASSERT_EQ(decode(f.data(), 60, 60, kLinkEthernet, o, pi), Drop::kNone);
    EXPECT_FALSE(pi.short_read);
    EXPECT_EQ(pi.stop, TunnelStop::kTruncated);
}

TEST(Tunnels, OffloadedLengthComesFromTheWholeFrame) {
    // IPv4 total length 0 (segmentation offload on the capturing host): octets from the captured
    // length of the whole frame, not of the first buffer.
    Bytes f = cat({eth(0x0800), ipv4(6, 0), tcp(1, 2, 0x10), Bytes(6000, 0)});
    PacketInfo pi;
    DecodeOptions o;
    ASSERT_EQ(decode(f.data(), 2048, static_cast<uint32_t>(f.size()), kLinkEthernet, o, pi), Drop::kNone);
    EXPECT_EQ(pi.ip_octets, f.size() - 14);
}

TEST(Tunnels, Ipv6JumbogramAndLongChains) {
    // Hop-by-hop with the Jumbo Payload option (RFC 2675): the payload length field is 0.
    Bytes hbh = {58, 0, 0xC2, 4, 0x00, 0x01, 0x00, 0x00};
    PacketInfo pi;
    ASSERT_EQ(run(cat({eth(0x86DD), ipv6(0, 0), hbh, Bytes{128, 0, 0, 0}}), pi), Drop::kNone);
    EXPECT_EQ(pi.ip_octets, 65536u + 40);
    EXPECT_EQ(pi.tuple.proto, 58);
    // 100 destination-options headers, then UDP: followed to the end.
    auto chain_of = [](int n) {
        Bytes chain;
        for (int i = 0; i < n; ++i)
            chain.insert(chain.end(), {static_cast<uint8_t>(i + 1 == n ? 17 : 60), 0, 1, 4, 0, 0, 0, 0});
        return chain;
    };
    Bytes chain = chain_of(100);
    ASSERT_EQ(run(cat({eth(0x86DD), ipv6(60, static_cast<uint16_t>(chain.size() + 8)), chain, udp(1, 2)}), pi),
              Drop::kNone);
    EXPECT_FALSE(pi.ipv6_ext_limit);
    EXPECT_EQ(pi.tuple.proto, 17);
    EXPECT_EQ(pi.tuple.dport, 2);
    // 300: valid, but past what is followed; accounted under the header reached, and counted.
    chain = chain_of(300);
    ASSERT_EQ(run(cat({eth(0x86DD), ipv6(60, static_cast<uint16_t>(chain.size() + 8)), chain, udp(1, 2)}), pi),
              Drop::kNone);
    EXPECT_TRUE(pi.ipv6_ext_limit);
    EXPECT_EQ(pi.tuple.proto, 60);
    // A payload length of 0 without the option: no payload.
    ASSERT_EQ(run(cat({eth(0x86DD), ipv6(44, 0), Bytes{17, 0, 0, 0, 0, 0, 0, 1}, udp(1, 2)}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.proto, 44);
    EXPECT_EQ(pi.ip_octets, 40u);
}

TEST(Tunnels, Ipv6BehindTheIpv4TypeIsIpv6) {
    PacketInfo pi;
    ASSERT_EQ(run(cat({eth(0x0800), ipv6(17, 8), udp(9, 10)}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.ip_version, 6);
    EXPECT_EQ(pi.tuple.dport, 10);
}

TEST(LinkLayers, VendorShimsAndSnap) {
    PacketInfo pi;
    const Bytes ip = cat({ipv4(17, 28), udp(3, 4)});
    ASSERT_EQ(run(cat({eth(0x8926), Bytes{0x80, 0x01, 0x00, 0x02, 0x08, 0x00}, ip}), pi), Drop::kNone);  // VN-Tag
    EXPECT_EQ(pi.tuple.dport, 4);
    ASSERT_EQ(run(cat({eth(0x893F), Bytes{0, 0, 0, 1, 0, 0, 0x08, 0x00}, ip}), pi), Drop::kNone);  // E-Tag
    EXPECT_EQ(pi.tuple.dport, 4);
    ASSERT_EQ(run(cat({eth(0xD28B), Bytes{0, 1, 0, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 0x08, 0x00}, ip}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.dport, 4);  // Arista timestamp, 64-bit
    ASSERT_EQ(run(cat({eth(0xD28B), Bytes{0, 1, 0, 0x20, 1, 2, 3, 4, 5, 6, 0x08, 0x00}, ip}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.dport, 4);  // 48-bit
    EXPECT_EQ(run(cat({eth(0xD28B), Bytes{0, 2, 0, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 0x08, 0x00}, ip}), pi), Drop::kNonIp);
    Bytes snap = {0xAA, 0xAA, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00};
    ASSERT_EQ(run(cat({eth(static_cast<uint16_t>(8 + ip.size())), snap, ip}), pi), Drop::kNone);  // 802.3 LLC/SNAP
    EXPECT_EQ(pi.tuple.dport, 4);
    Bytes stp = {0x42, 0x42, 0x03, 0, 0, 0, 0, 0};
    EXPECT_EQ(run(cat({eth(38), stp, Bytes(30, 0)}), pi), Drop::kNonIp);
    // 802.1ah: B-tag, I-tag with the customer's addresses, then the customer's frame.
    Bytes pbb = cat({Bytes{0x00, 0x0A, 0x88, 0xE7, 0x00, 0x01, 0x00, 0x01}, Bytes(12, 0x5A), Bytes{0x08, 0x00}});
    DecodeOptions o;
    o.want_macs = true;
    ASSERT_EQ(run_opt(cat({eth(0x88A8), pbb, ip}), pi, o), Drop::kNone);
    EXPECT_EQ(pi.tuple.vlan, 10);
    EXPECT_TRUE(pi.has_macs);
    EXPECT_EQ(pi.macs[0], 0x5A);  // the customer's addresses, not the backbone's
    // MACsec with integrity only (SCI present): the frame is readable; encrypted, it is not.
    ASSERT_EQ(run(cat({eth(0x88E5), Bytes{0x20, 0, 0, 0, 0, 1}, Bytes(8, 0x11), Bytes{0x08, 0x00}, ip}), pi),
              Drop::kNone);
    EXPECT_EQ(pi.tuple.dport, 4);
    EXPECT_EQ(run(cat({eth(0x88E5), Bytes{0x2C, 0, 0, 0, 0, 1}, Bytes(8, 0x11), Bytes(40, 0x5A)}), pi), Drop::kNonIp);
    // Cisco FabricPath: FTag/TTL, then the original frame.
    ASSERT_EQ(run(cat({eth(0x8903), Bytes{0x00, 0x3F}, eth(0x0800), ip}), pi), Drop::kNone);
    EXPECT_EQ(pi.tuple.dport, 4);
    // PPP and Cisco HDLC link types of WAN captures.
    ASSERT_EQ(run(cat({Bytes{0xFF, 0x03, 0x00, 0x21}, ip}), pi, kLinkPpp), Drop::kNone);
    EXPECT_EQ(pi.tuple.dport, 4);
    ASSERT_EQ(run(cat({Bytes{0x02, 0x81, 0x00, 0x01, 0x01, 0x40}, ip}), pi, kLinkPppSerial), Drop::kNone);  // MPLS
    EXPECT_EQ(pi.tuple.dport, 4);
    EXPECT_EQ(run(cat({Bytes{0xC0, 0x21}, Bytes(10, 0)}), pi, kLinkPpp), Drop::kNonIp);  // LCP
    ASSERT_EQ(run(cat({Bytes{0x0F, 0x00, 0x08, 0x00}, ip}), pi, kLinkCiscoHdlc), Drop::kNone);
    EXPECT_EQ(pi.tuple.dport, 4);
    // An Ethernet pseudowire over MPLS with a control word.
    ASSERT_EQ(run(cat({eth(0x8847), Bytes{0x00, 0x01, 0x01, 0x40}, Bytes{0, 0, 0, 0}, eth(0x0800), ip}), pi),
              Drop::kNone);
    EXPECT_EQ(pi.tuple.dport, 4);
}

TEST(LinkLayers, MacAddressesOfTheTenantFrame) {
    DecodeOptions o;
    o.want_macs = true;
    Bytes inner = tenant_v4();
    for (int i = 0; i < 6; ++i) inner[i] = 0xD0, inner[6 + i] = 0x50;
    PacketInfo pi;
    ASSERT_EQ(run_opt(outer_udp(1, 4789, cat({vxlan_hdr(1), inner})), pi, o), Drop::kNone);
    ASSERT_TRUE(pi.has_macs);
    EXPECT_EQ(pi.macs[0], 0xD0);
    EXPECT_EQ(pi.macs[6], 0x50);
    ASSERT_TRUE(pi.has_outer_macs);
    EXPECT_EQ(pi.outer_macs[0], 0x00);
    EXPECT_EQ(pi.outer_macs[6], 0x66);
}

TEST(Tunnels, NamesAreDistinct) {
    std::set<std::string> names;
    for (size_t t = 0; t < kTunnelTypeCount; ++t) names.insert(tunnel_name(static_cast<TunnelType>(t)));
    EXPECT_EQ(names.size(), kTunnelTypeCount);
    std::set<std::string> stops;
    for (size_t s = 0; s < kTunnelStopCount; ++s) stops.insert(tunnel_stop_name(static_cast<TunnelStop>(s)));
    EXPECT_EQ(stops.size(), kTunnelStopCount);
}

TEST(Decode, PerPacketFieldsShareOneCacheLine) {
    // What decode writes for every packet (the layer, the flags, tunnel.depth and entropy) lies
    // in the first 64 bytes: an untunneled packet touches one line of its PacketInfo.
    PacketInfo pi;
    const auto* base = reinterpret_cast<const char*>(&pi);
    EXPECT_EQ(alignof(PacketInfo), 64u);
    EXPECT_LT(reinterpret_cast<const char*>(&pi.tunnel.entropy) - base, 64);
    EXPECT_LT(reinterpret_cast<const char*>(&pi.unusual) - base, 64);
    EXPECT_LT(reinterpret_cast<const char*>(&pi.reserved) - base, 64);
}

TEST(Decode, PayloadOfTheKeyedLayer) {
    DecodeOptions o;
    o.want_payload = true;
    const Bytes data = {'G', 'E', 'T', ' ', '/'};
    PacketInfo pi;
    // IPv4/TCP on the common path: payload after the 20-byte TCP header; padding not counted.
    Bytes f = cat({eth(0x0800), ipv4(6, 45), tcp(1, 80, 0x18), data, Bytes(6, 0)});
    ASSERT_EQ(run_opt(f, pi, o), Drop::kNone);
    EXPECT_EQ(pi.payload_off, 54u);
    EXPECT_EQ(pi.payload_len, 5u);
    // A TCP header with options (data offset 8 words); IPv4 options take the general way.
    Bytes t = tcp(1, 80, 0x18);
    t[12] = 0x80;
    t.insert(t.end(), 12, 1);
    f = cat({eth(0x0800), ipv4(6, 24 + 32 + 5, 0, 6), t, data});
    ASSERT_EQ(run_opt(f, pi, o), Drop::kNone);
    EXPECT_EQ(pi.payload_off, 14u + 24 + 32);
    EXPECT_EQ(pi.payload_len, 5u);
    // UDP inside VXLAN: the tenant's payload, in the inner mode.
    const Bytes inner = cat(
        {eth(0x0800), ipv4_between(17, 20 + 8 + 5, {192, 168, 0, 1}, {192, 168, 0, 2}), udp(53, 5353, 8 + 5), data});
    f = outer_udp(49152, 4789, cat({vxlan_hdr(7), inner}));
    ASSERT_EQ(run_opt(f, pi, o), Drop::kNone);
    EXPECT_EQ(pi.tunnel.depth, 1);
    EXPECT_EQ(pi.payload_len, 5u);
    EXPECT_EQ(std::memcmp(f.data() + pi.payload_off, "GET /", 5), 0);
    // Cut by the capture inside the payload: what is there; inside the TCP header: none.
    f = cat({eth(0x0800), ipv4(6, 45), tcp(1, 80, 0x18), data});
    ASSERT_EQ(run_opt(f, pi, o, 14 + 20 + 20 + 2), Drop::kNone);
    EXPECT_EQ(pi.payload_len, 2u);
    ASSERT_EQ(run_opt(f, pi, o, 14 + 20 + 16), Drop::kNone);
    EXPECT_EQ(pi.payload_len, 0u);
    // A later fragment has no transport header, so no payload.
    f = cat({eth(0x0800), ipv4(6, 45, 0x0010), tcp(1, 80, 0x18), data});
    ASSERT_EQ(run_opt(f, pi, o), Drop::kNone);
    EXPECT_EQ(pi.payload_len, 0u);
}
