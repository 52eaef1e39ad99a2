// SPDX-License-Identifier: BSD-3-Clause
// Header decode for the data plane: one captured frame, L2 to L4, into a PacketInfo of fields,
// through the data-center overlays (VXLAN, Geneve, GRE/NVGRE/ERSPAN, GTP-U, IP-in-IP, MPLS, ...)
// when the options ask for the inner flow. Called per packet by workers; no allocation, no
// exceptions, no syscalls. Every read is checked against the bytes available, so truncated and
// malformed frames are reported, never over-read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace weir::packet {

// Link types as libpcap's pcap_datalink() reports them (DLT_*), which is what a replayed capture
// declares; live ports are Ethernet.
enum LinkType : uint16_t {
    kLinkNull = 0,  // BSD loopback, 4-byte host-order family
    kLinkEthernet = 1,
    kLinkPpp = 9,
    kLinkPppSerial = 50,  // PPP in HDLC-like framing
    kLinkCiscoHdlc = 104,
    kLinkRaw = 12,         // DLT_RAW on Linux (LINKTYPE_RAW 101 in files)
    kLinkRawOpenBsd = 14,  // DLT_RAW on OpenBSD
    kLinkRawLinktype = 101,
    kLinkLoop = 108,  // OpenBSD loopback, 4-byte network-order family
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
    kNonIp,            // ARP, LLDP, STP, other ethertypes and LLC frames
    kUnsupportedLink,  // link type not decoded (802.11, PPP, ...)
    kTruncatedL2,      // frame ends inside the link-layer, VLAN, MPLS or PPPoE header
    kTruncatedIp,      // frame ends inside the IPv4/IPv6 header
    kBadIpHeader,      // version field wrong, IHL < 5, total length shorter than the header
    kTooManyHeaders,   // a link-layer header chain longer than any real one (64 headers)
    kCount
};
const char* drop_name(Drop d) noexcept;
constexpr size_t kDropCount = static_cast<size_t>(Drop::kCount);

// What identifies a directional flow, as seen in one packet. 40 bytes, no padding holes, so
// it can be hashed and compared as raw bytes.
struct Tuple {
    uint8_t src[16];  // IPv4 in the first 4 bytes, rest zero
    uint8_t dst[16];
    uint16_t sport;      // host order; 0 for protocols without ports and non-first fragments
    uint16_t dport;      // host order; ICMP/ICMPv6: type << 8 | code
    uint16_t vlan;       // first 802.1Q/802.1ad VLAN id of the frame carrying this IP header, 0 if none
    uint8_t proto;       // upper-layer protocol after IPv6 extension headers
    uint8_t ip_version;  // 4 or 6
};
static_assert(sizeof(Tuple) == 40);

enum Fragment : uint8_t { kNotFragment = 0, kFirstFragment = 1, kLaterFragment = 2 };

// The encapsulations weir opens. The values are exported (weir's tunnelType element, JSON,
// ClickHouse): never renumber them.
enum class TunnelType : uint8_t {
    kNone = 0,
    kVxlan = 1,     // RFC 7348, UDP 4789/8472; id: VNI
    kVxlanGpe = 2,  // VXLAN-GPE, UDP 4790, with NSH; id: VNI
    kGeneve = 3,    // RFC 8926, UDP 6081; id: VNI (options skipped)
    kGre = 4,       // RFC 2784/2890 (key, sequence, checksum), PPTP's GRE v1, GRE in UDP (4754); id: key
    kNvgre = 5,     // RFC 7637: GRE with Transparent Ethernet Bridging and a key; id: VSID
    kErspan = 6,    // ERSPAN type I, II, III over GRE; id: session
    kGtpU = 7,      // 3GPP TS 29.281, UDP 2152, with extension headers; id: 0 (TEIDs differ per direction)
    kIpInIp = 8,    // IPv4/IPv6 in IPv4/IPv6 (4in4, 6in4, 4in6, 6in6, SRv6 encapsulation)
    kMpls = 9,      // MPLS in IP (137), in GRE, in UDP (6635); id: the bottom label
    kTeredo = 10,   // RFC 4380, UDP 3544
    kPim = 11,      // PIM register (RFC 7761): the multicast data packet inside
    kCount
};
constexpr size_t kTunnelTypeCount = static_cast<size_t>(TunnelType::kCount);
const char* tunnel_name(TunnelType t) noexcept;

// Why decode stopped going inward while a tunnel header said there was more. The packet is
// accounted at the innermost layer decoded; each reason has a counter.
enum class TunnelStop : uint8_t {
    kNone = 0,
    kDepth,      // more nested tunnels than DecodeOptions::max_depth
    kPayload,    // the tunnel carries something other than IP: ARP, 802.11, a signalling message
    kTruncated,  // the capture ends inside the tunnel or its payload's headers
    kMalformed,  // a tunnel header or the inner IP header is invalid
    kCount
};
constexpr size_t kTunnelStopCount = static_cast<size_t>(TunnelStop::kCount);
const char* tunnel_stop_name(TunnelStop s) noexcept;

// Which headers a flow is keyed on when a packet is tunneled.
enum class TunnelMode : uint8_t {
    kOuter = 0,  // the outermost IP header: a VXLAN packet is a UDP flow between two VTEPs
    kInner = 1,  // the innermost IP header, with the tunnel's identity kept beside it
    kBoth = 2,   // the inner flow, and the tunnel's own (outer) flow as well
};

// How decode treats tunnels. Built once from the configuration; read-only on the workers.
class DecodeOptions {
public:
    DecodeOptions();  // inner mode, depth 4, IANA's and Linux's default UDP ports

