// Header decode for the data plane: one captured frame, L2 to L4, into a PacketInfo of fields.
// Called per packet by workers; no allocation, no exceptions, no syscalls. Every read is checked
// against the captured length, so truncated and malformed frames are reported, never over-read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weir::packet {

// Link types as libpcap's pcap_datalink() reports them (DLT_*), which is what a replayed capture
// declares; live ports are Ethernet.
enum LinkType : uint16_t {
    kLinkNull = 0,         // BSD loopback, 4-byte host-order family
    kLinkEthernet = 1,
    kLinkRaw = 12,         // DLT_RAW on Linux (LINKTYPE_RAW 101 in files)
    kLinkRawOpenBsd = 14,  // DLT_RAW on OpenBSD
    kLinkRawLinktype = 101,
    kLinkLoop = 108,       // OpenBSD loopback, 4-byte network-order family
    kLinkLinuxSll = 113,
    kLinkIpv4 = 228,
    kLinkIpv6 = 229,
    kLinkLinuxSll2 = 276,
};

// True for the link types decode() understands; others are counted as unsupported_link.
bool link_type_supported(uint16_t linktype) noexcept;

// Why a frame was not accounted to a flow. Each has a counter; the names are metric labels.
enum class Drop : uint8_t {
    kNone = 0,
    kNonIp,            // ARP, LLDP, STP, other ethertypes
    kUnsupportedLink,  // link type not decoded (802.11, PPP, ...)
    kTruncatedL2,      // frame ends inside the link-layer, VLAN, MPLS or PPPoE header
    kTruncatedIp,      // frame ends inside the IPv4/IPv6 header or an IPv6 extension header
    kBadIpHeader,      // version field wrong, IHL < 5, total length shorter than the header
    kTooManyHeaders,   // more VLAN tags, MPLS labels or IPv6 extension headers than we follow
    kCount
};
const char* drop_name(Drop d) noexcept;
constexpr size_t kDropCount = static_cast<size_t>(Drop::kCount);

// What identifies a directional flow, as seen in one packet. 40 bytes, no padding holes, so
// it can be hashed and compared as raw bytes.
struct Tuple {
    uint8_t src[16];     // IPv4 in the first 4 bytes, rest zero
    uint8_t dst[16];
    uint16_t sport;      // host order; 0 for protocols without ports and non-first fragments
    uint16_t dport;      // host order; ICMP/ICMPv6: type << 8 | code
    uint16_t vlan;       // outer 802.1Q/802.1ad VLAN id, 0 if untagged
    uint8_t proto;       // upper-layer protocol after IPv6 extension headers
    uint8_t ip_version;  // 4 or 6
};
static_assert(sizeof(Tuple) == 40);

enum Fragment : uint8_t { kNotFragment = 0, kFirstFragment = 1, kLaterFragment = 2 };

struct PacketInfo {
    Tuple tuple;
    uint32_t ip_octets;   // IPv4 total length, or IPv6 payload length + 40: as the header says,
                          // whatever the snaplen cut (IPFIX octetDeltaCount)
    uint8_t tcp_flags;    // 0 unless TCP with the flags byte captured
    uint8_t ttl;          // IPv4 TTL / IPv6 hop limit
    uint8_t tos;          // IPv4 ToS / IPv6 traffic class
    uint8_t fragment;     // Fragment
    bool l4_truncated;    // ports or flags were not in the captured bytes (counted, not dropped)
};

// Decodes one frame. Returns Drop::kNone and fills `out` when the frame carries IPv4 or IPv6.
Drop decode(const uint8_t* frame, uint32_t caplen, uint16_t linktype, PacketInfo& out) noexcept;

}  // namespace weir::packet
