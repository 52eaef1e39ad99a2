// SPDX-License-Identifier: BSD-3-Clause
#include "packet/decode.h"

#include <cstring>

namespace weir::packet {
namespace {

constexpr uint16_t kEthIpv4 = 0x0800;
constexpr uint16_t kEthIpv6 = 0x86DD;
constexpr uint16_t kEthVlan = 0x8100;
constexpr uint16_t kEthQinQ = 0x88A8;
constexpr uint16_t kEthQinQOld1 = 0x9100;
constexpr uint16_t kEthQinQOld2 = 0x9200;
constexpr uint16_t kEthQinQOld3 = 0x9300;
constexpr uint16_t kEthMplsUc = 0x8847;
constexpr uint16_t kEthMplsMc = 0x8848;
constexpr uint16_t kEthPppoeSession = 0x8864;
constexpr uint16_t kEthVnTag = 0x8926;    // Cisco VN-Tag
constexpr uint16_t kEthETag = 0x893F;     // IEEE 802.1BR E-Tag
constexpr uint16_t kEthPbb = 0x88E7;      // IEEE 802.1ah I-Tag (provider backbone bridging)
constexpr uint16_t kEthArista = 0xD28B;   // Arista vendor-specific: TAP aggregation timestamp
constexpr uint16_t kEthNsh = 0x894F;      // RFC 8300 network service header
constexpr uint16_t kEthTeb = 0x6558;      // Transparent Ethernet Bridging (GRE, Geneve)
constexpr uint16_t kEthErspan2 = 0x88BE;  // ERSPAN type I (no sequence) and II
constexpr uint16_t kEthErspan3 = 0x22EB;
constexpr uint16_t kEthPpp = 0x880B;         // PPP in (PPTP's) GRE
constexpr uint16_t kEthFabricPath = 0x8903;  // Cisco FabricPath: FTag/TTL, then the original frame
constexpr uint16_t kEthMacsec = 0x88E5;      // IEEE 802.1AE: readable only when not encrypted

constexpr int kMaxL2Headers = 64;
constexpr int kMaxIpv6ExtHeaders = 256;

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoIpIp = 4;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoDccp = 33;
constexpr uint8_t kProtoIpv6 = 41;
constexpr uint8_t kProtoGre = 47;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr uint8_t kProtoPim = 103;
constexpr uint8_t kProtoSctp = 132;
constexpr uint8_t kProtoUdpLite = 136;
constexpr uint8_t kProtoMplsInIp = 137;

inline uint16_t rd16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t rd24(const uint8_t* p) noexcept { return static_cast<uint32_t>(p[0] << 16 | p[1] << 8 | p[2]); }
inline uint32_t rd32(const uint8_t* p) noexcept {
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 |
        p[3];
}

// The bytes being decoded: `avail` of them readable at `f`, `caplen` captured in all. A read that
// fails only for want of contiguous bytes (the data exists further on in another buffer) is
// remembered, so the caller can decode again from a linear copy.
struct Cursor {
    const uint8_t* f;
    uint32_t avail;
    bool short_read = false;