    TunnelMode mode = TunnelMode::kInner;
    uint8_t max_depth = 4;      // tunnels opened one inside another, at most
    bool want_macs = false;     // copy the MAC addresses of the frame carrying the flow
    bool want_mpls = false;     // copy the top MPLS label stack entry of the captured frame
    bool want_payload = false;  // find the keyed layer's TCP/UDP payload (payload inspection)

    // UDP destination ports that carry a tunnel (VXLAN, VXLAN-GPE, Geneve, GTP-U, GRE, MPLS,
    // Teredo; Teredo matches either port). clear_udp_ports() removes them all.
    void set_udp_port(uint16_t port, TunnelType t) noexcept;
    void clear_udp_ports() noexcept;
    TunnelType udp_port(uint16_t port) const noexcept {
        if (!(bits_[port >> 6] >> (port & 63) & 1)) return TunnelType::kNone;
        for (uint32_t i = 0; i < nports_; ++i)
            if (ports_[i] == port) return types_[i];
        return TunnelType::kNone;
    }

private:
    static constexpr uint32_t kMaxPorts = 32;
    uint64_t bits_[1024] = {};
    uint16_t ports_[kMaxPorts] = {};
    TunnelType types_[kMaxPorts] = {};
    uint32_t nports_ = 0;
};

// One IP layer of a packet as a flow accounts it.
struct Layer {
    Tuple tuple;
    uint32_t ip_octets;  // IPv4 total length, or IPv6 payload length + 40: as the header says,
                         // whatever the snaplen cut (IPFIX octetDeltaCount)
    uint16_t cvlan;      // second (customer) VLAN id of a QinQ frame carrying this IP header
    uint8_t tcp_flags;   // 0 unless TCP with the flags byte captured
    uint8_t ttl;         // IPv4 TTL / IPv6 hop limit
    uint8_t tos;         // IPv4 ToS / IPv6 traffic class
    uint8_t fragment;    // Fragment
    bool l4_truncated;   // ports or flags were not in the captured bytes (counted, not dropped)
    uint8_t reserved;
};

// The tunnel that carried the flow's IP header (the innermost one when they nest): what the
// flow key keeps of the outer headers, so tenants with the same private addresses stay apart.
struct TunnelInfo {
    uint8_t depth;  // tunnels opened to reach the flow's IP header (0: not tunneled)
    bool entropy;   // a tunnel on the way rides UDP, whose source port varies per flow
    TunnelType type;
    uint8_t ip_version;  // of the delivery header (the IP header in front of the tunnel)
    uint32_t id;         // VNI, GRE key, NVGRE VSID, ERSPAN session, bottom MPLS label; 0 if none
    uint16_t vlan;       // VLAN of the frame carrying the delivery header
    uint16_t reserved;
    uint8_t src[16];  // delivery header's addresses, in this packet's direction
    uint8_t dst[16];
};

// Laid out so that an untunneled packet is written in its first cache line only: the layer, the
// flags, and the start of `tunnel` (depth).
struct alignas(64) PacketInfo : Layer {
    // The layer flows are keyed on is the Layer this derives from: the innermost IP header in
    // the inner and both modes, the outermost in the outer mode.
    TunnelStop stop;      // why decode went no deeper although a tunnel said there was more
    bool ipv6_ext_limit;  // more IPv6 extension headers than followed (accounted, not dropped)
    bool short_read;      // a header went past `avail` although more was captured: decode the
                          // frame again from contiguous bytes
    bool has_macs;
    bool has_outer_macs;
    bool unusual;  // any of l4_truncated, ipv6_ext_limit, short_read, stop: one test for all
    TunnelInfo tunnel;
    // For a tunneled packet (tunnel.depth > 0): its outermost IP layer, the tunnel's own flow in
    // the both mode.
    Layer outer;
    // With DecodeOptions::want_macs or want_mpls (else not written), 16 bytes a flow table keeps
    // as they are: destination then source MAC of the frame carrying the flow's IP (zero when the
    // link has none), then (host order, set_mpls) the top MPLS label stack entry of the captured
    // frame: label << 4 | traffic class << 1 | bottom of stack, with bit 24 set; 0 without MPLS.
    uint8_t macs[16];
    uint8_t outer_macs[16];  // ... of the outermost frame, when the packet is tunneled
    // With DecodeOptions::want_payload (else not written): the TCP or UDP payload of the layer
    // flows are keyed on, as far as it lies in the bytes decoded (`avail`): where it starts in the
    // frame and how many bytes of it are there. 0 bytes for other protocols, later fragments and
    // transport headers cut by the capture.
    uint32_t payload_off;
    uint32_t payload_len;
};

inline void set_mpls(uint8_t* macs16, uint32_t entry) noexcept { std::memcpy(macs16 + 12, &entry, 4); }
inline uint32_t mpls_of(const uint8_t* macs16) noexcept {
    uint32_t v;
    std::memcpy(&v, macs16 + 12, 4);
    return v;
}

// Decodes one frame of which `avail` bytes are at `frame` and `caplen` were captured (more
// than avail when the frame spans several buffers). Returns Drop::kNone and fills `out` when the
// frame carries IPv4 or IPv6.
Drop decode(const uint8_t* frame, uint32_t avail, uint32_t caplen, uint16_t linktype, const DecodeOptions& opt,
            PacketInfo& out) noexcept;

// The same with the whole frame contiguous and the default options (inner mode).
Drop decode(const uint8_t* frame, uint32_t caplen, uint16_t linktype, PacketInfo& out) noexcept;

}  // namespace weir::packet