    // True when [off, off + n) lies within `limit` (the logical end of what is being read) and is
    // readable here.
    bool has(uint32_t off, uint32_t n, uint32_t limit) noexcept {
        const uint64_t end = static_cast<uint64_t>(off) + n;
        if (end > limit) return false;
        if (end > avail) {
            short_read = true;
            return false;
        }
        return true;
    }
    uint8_t u8(uint32_t off) const noexcept { return f[off]; }
    uint16_t u16(uint32_t off) const noexcept { return rd16(f + off); }
    uint32_t u24(uint32_t off) const noexcept { return rd24(f + off); }
    uint32_t u32(uint32_t off) const noexcept { return rd32(f + off); }
};

// Where the network layer starts and which one it is, once a link layer is peeled off.
struct L2 {
    uint32_t l3 = 0;
    uint8_t version = 0;  // 4 or 6
    uint16_t vlan = 0;    // first tag
    uint16_t cvlan = 0;   // second tag (QinQ customer VLAN)
    int64_t mac = -1;     // offset of the Ethernet header in front of the IP header
    uint32_t mpls = 0;    // the first MPLS label stack entry met (PacketInfo::mpls)
    int tags = 0;
    int headers = 0;
};

Drop ethernet(Cursor& c, uint32_t off, uint32_t limit, L2& l2) noexcept;
Drop mpls(Cursor& c, uint32_t off, uint32_t limit, L2& l2, uint32_t* bottom_label) noexcept;
Drop nsh(Cursor& c, uint32_t off, uint32_t limit, L2& l2) noexcept;

inline Drop ip_by_version(Cursor& c, uint32_t off, uint32_t limit, L2& l2) noexcept {
    if (!c.has(off, 1, limit)) return Drop::kTruncatedL2;
    const uint8_t nibble = c.u8(off) >> 4;
    if (nibble != 4 && nibble != 6) return Drop::kNonIp;
    l2.l3 = off;
    l2.version = nibble;
    return Drop::kNone;
}

// The headers after an Ethernet type field: tags, MPLS, PPPoE, vendor shims, then IP.
Drop ethertype_chain(Cursor& c, uint32_t off, uint16_t type, uint32_t limit, L2& l2) noexcept {
    for (;;) {
        if (++l2.headers > kMaxL2Headers) return Drop::kTooManyHeaders;
        switch (type) {
            case kEthIpv4:
                l2.l3 = off;
                l2.version = 4;
                return Drop::kNone;
            case kEthIpv6:
                l2.l3 = off;
                l2.version = 6;
                return Drop::kNone;
            case kEthVlan:
            case kEthQinQ:
            case kEthQinQOld1:
            case kEthQinQOld2:
            case kEthQinQOld3:
                if (!c.has(off, 4, limit)) return Drop::kTruncatedL2;
                ++l2.tags;
                if (l2.tags == 1)
                    l2.vlan = c.u16(off) & 0x0FFF;
                else if (l2.tags == 2)
                    l2.cvlan = c.u16(off) & 0x0FFF;
                type = c.u16(off + 2);
                off += 4;
                break;
            case kEthVnTag:  // 4 bytes of tag after the type
                if (!c.has(off, 6, limit)) return Drop::kTruncatedL2;
                type = c.u16(off + 4);
                off += 6;
                break;
            case kEthETag:  // 6 bytes of tag after the type
                if (!c.has(off, 8, limit)) return Drop::kTruncatedL2;
                type = c.u16(off + 6);
                off += 8;
                break;
            case kEthArista: {  // subtype, version, a 64- or 48-bit timestamp (TAI or UTC), the real type
                if (!c.has(off, 4, limit)) return Drop::kTruncatedL2;
                const uint16_t sub = c.u16(off), ver = c.u16(off + 2);
                const uint32_t ts = (ver & 0xFF) == 0x10 ? 8 : (ver & 0xFF) == 0x20 ? 6 : 0;
                if (sub != 1 || ts == 0) return Drop::kNonIp;
                if (!c.has(off, 4 + ts + 2, limit)) return Drop::kTruncatedL2;
                type = c.u16(off + 4 + ts);
                off += 4 + ts + 2;
                break;
            }
            case kEthPbb:  // I-Tag, then the customer's MAC addresses and type
                if (!c.has(off, 18, limit)) return Drop::kTruncatedL2;
                l2.mac = off + 4;
                type = c.u16(off + 16);
                off += 18;
                break;
            case kEthMplsUc:
            case kEthMplsMc: return mpls(c, off, limit, l2, nullptr);
            case kEthPppoeSession: {
                if (!c.has(off, 8, limit)) return Drop::kTruncatedL2;
                const uint16_t ppp = c.u16(off + 6);
                off += 8;
                if (ppp == 0x0021)
                    type = kEthIpv4;
                else if (ppp == 0x0057)
                    type = kEthIpv6;
                else
                    return Drop::kNonIp;
                break;
            }
            case kEthNsh: return nsh(c, off, limit, l2);
            case kEthFabricPath:
                if (!c.has(off, 2, limit)) return Drop::kTruncatedL2;
                return ethernet(c, off + 2, limit, l2);
            case kEthMacsec: {  // SecTAG: TCI/AN, short length, packet number, SCI when SC is set
                if (!c.has(off, 6, limit)) return Drop::kTruncatedL2;
                const uint8_t tci = c.u8(off);
                if (tci & 0x0C) return Drop::kNonIp;  // encrypted (E) or changed (C): nothing to read
                const uint32_t len = (tci & 0x20) ? 14 : 6;
                if (!c.has(off, len + 2, limit)) return Drop::kTruncatedL2;
                type = c.u16(off + len);
                off += len + 2;
                break;
            }
            default: return Drop::kNonIp;
        }
    }
}

// An Ethernet header at `off` (Ethernet II, or 802.3 with LLC/SNAP) and what follows it.
Drop ethernet(Cursor& c, uint32_t off, uint32_t limit, L2& l2) noexcept {
    if (!c.has(off, 14, limit)) return Drop::kTruncatedL2;
    l2.mac = off;
    uint16_t type = c.u16(off + 12);
    off += 14;
    if (type < 0x0600) {  // 802.3 length field: LLC, and SNAP when it carries an Ethernet type
        if (!c.has(off, 3, limit)) return Drop::kTruncatedL2;
        if (c.u8(off) != 0xAA || c.u8(off + 1) != 0xAA || c.u8(off + 2) != 0x03)
            return Drop::kNonIp;  // STP, CDP, NetBIOS
        if (!c.has(off, 8, limit)) return Drop::kTruncatedL2;
        const uint32_t oui = c.u24(off + 3);
        if (oui != 0 && oui != 0xF8) return Drop::kNonIp;  // a vendor protocol (CDP, VTP, ...)
        type = c.u16(off + 6);
        off += 8;
    }
    return ethertype_chain(c, off, type, limit, l2);
}

// After the bottom of an MPLS stack: IP by its version nibble, or an Ethernet pseudowire behind
// the control word (first nibble 0, RFC 4385).
Drop mpls(Cursor& c, uint32_t off, uint32_t limit, L2& l2, uint32_t* bottom_label) noexcept {
    for (;;) {
        if (++l2.headers > kMaxL2Headers) return Drop::kTooManyHeaders;
        if (!c.has(off, 4, limit)) return Drop::kTruncatedL2;
        const uint32_t label = c.u32(off);
        if (!l2.mpls) l2.mpls = 1u << 24 | label >> 8;
        off += 4;
        if (label & 0x100) {
            if (bottom_label) *bottom_label = label >> 12;
            break;
        }
    }
    if (!c.has(off, 1, limit)) return Drop::kTruncatedL2;
    if ((c.u8(off) >> 4) == 0) {
        if (!c.has(off, 4, limit)) return Drop::kTruncatedL2;
        return ethernet(c, off + 4, limit, l2);
    }
    return ip_by_version(c, off, limit, l2);
}

// Next protocol numbers of VXLAN-GPE and NSH.
Drop next_protocol(Cursor& c, uint8_t np, uint32_t off, uint32_t limit, L2& l2) noexcept {
    switch (np) {
        case 1: l2.l3 = off, l2.version = 4; return Drop::kNone;
        case 2: l2.l3 = off, l2.version = 6; return Drop::kNone;
        case 3: return ethernet(c, off, limit, l2);
        case 4: return nsh(c, off, limit, l2);
        case 5: return mpls(c, off, limit, l2, nullptr);
        default: return Drop::kNonIp;
    }
}

Drop nsh(Cursor& c, uint32_t off, uint32_t limit, L2& l2) noexcept {
    if (++l2.headers > kMaxL2Headers) return Drop::kTooManyHeaders;
    if (!c.has(off, 8, limit)) return Drop::kTruncatedL2;
    const uint32_t len = (c.u16(off) & 0x3F) * 4u;
    if (len < 8) return Drop::kBadIpHeader;
    if (!c.has(off, len, limit)) return Drop::kTruncatedL2;
    return next_protocol(c, c.u8(off + 3), off + len, limit, l2);
}

// A PPP frame (RFC 1661/1662): address and control when present, the protocol field (one byte
// when compressed), then IPv4, IPv6 or MPLS.
Drop ppp_frame(Cursor& c, uint32_t off, uint32_t limit, L2& l2) noexcept {
    if (!c.has(off, 2, limit)) return Drop::kTruncatedL2;
    if (c.u8(off) == 0xFF && c.u8(off + 1) == 0x03) off += 2;
    if (!c.has(off, 1, limit)) return Drop::kTruncatedL2;
    uint16_t proto = c.u8(off);
    if (proto & 1) {
        off += 1;
    } else {
        if (!c.has(off, 2, limit)) return Drop::kTruncatedL2;
        proto = c.u16(off);
        off += 2;
    }
    switch (proto) {
        case 0x0021: return ethertype_chain(c, off, kEthIpv4, limit, l2);
        case 0x0057: return ethertype_chain(c, off, kEthIpv6, limit, l2);
        case 0x0281:
        case 0x0283: return mpls(c, off, limit, l2, nullptr);
        default: return Drop::kNonIp;  // LCP, IPCP, CHAP, ...
    }
}

Drop link_layer(Cursor& c, uint32_t caplen, uint16_t linktype, L2& l2) noexcept {
    switch (linktype) {
        case kLinkEthernet: return ethernet(c, 0, caplen, l2);
        case kLinkPpp:
        case kLinkPppSerial: return ppp_frame(c, 0, caplen, l2);
        case kLinkCiscoHdlc:  // address, control, then an Ethernet type
            if (!c.has(0, 4, caplen)) return Drop::kTruncatedL2;
            return ethertype_chain(c, 4, c.u16(2), caplen, l2);
        case kLinkLinuxSll:
            if (!c.has(0, 16, caplen)) return Drop::kTruncatedL2;
            return ethertype_chain(c, 16, c.u16(14), caplen, l2);
        case kLinkLinuxSll2:
            if (!c.has(0, 20, caplen)) return Drop::kTruncatedL2;
            return ethertype_chain(c, 20, c.u16(0), caplen, l2);
        case kLinkNull:
        case kLinkLoop: {
            if (!c.has(0, 4, caplen)) return Drop::kTruncatedL2;
            // The family is in the capturing host's byte order for DLT_NULL: try both.
            uint32_t le, be;
            std::memcpy(&le, c.f, 4);
            be = __builtin_bswap32(le);
            const uint32_t fam = (linktype == kLinkLoop || (le > 0xFFFF)) ? be : le;
            l2.l3 = 4;
            if (fam == 2)
                l2.version = 4;
            else if (fam == 10 || fam == 24 || fam == 28 || fam == 30)
                l2.version = 6;
            else
                return Drop::kNonIp;
            return Drop::kNone;
        }
        case kLinkRaw:
        case kLinkRawOpenBsd:
        case kLinkRawLinktype: {
            if (!c.has(0, 1, caplen)) return Drop::kTruncatedL2;
            const uint8_t nibble = c.u8(0) >> 4;
            if (nibble != 4 && nibble != 6) return Drop::kBadIpHeader;
            l2.l3 = 0;
            l2.version = nibble;
            return Drop::kNone;
        }
        case kLinkIpv4:
            l2.l3 = 0;
            l2.version = 4;
            return Drop::kNone;
        case kLinkIpv6:
            l2.l3 = 0;
            l2.version = 6;
            return Drop::kNone;
        default: return Drop::kUnsupportedLink;
    }
}

// Where a layer's transport header starts and where its datagram ends.
struct L4 {
    uint32_t off = 0;
    uint32_t end = 0;      // end of the datagram within what may be read (padding excluded)
    bool present = false;  // false for later fragments and headers cut by the capture
};

// Ports, ICMP type/code and TCP flags from the transport header at `off`.
void transport(Cursor& c, uint32_t off, uint32_t end, Layer& out) noexcept {
    Tuple& t = out.tuple;
    switch (t.proto) {
        case kProtoTcp:
            if (!c.has(off, 14, end)) {
                out.l4_truncated = true;
                if (!c.has(off, 4, end)) return;
            } else {
                out.tcp_flags = c.u8(off + 13);
            }
            t.sport = c.u16(off);
            t.dport = c.u16(off + 2);
            return;
        case kProtoUdp:
        case kProtoSctp:
        case kProtoUdpLite:
        case kProtoDccp:
            if (!c.has(off, 4, end)) {
                out.l4_truncated = true;
                return;
            }
            t.sport = c.u16(off);
            t.dport = c.u16(off + 2);
            return;
        case kProtoIcmp:
        case kProtoIcmpv6:
            if (!c.has(off, 2, end)) {
                out.l4_truncated = true;
                return;
            }
            t.dport = c.u16(off);
            return;
        default: return;
    }
}

// An IPv4 header at `off`; `limit` is where the enclosing frame or tunnel payload ends.
Drop ipv4(Cursor& c, uint32_t off, uint32_t limit, Layer& out, L4& l4) noexcept {
    if (!c.has(off, 20, limit)) return Drop::kTruncatedIp;
    if ((c.u8(off) >> 4) != 4) return Drop::kBadIpHeader;
    const uint32_t hlen = (c.u8(off) & 0x0F) * 4u;
    if (hlen < 20) return Drop::kBadIpHeader;
    uint32_t total = c.u16(off + 2);
    if (total == 0) total = limit - off;  // segmentation offload on the capturing host
    if (total < hlen) return Drop::kBadIpHeader;
    Tuple& t = out.tuple;
    t.ip_version = 4;
    t.proto = c.u8(off + 9);
    std::memcpy(t.src, c.f + off + 12, 4);
    std::memcpy(t.dst, c.f + off + 16, 4);
    out.ip_octets = total;
    out.tos = c.u8(off + 1);
    out.ttl = c.u8(off + 8);
    const uint16_t frag = c.u16(off + 6);
    if ((frag & 0x1FFF) != 0) {
        out.fragment = kLaterFragment;  // no transport header: accounted with ports 0/0
        return Drop::kNone;
    }
    if (frag & 0x2000) out.fragment = kFirstFragment;
    if (!c.has(off, hlen, limit)) {  // options cut by the snaplen
        out.l4_truncated = true;
        return Drop::kNone;
    }
    l4.off = off + hlen;
    l4.end = off + total < limit ? off + total : limit;  // ignore Ethernet padding
    l4.present = true;
    transport(c, l4.off, l4.end, out);
    return Drop::kNone;
}

Drop ipv6(Cursor& c, uint32_t off, uint32_t limit, Layer& out, L4& l4, bool& ext_limit) noexcept {
    if (!c.has(off, 40, limit)) return Drop::kTruncatedIp;
    if ((c.u8(off) >> 4) != 6) return Drop::kBadIpHeader;
    Tuple& t = out.tuple;
    t.ip_version = 6;
    std::memcpy(t.src, c.f + off + 8, 16);
    std::memcpy(t.dst, c.f + off + 24, 16);
    const uint32_t plen = c.u16(off + 4);
    out.ip_octets = plen + 40;
    out.tos = static_cast<uint8_t>(((c.u8(off) & 0x0F) << 4) | (c.u8(off + 1) >> 4));
    out.ttl = c.u8(off + 7);
    uint8_t next = c.u8(off + 6);
    uint32_t pos = off + 40;
    // Bytes past the payload length are padding. A length of 0 means no payload, except for a
    // jumbogram (RFC 2675), whose hop-by-hop Jumbo Payload option holds the length.
    uint32_t end = off + 40 + plen;
    if (plen == 0 && next == 0 && c.has(pos, 2, limit)) {
        const uint32_t hend = pos + (c.u8(pos + 1) + 1u) * 8u;
        for (uint32_t o = pos + 2; o < hend && c.has(o, 1, limit);) {
            const uint8_t type = c.u8(o);
            if (type == 0) {  // Pad1
                ++o;
                continue;
            }
            if (!c.has(o, 2, limit)) break;
            if (type == 0xC2 && c.u8(o + 1) == 4 && c.has(o, 6, limit)) {
                const uint64_t jumbo = c.u32(o + 2);
                out.ip_octets = static_cast<uint32_t>(jumbo + 40 > UINT32_MAX ? UINT32_MAX : jumbo + 40);
                end = jumbo + 40 + off > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(off + 40 + jumbo);
                break;
            }
            o += 2u + c.u8(o + 1);
        }
    }
    if (end > limit) end = limit;
    for (int n = 0;; ++n) {
        uint32_t len;
        switch (next) {
            case 0:    // hop-by-hop options
            case 43:   // routing
            case 60:   // destination options
            case 135:  // mobility
            case 62:   // mobility, as the drafts before RFC 3775 numbered it (Wireshark follows them too)
            case 139:  // HIP
            case 140:  // shim6
                if (!c.has(pos, 2, end)) goto truncated;
                len = (c.u8(pos + 1) + 1u) * 8u;
                break;
            case 51:  // authentication header
                if (!c.has(pos, 2, end)) goto truncated;
                len = (c.u8(pos + 1) + 2u) * 4u;
                break;
            case 44: {  // fragment
                if (!c.has(pos, 8, end)) goto truncated;
                const uint16_t fo = c.u16(pos + 2);
                if ((fo & 0xFFF8) != 0) {
                    t.proto = c.u8(pos);
                    out.fragment = kLaterFragment;
                    return Drop::kNone;
                }
                if (fo & 1) out.fragment = kFirstFragment;
                len = 8;
                break;
            }
            default:
                t.proto = next;
                l4.off = pos;
                l4.end = end;
                l4.present = true;
                transport(c, pos, end, out);
                return Drop::kNone;
        }
        if (n == kMaxIpv6ExtHeaders) {
            // A valid but absurd chain: accounted under the header reached, ports unknown.
            ext_limit = true;
            t.proto = next;
            out.l4_truncated = true;
            return Drop::kNone;
        }
        next = c.u8(pos);
        pos += len;
    }
truncated:
    // The fixed header is there: account the packet under the header we could not pass, or under
    // the one it names when its first byte (the next header) was captured. A fragment header is
    // believed only whole (its offset decides whether the byte names a header at all).
    t.proto = next != 44 && c.has(pos, 1, end) ? c.u8(pos) : next;
    out.l4_truncated = true;
    return Drop::kNone;
}

// The IP header at l2.l3. Its own version field decides: an IPv6 header behind the IPv4 type (or
// the reverse) is decoded as what it is, as Wireshark does.
Drop ip_layer(Cursor& c, const L2& l2, uint32_t limit, Layer& out, L4& l4, bool& ext_limit) noexcept {
    uint8_t version = l2.version;
    if (c.has(l2.l3, 1, limit)) {
        const uint8_t nibble = c.u8(l2.l3) >> 4;
        if (nibble == 4 || nibble == 6) version = nibble;
    }
    return version == 4 ? ipv4(c, l2.l3, limit, out, l4) : ipv6(c, l2.l3, limit, out, l4, ext_limit);
}

TunnelStop stop_of(Drop d) noexcept {
    switch (d) {
        case Drop::kNonIp: return TunnelStop::kPayload;
        case Drop::kTruncatedL2:
        case Drop::kTruncatedIp: return TunnelStop::kTruncated;
        default: return TunnelStop::kMalformed;
    }
}

// One tunnel header behind the layer `cur`: its type and id, and where its payload's IP header
// is (through Ethernet, MPLS, NSH or PPP as the tunnel says).
struct Hop {
    TunnelType type = TunnelType::kNone;
    uint32_t id = 0;
    bool entropy = false;
    TunnelStop stop = TunnelStop::kNone;
    L2 l2;
};

void ppp(Cursor& c, uint32_t off, uint32_t limit, Hop& h) noexcept {
    if (!c.has(off, 1, limit)) {
        h.stop = TunnelStop::kTruncated;
        return;
    }
    if (c.u8(off) == 0xFF) {  // address and control
        if (!c.has(off, 2, limit)) {
            h.stop = TunnelStop::kTruncated;
            return;
        }
        off += 2;
    }
    if (!c.has(off, 1, limit)) {
        h.stop = TunnelStop::kTruncated;
        return;
    }
    uint16_t proto = c.u8(off);
    if (proto & 1) {  // compressed one-byte protocol field
        off += 1;
    } else {
        if (!c.has(off, 2, limit)) {
            h.stop = TunnelStop::kTruncated;
            return;
        }
        proto = c.u16(off);
        off += 2;
    }
    if (proto == 0x21)
        h.l2.l3 = off, h.l2.version = 4;
    else if (proto == 0x57)
        h.l2.l3 = off, h.l2.version = 6;
    else
        h.stop = TunnelStop::kPayload;
}

void gre(Cursor& c, uint32_t off, uint32_t limit, Hop& h) noexcept {
    h.type = TunnelType::kGre;
    if (!c.has(off, 4, limit)) {
        h.stop = TunnelStop::kTruncated;
        return;
    }
    const uint16_t flags = c.u16(off);
    const uint16_t proto = c.u16(off + 2);
    const uint32_t ver = flags & 7;
    uint32_t len = 4;
    bool keyed = false;
    uint32_t key = 0;
    if (ver == 0) {
        if (flags & 0x4000) {  // source routing (RFC 1701): obsolete, not followed
            h.stop = TunnelStop::kMalformed;
            return;
        }
        if (flags & 0x8000) len += 4;  // checksum and reserved
        if (flags & 0x2000) {
            if (!c.has(off, len + 4, limit)) {
                h.stop = TunnelStop::kTruncated;
                return;
            }
            keyed = true;
            key = c.u32(off + len);
            len += 4;
        }
        if (flags & 0x1000) len += 4;  // sequence number
    } else if (ver == 1 && (flags & 0x2000)) {
        // PPTP's enhanced GRE: payload length and call id (which differs per direction, so it
        // stays out of the flow key), optional sequence and acknowledgment numbers.
        len += 4;
        if (flags & 0x1000) len += 4;
        if (flags & 0x0080) len += 4;
    } else {
        h.stop = TunnelStop::kMalformed;
        return;
    }
    if (!c.has(off, len, limit)) {
        h.stop = TunnelStop::kTruncated;
        return;
    }
    off += len;
    h.id = keyed ? key : 0;
    Drop d = Drop::kNone;
    switch (proto) {
        case kEthIpv4: h.l2.l3 = off, h.l2.version = 4; break;
        case kEthIpv6: h.l2.l3 = off, h.l2.version = 6; break;
        case kEthTeb:
            if (keyed) {
                h.type = TunnelType::kNvgre;
                h.id = key >> 8;  // the virtual subnet id; the low byte is a flow id
            }
            d = ethernet(c, off, limit, h.l2);
            break;
        case kEthErspan2:
            h.type = TunnelType::kErspan;
            if (flags & 0x1000) {  // type II: an 8-byte header with version 1
                if (!c.has(off, 8, limit)) {
                    h.stop = TunnelStop::kTruncated;
                    return;
                }
                if ((c.u8(off) >> 4) != 1) {
                    h.stop = TunnelStop::kMalformed;
                    return;
                }
                h.id = c.u16(off + 2) & 0x3FF;
                off += 8;
            } else {
                h.id = 0;  // type I: the mirrored frame follows the GRE header directly
            }
            d = ethernet(c, off, limit, h.l2);
            break;
        case kEthErspan3: {
            h.type = TunnelType::kErspan;
            if (!c.has(off, 12, limit)) {
                h.stop = TunnelStop::kTruncated;
                return;
            }
            if ((c.u8(off) >> 4) != 2) {
                h.stop = TunnelStop::kMalformed;
                return;
            }
            h.id = c.u16(off + 2) & 0x3FF;
            const uint32_t hdr = 12 + ((c.u8(off + 11) & 1) ? 8 : 0);  // optional platform sub-header
            d = ethernet(c, off + hdr, limit, h.l2);
            break;
        }
        case kEthMplsUc:
        case kEthMplsMc:
            h.type = TunnelType::kMpls;
            d = mpls(c, off, limit, h.l2, &h.id);
            break;
        case kEthPpp: ppp(c, off, limit, h); return;
        default:  // NHRP, keepalives, WCCP, 802.11 from wireless controllers, ...
            h.stop = TunnelStop::kPayload;
            return;
    }
    if (d != Drop::kNone) h.stop = stop_of(d);
}

void gtpu(Cursor& c, uint32_t off, uint32_t limit, Hop& h) noexcept {
    h.type = TunnelType::kGtpU;
    if (!c.has(off, 8, limit)) {
        h.stop = TunnelStop::kTruncated;
        return;
    }
    const uint8_t flags = c.u8(off);
    if ((flags >> 5) != 1 || !(flags & 0x10)) {  // GTPv1, protocol type GTP (not GTP')
        h.stop = TunnelStop::kMalformed;
        return;
    }
    if (c.u8(off + 1) != 0xFF) {  // echo, error indication, end marker: no user packet inside
        h.stop = TunnelStop::kPayload;
        return;
    }
    uint32_t len = 8;
    if (flags & 0x07) {  // sequence number, N-PDU number, next extension header type
        if (!c.has(off, 12, limit)) {
            h.stop = TunnelStop::kTruncated;
            return;
        }
        uint8_t next = c.u8(off + 11);
        len = 12;
        for (int n = 0; next != 0; ++n) {
            if (n == 16) {
                h.stop = TunnelStop::kMalformed;
                return;
            }
            if (!c.has(off + len, 1, limit)) {
                h.stop = TunnelStop::kTruncated;
                return;
            }
            const uint32_t elen = c.u8(off + len) * 4u;
            if (elen == 0) {
                h.stop = TunnelStop::kMalformed;
                return;
            }
            if (!c.has(off + len, elen, limit)) {
                h.stop = TunnelStop::kTruncated;
                return;
            }
            next = c.u8(off + len + elen - 1);
            len += elen;
        }
    }
    const Drop d = ip_by_version(c, off + len, limit, h.l2);
    if (d != Drop::kNone) h.stop = stop_of(d);
}

void teredo(Cursor& c, uint32_t off, uint32_t limit, Hop& h) noexcept {
    h.type = TunnelType::kTeredo;
    if (c.has(off, 2, limit) && c.u16(off) == 0x0001) {  // authentication indicator
        if (!c.has(off, 4, limit)) {
            h.stop = TunnelStop::kTruncated;
            return;
        }
        off += 4 + c.u8(off + 2) + c.u8(off + 3) + 8 + 1;
    }
    if (c.has(off, 2, limit) && c.u16(off) == 0x0000) off += 8;  // origin indication
    if (!c.has(off, 1, limit)) {
        h.stop = TunnelStop::kTruncated;
        return;
    }
    if ((c.u8(off) >> 4) != 6) {
        h.stop = TunnelStop::kPayload;
        return;
    }
    h.l2.l3 = off;
    h.l2.version = 6;
}

// The tunnel behind `cur` (decoded with transport `l4`), if there is one.
bool next_hop(Cursor& c, const DecodeOptions& opt, const Layer& cur, const L4& l4, Hop& h) noexcept {
    if (!l4.present) return false;  // later fragment, or headers cut before the transport header
    const uint32_t off = l4.off, end = l4.end;
    switch (cur.tuple.proto) {
        case kProtoUdp: {
            if (cur.l4_truncated) return false;
            TunnelType t = opt.udp_port(cur.tuple.dport);
            if (t == TunnelType::kNone) {
                t = opt.udp_port(cur.tuple.sport);
                if (t != TunnelType::kTeredo) return false;  // only Teredo's server port may be the source
            }
            h.entropy = true;
            h.type = t;
            const uint32_t p = off + 8;
            switch (t) {
                case TunnelType::kVxlan:
                    if (!c.has(p, 8, end)) {
                        h.stop = TunnelStop::kTruncated;
                        return true;
                    }
                    h.id = c.u24(p + 4);
                    if (const Drop d = ethernet(c, p + 8, end, h.l2); d != Drop::kNone) h.stop = stop_of(d);
                    return true;
                case TunnelType::kVxlanGpe: {
                    if (!c.has(p, 8, end)) {
                        h.stop = TunnelStop::kTruncated;
                        return true;
                    }
                    h.id = c.u24(p + 4);
                    const uint8_t np = (c.u8(p) & 0x04) ? c.u8(p + 3) : 3;
                    if (const Drop d = next_protocol(c, np, p + 8, end, h.l2); d != Drop::kNone) h.stop = stop_of(d);
                    return true;
                }
                case TunnelType::kGeneve: {
                    if (!c.has(p, 8, end)) {
                        h.stop = TunnelStop::kTruncated;
                        return true;
                    }
                    if (c.u8(p) >> 6) {
                        h.stop = TunnelStop::kMalformed;  // unknown version
                        return true;
                    }
                    const uint32_t len = 8 + (c.u8(p) & 0x3F) * 4u;
                    const uint16_t proto = c.u16(p + 2);
                    h.id = c.u24(p + 4);
                    if (!c.has(p, len, end)) {
                        h.stop = TunnelStop::kTruncated;
                        return true;
                    }
                    Drop d = Drop::kNone;
                    if (proto == kEthTeb)
                        d = ethernet(c, p + len, end, h.l2);
                    else if (proto == kEthIpv4)
                        h.l2.l3 = p + len, h.l2.version = 4;
                    else if (proto == kEthIpv6)
                        h.l2.l3 = p + len, h.l2.version = 6;
                    else
                        d = Drop::kNonIp;
                    if (d != Drop::kNone) h.stop = stop_of(d);
                    return true;
                }
                case TunnelType::kGtpU: gtpu(c, p, end, h); return true;
                case TunnelType::kGre: gre(c, p, end, h); return true;
                case TunnelType::kMpls:
                    if (const Drop d = mpls(c, p, end, h.l2, &h.id); d != Drop::kNone) h.stop = stop_of(d);
                    return true;
                case TunnelType::kTeredo: teredo(c, p, end, h); return true;
                default: return false;
            }
        }
        case kProtoGre: gre(c, off, end, h); return true;
        case kProtoIpIp:
        case kProtoIpv6: {
            h.type = TunnelType::kIpInIp;
            const uint8_t want = cur.tuple.proto == kProtoIpIp ? 4 : 6;
            if (!c.has(off, 1, end)) {
                h.stop = TunnelStop::kTruncated;
            } else if ((c.u8(off) >> 4) != want) {
                h.stop = TunnelStop::kMalformed;
            } else {
                h.l2.l3 = off;
                h.l2.version = want;
            }
            return true;
        }
        case kProtoMplsInIp:
            h.type = TunnelType::kMpls;
            if (const Drop d = mpls(c, off, end, h.l2, &h.id); d != Drop::kNone) h.stop = stop_of(d);
            return true;
        case kProtoPim:
            // Only a Register (version 2, type 1) carries a packet: after its 8-byte header.
            if (!c.has(off, 8, end) || c.u8(off) != 0x21) return false;
            h.type = TunnelType::kPim;
            if (const Drop d = ip_by_version(c, off + 8, end, h.l2); d != Drop::kNone) h.stop = stop_of(d);
            return true;
        default: return false;
    }
}

// Opens the tunnels behind the outermost layer, as far as the options allow.
void tunnels(Cursor& c, const DecodeOptions& opt, PacketInfo& out, L4& l4, int64_t& mac) noexcept {
    for (;;) {
        Hop h;
        if (!next_hop(c, opt, out, l4, h)) return;
        if (out.tunnel.depth == opt.max_depth) {
            out.stop = TunnelStop::kDepth;
            return;
        }
        if (h.stop != TunnelStop::kNone) {
            out.stop = h.stop;
            return;
        }
        Layer in{};
        L4 l4i;
        bool ext_limit = false;
        const Drop d = ip_layer(c, h.l2, l4.end, in, l4i, ext_limit);
        if (d != Drop::kNone) {
            out.stop = stop_of(d);
            return;
        }
        TunnelInfo& t = out.tunnel;
        if (t.depth == 0) out.outer = out;
        t.type = h.type;
        t.id = h.id;
        t.ip_version = out.tuple.ip_version;
        t.entropy = t.entropy || h.entropy;
        t.vlan = out.tuple.vlan;
        std::memcpy(t.src, out.tuple.src, 16);
        std::memcpy(t.dst, out.tuple.dst, 16);
        ++t.depth;
        in.tuple.vlan = h.l2.vlan;
        in.cvlan = h.l2.cvlan;
        static_cast<Layer&>(out) = in;
        out.ipv6_ext_limit = out.ipv6_ext_limit || ext_limit;
        if (h.l2.mac >= 0) mac = h.l2.mac;
        l4 = l4i;
    }
}

// The TCP or UDP payload of the keyed layer, within the bytes that may be read.
void payload(const Cursor& c, PacketInfo& out, const L4& l4) noexcept {
    if (!l4.present || out.l4_truncated) return;
    const uint8_t proto = out.tuple.proto;
    uint32_t hdr;
    if (proto == kProtoTcp) {
        if (l4.off + 13 > c.avail) return;
        hdr = (c.u8(l4.off + 12) >> 4) * 4u;
        if (hdr < 20) return;
    } else if (proto == kProtoUdp) {
        hdr = 8;
    } else {
        return;
    }
    const uint32_t end = l4.end < c.avail ? l4.end : c.avail;
    if (l4.off + hdr >= end) return;
    out.payload_off = l4.off + hdr;
    out.payload_len = end - out.payload_off;
}

}  // namespace

DecodeOptions::DecodeOptions() {
    set_udp_port(4789, TunnelType::kVxlan);  // IANA
    set_udp_port(8472, TunnelType::kVxlan);  // Linux's default before IANA's
    set_udp_port(4790, TunnelType::kVxlanGpe);
    set_udp_port(6081, TunnelType::kGeneve);
    set_udp_port(2152, TunnelType::kGtpU);
    set_udp_port(4754, TunnelType::kGre);   // GRE in UDP, RFC 8086
    set_udp_port(6635, TunnelType::kMpls);  // MPLS in UDP, RFC 7510
    set_udp_port(3544, TunnelType::kTeredo);
}

void DecodeOptions::set_udp_port(uint16_t port, TunnelType t) noexcept {
    for (uint32_t i = 0; i < nports_; ++i)
        if (ports_[i] == port) {
            types_[i] = t;
            return;
        }
    if (nports_ == kMaxPorts || t == TunnelType::kNone) return;
    ports_[nports_] = port;
    types_[nports_] = t;
    ++nports_;
    bits_[port >> 6] |= 1ull << (port & 63);
}

void DecodeOptions::clear_udp_ports() noexcept {
    std::memset(bits_, 0, sizeof(bits_));
    nports_ = 0;
}

bool link_type_supported(uint16_t linktype) noexcept {
    switch (linktype) {
        case kLinkNull:
        case kLinkEthernet:
        case kLinkRaw:
        case kLinkRawOpenBsd:
        case kLinkRawLinktype:
        case kLinkLoop:
        case kLinkLinuxSll:
        case kLinkIpv4:
        case kLinkIpv6:
        case kLinkLinuxSll2:
        case kLinkPpp:
        case kLinkPppSerial:
        case kLinkCiscoHdlc: return true;
        default: return false;
    }
}

const char* drop_name(Drop d) noexcept {
    switch (d) {
        case Drop::kNone: return "none";
        case Drop::kNonIp: return "non_ip";
        case Drop::kUnsupportedLink: return "unsupported_link";
        case Drop::kTruncatedL2: return "truncated_l2";
        case Drop::kTruncatedIp: return "truncated_ip";
        case Drop::kBadIpHeader: return "bad_ip_header";
        case Drop::kTooManyHeaders: return "too_many_headers";
        case Drop::kCount: break;
    }
    return "unknown";
}

const char* tunnel_name(TunnelType t) noexcept {
    switch (t) {
        case TunnelType::kNone: return "none";
        case TunnelType::kVxlan: return "vxlan";
        case TunnelType::kVxlanGpe: return "vxlan_gpe";
        case TunnelType::kGeneve: return "geneve";
        case TunnelType::kGre: return "gre";
        case TunnelType::kNvgre: return "nvgre";
        case TunnelType::kErspan: return "erspan";
        case TunnelType::kGtpU: return "gtpu";
        case TunnelType::kIpInIp: return "ipip";
        case TunnelType::kMpls: return "mpls";
        case TunnelType::kTeredo: return "teredo";
        case TunnelType::kPim: return "pim";
        case TunnelType::kCount: break;
    }
    return "unknown";
}

const char* tunnel_stop_name(TunnelStop s) noexcept {
    switch (s) {
        case TunnelStop::kNone: return "none";
        case TunnelStop::kDepth: return "nesting_exceeded";
        case TunnelStop::kPayload: return "unknown_payload";
        case TunnelStop::kTruncated: return "truncated";
        case TunnelStop::kMalformed: return "malformed";
        case TunnelStop::kCount: break;
    }
    return "unknown";
}

namespace {

// The frame most of a core link carries: Ethernet with at most one VLAN tag, an IPv4 header
// without options or an IPv6 header without extensions, TCP or UDP on a port that is no tunnel,
// all in the first buffer, not a later fragment. Decoded straight through; anything else (or any
// doubt) goes the general way. Returns false when it did not decode the frame.
inline bool common_frame(const uint8_t* f, uint32_t avail, const DecodeOptions& opt, PacketInfo& out) noexcept {
    uint16_t type = rd16(f + 12);
    uint32_t off = 14;
    uint16_t vlan = 0;
    if (type == kEthVlan) {
        vlan = rd16(f + 14) & 0x0FFF;
        type = rd16(f + 16);
        off = 18;
    }
    Tuple& t = out.tuple;
    uint32_t l4, end;
    if (type == kEthIpv4) {
        if (avail < off + 20) return false;
        const uint8_t* ip = f + off;
        const uint32_t total = rd16(ip + 2);
        const uint16_t frag = rd16(ip + 6);
        if (ip[0] != 0x45 || total < 40 || (frag & 0x1FFF)) return false;
        t.proto = ip[9];
        if (t.proto != kProtoTcp && t.proto != kProtoUdp) return false;
        l4 = off + 20;
        end = off + total;
        if (avail < l4 + (t.proto == kProtoTcp ? 14 : 8) || end < l4 + (t.proto == kProtoTcp ? 14 : 8)) return false;
        std::memset(static_cast<Layer*>(&out), 0, sizeof(Layer));
        t.proto = ip[9];
        t.ip_version = 4;
        std::memcpy(t.src, ip + 12, 4);
        std::memcpy(t.dst, ip + 16, 4);
        out.ip_octets = total;
        out.tos = ip[1];
        out.ttl = ip[8];
        out.fragment = (frag & 0x2000) ? kFirstFragment : kNotFragment;
    } else if (type == kEthIpv6) {
        if (avail < off + 40) return false;
        const uint8_t* ip = f + off;
        const uint32_t plen = rd16(ip + 4);
        const uint8_t next = ip[6];
        if ((ip[0] >> 4) != 6 || (next != kProtoTcp && next != kProtoUdp)) return false;
        l4 = off + 40;
        end = l4 + plen;
        if (avail < l4 + (next == kProtoTcp ? 14 : 8) || end < l4 + (next == kProtoTcp ? 14 : 8)) return false;
        std::memset(static_cast<Layer*>(&out), 0, sizeof(Layer));
        t.proto = next;
        t.ip_version = 6;
        std::memcpy(t.src, ip + 8, 16);
        std::memcpy(t.dst, ip + 24, 16);
        out.ip_octets = plen + 40;
        out.tos = static_cast<uint8_t>(((ip[0] & 0x0F) << 4) | (ip[1] >> 4));
        out.ttl = ip[7];
    } else {
        return false;
    }
    t.sport = rd16(f + l4);
    t.dport = rd16(f + l4 + 2);
    if (opt.want_payload) {
        const uint32_t pend = end < avail ? end : avail;
        const uint32_t poff = l4 + (t.proto == kProtoTcp ? (f[l4 + 12] >> 4) * 4u : 8u);
        out.payload_off = poff;
        out.payload_len = poff < pend ? pend - poff : 0;
    }
    if (t.proto == kProtoTcp) {
        out.tcp_flags = f[l4 + 13];
    } else if (opt.mode != TunnelMode::kOuter &&
               (opt.udp_port(t.dport) != TunnelType::kNone || opt.udp_port(t.sport) == TunnelType::kTeredo)) {
        return false;  // perhaps a tunnel: the general way opens it
    }
    t.vlan = vlan;
    if (opt.want_macs || opt.want_mpls) {
        if (opt.want_macs)
            std::memcpy(out.macs, f, 12);
        else
            std::memset(out.macs, 0, 12);
        set_mpls(out.macs, 0);
        out.has_macs = opt.want_macs;
    }
    return true;
}

}  // namespace

Drop decode(const uint8_t* frame, uint32_t avail, uint32_t caplen, uint16_t linktype, const DecodeOptions& opt,
            PacketInfo& out) noexcept {
    out.tunnel.depth = 0;
    out.tunnel.entropy = false;
    out.stop = TunnelStop::kNone;
    out.ipv6_ext_limit = false;
    out.has_macs = false;
    out.has_outer_macs = false;
    out.short_read = false;
    out.unusual = false;
    if (avail > caplen) avail = caplen;
    if (linktype == kLinkEthernet && avail >= 14 + 20 + 8 && common_frame(frame, avail, opt, out)) [[likely]]
        return Drop::kNone;
    std::memset(static_cast<Layer*>(&out), 0, sizeof(Layer));
    if (opt.want_payload) out.payload_off = out.payload_len = 0;
    Cursor c{frame, avail};
    L2 l2;
    Drop d = link_layer(c, caplen, linktype, l2);
    if (d == Drop::kNone) {
        L4 l4;
        d = ip_layer(c, l2, caplen, out, l4, out.ipv6_ext_limit);
        if (d == Drop::kNone) {
            out.tuple.vlan = l2.vlan;
            out.cvlan = l2.cvlan;
            int64_t mac = l2.mac;
            if (opt.mode != TunnelMode::kOuter) tunnels(c, opt, out, l4, mac);
            if (opt.want_payload) payload(c, out, l4);
            if (opt.want_macs || opt.want_mpls) {
                // The flow's frame and the outermost one, MACs where there is an Ethernet header
                // (zero where not) and the captured frame's top MPLS entry.
                const uint32_t top = opt.want_mpls ? l2.mpls : 0;
                set_mpls(out.macs, top);
                set_mpls(out.outer_macs, top);
                const bool m = opt.want_macs && mac >= 0 && c.has(static_cast<uint32_t>(mac), 12, caplen);
                if (m)
                    std::memcpy(out.macs, frame + mac, 12);
                else
                    std::memset(out.macs, 0, 12);
                const bool om = opt.want_macs && out.tunnel.depth && l2.mac >= 0 &&
                    c.has(static_cast<uint32_t>(l2.mac), 12, caplen);
                if (om)
                    std::memcpy(out.outer_macs, frame + l2.mac, 12);
                else
                    std::memset(out.outer_macs, 0, 12);
                out.has_macs = m || top;
                out.has_outer_macs = out.tunnel.depth && (om || top);
            }
        }
    }
    out.short_read = c.short_read;
    out.unusual = out.l4_truncated || out.ipv6_ext_limit || out.short_read || out.stop != TunnelStop::kNone;
    return d;
}

Drop decode(const uint8_t* frame, uint32_t caplen, uint16_t linktype, PacketInfo& out) noexcept {
    static const DecodeOptions defaults;
    return decode(frame, caplen, caplen, linktype, defaults, out);
}

}  // namespace weir::packet
