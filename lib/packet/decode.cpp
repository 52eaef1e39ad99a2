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
constexpr uint16_t kEthMplsUc = 0x8847;
constexpr uint16_t kEthMplsMc = 0x8848;
constexpr uint16_t kEthPppoeSession = 0x8864;

constexpr int kMaxVlanTags = 4;
constexpr int kMaxMplsLabels = 8;
constexpr int kMaxIpv6ExtHeaders = 8;

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoDccp = 33;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr uint8_t kProtoSctp = 132;
constexpr uint8_t kProtoUdpLite = 136;

inline uint16_t rd16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// Where the network layer starts and which one it is, once the link layer is peeled off.
struct L3 {
    uint32_t offset;
    uint8_t version;  // 4, 6, or 0 for "not IP"
    uint16_t vlan;
};

Drop ethertype_chain(const uint8_t* f, uint32_t caplen, uint32_t off, uint16_t type, L3& l3) noexcept {
    int tags = 0;
    while (type == kEthVlan || type == kEthQinQ || type == kEthQinQOld1 || type == kEthQinQOld2) {
        if (++tags > kMaxVlanTags) return Drop::kTooManyHeaders;
        if (caplen < off + 4) return Drop::kTruncatedL2;
        if (tags == 1) l3.vlan = rd16(f + off) & 0x0FFF;
        type = rd16(f + off + 2);
        off += 4;
    }
    if (type == kEthMplsUc || type == kEthMplsMc) {
        for (int labels = 0;; ++labels) {
            if (labels == kMaxMplsLabels) return Drop::kTooManyHeaders;
            if (caplen < off + 4) return Drop::kTruncatedL2;
            const bool bottom = f[off + 2] & 0x01;
            off += 4;
            if (bottom) break;
        }
        if (caplen < off + 1) return Drop::kTruncatedL2;
        const uint8_t nibble = f[off] >> 4;
        if (nibble != 4 && nibble != 6) return Drop::kNonIp;  // pseudowire or unknown payload
        l3.offset = off;
        l3.version = nibble;
        return Drop::kNone;
    }
    if (type == kEthPppoeSession) {
        if (caplen < off + 8) return Drop::kTruncatedL2;
        const uint16_t ppp = rd16(f + off + 6);
        off += 8;
        if (ppp == 0x0021) type = kEthIpv4;
        else if (ppp == 0x0057) type = kEthIpv6;
        else return Drop::kNonIp;
    }
    if (type == kEthIpv4) l3.version = 4;
    else if (type == kEthIpv6) l3.version = 6;
    else return Drop::kNonIp;
    l3.offset = off;
    return Drop::kNone;
}

Drop link_layer(const uint8_t* f, uint32_t caplen, uint16_t linktype, L3& l3) noexcept {
    switch (linktype) {
        case kLinkEthernet: {
            if (caplen < 14) return Drop::kTruncatedL2;
            const uint16_t type = rd16(f + 12);
            if (type < 0x0600) return Drop::kNonIp;  // 802.3 length field: LLC/SNAP, STP, CDP
            return ethertype_chain(f, caplen, 14, type, l3);
        }
        case kLinkLinuxSll:
            if (caplen < 16) return Drop::kTruncatedL2;
            return ethertype_chain(f, caplen, 16, rd16(f + 14), l3);
        case kLinkLinuxSll2:
            if (caplen < 20) return Drop::kTruncatedL2;
            return ethertype_chain(f, caplen, 20, rd16(f), l3);
        case kLinkNull:
        case kLinkLoop: {
            if (caplen < 4) return Drop::kTruncatedL2;
            // The family is in the capturing host's byte order for DLT_NULL: try both.
            uint32_t le, be;
            std::memcpy(&le, f, 4);
            be = __builtin_bswap32(le);
            const uint32_t fam = (linktype == kLinkLoop || (le > 0xFFFF)) ? be : le;
            l3.offset = 4;
            if (fam == 2) l3.version = 4;
            else if (fam == 10 || fam == 24 || fam == 28 || fam == 30) l3.version = 6;
            else return Drop::kNonIp;
            return Drop::kNone;
        }
        case kLinkRaw:
        case kLinkRawOpenBsd:
        case kLinkRawLinktype: {
            if (caplen < 1) return Drop::kTruncatedL2;
            const uint8_t nibble = f[0] >> 4;
            if (nibble != 4 && nibble != 6) return Drop::kBadIpHeader;
            l3.offset = 0;
            l3.version = nibble;
            return Drop::kNone;
        }
        case kLinkIpv4:
            l3.offset = 0;
            l3.version = 4;
            return Drop::kNone;
        case kLinkIpv6:
            l3.offset = 0;
            l3.version = 6;
            return Drop::kNone;
        default:
            return Drop::kUnsupportedLink;
    }
}

// Ports, ICMP type/code and TCP flags from the transport header, `avail` bytes of it captured.
void transport(const uint8_t* l4, uint32_t avail, PacketInfo& out) noexcept {
    Tuple& t = out.tuple;
    switch (t.proto) {
        case kProtoTcp:
            if (avail < 14) {
                out.l4_truncated = true;
                if (avail < 4) return;
            } else {
                out.tcp_flags = l4[13];
            }
            t.sport = rd16(l4);
            t.dport = rd16(l4 + 2);
            return;
        case kProtoUdp:
        case kProtoSctp:
        case kProtoUdpLite:
        case kProtoDccp:
            if (avail < 4) {
                out.l4_truncated = true;
                return;
            }
            t.sport = rd16(l4);
            t.dport = rd16(l4 + 2);
            return;
        case kProtoIcmp:
        case kProtoIcmpv6:
            if (avail < 2) {
                out.l4_truncated = true;
                return;
            }
            t.dport = static_cast<uint16_t>(l4[0] << 8 | l4[1]);
            return;
        default:
            return;
    }
}

Drop ipv4(const uint8_t* f, uint32_t caplen, uint32_t off, PacketInfo& out) noexcept {
    if (caplen < off + 20) return Drop::kTruncatedIp;
    const uint8_t* ip = f + off;
    if ((ip[0] >> 4) != 4) return Drop::kBadIpHeader;
    const uint32_t hlen = (ip[0] & 0x0F) * 4u;
    if (hlen < 20) return Drop::kBadIpHeader;
    uint32_t total = rd16(ip + 2);
    if (total == 0) total = caplen - off;  // segmentation offload on the capturing host
    if (total < hlen) return Drop::kBadIpHeader;
    Tuple& t = out.tuple;
    t.ip_version = 4;
    t.proto = ip[9];
    std::memcpy(t.src, ip + 12, 4);
    std::memcpy(t.dst, ip + 16, 4);
    out.ip_octets = total;
    out.tos = ip[1];
    out.ttl = ip[8];
    const uint16_t frag = rd16(ip + 6);
    const uint16_t frag_off = frag & 0x1FFF;
    if (frag_off != 0) {
        out.fragment = kLaterFragment;  // no transport header: accounted with ports 0/0
        return Drop::kNone;
    }
    if (frag & 0x2000) out.fragment = kFirstFragment;
    if (caplen < off + hlen) {  // options cut by the snaplen
        out.l4_truncated = true;
        return Drop::kNone;
    }
    const uint32_t l4off = off + hlen;
    uint32_t avail = caplen - l4off;
    if (avail > total - hlen) avail = total - hlen;  // ignore Ethernet padding
    transport(f + l4off, avail, out);
    return Drop::kNone;
}

Drop ipv6(const uint8_t* f, uint32_t caplen, uint32_t off, PacketInfo& out) noexcept {
    if (caplen < off + 40) return Drop::kTruncatedIp;
    const uint8_t* ip = f + off;
    if ((ip[0] >> 4) != 6) return Drop::kBadIpHeader;
    Tuple& t = out.tuple;
    t.ip_version = 6;
    std::memcpy(t.src, ip + 8, 16);
    std::memcpy(t.dst, ip + 24, 16);
    const uint32_t plen = rd16(ip + 4);
    out.ip_octets = plen + 40;
    out.tos = static_cast<uint8_t>(((ip[0] & 0x0F) << 4) | (ip[1] >> 4));
    out.ttl = ip[7];
    uint8_t next = ip[6];
    uint32_t pos = off + 40;
    const uint32_t end = off + 40 + plen;  // bytes past this are padding
    const uint32_t limit = caplen < end ? caplen : end;
    for (int n = 0;; ++n) {
        uint32_t len;
        switch (next) {
            case 0:    // hop-by-hop options
            case 43:   // routing
            case 60:   // destination options
            case 135:  // mobility
            case 139:  // HIP
            case 140:  // shim6
                if (limit < pos + 2) goto truncated;
                len = (f[pos + 1] + 1u) * 8u;
                break;
            case 51:  // authentication header
                if (limit < pos + 2) goto truncated;
                len = (f[pos + 1] + 2u) * 4u;
                break;
            case 44: {  // fragment
                if (limit < pos + 8) goto truncated;
                const uint16_t fo = rd16(f + pos + 2);
                if ((fo & 0xFFF8) != 0) {
                    t.proto = f[pos];
                    out.fragment = kLaterFragment;
                    return Drop::kNone;
                }
                if (fo & 1) out.fragment = kFirstFragment;
                len = 8;
                break;
            }
            default:
                t.proto = next;
                transport(f + pos, limit > pos ? limit - pos : 0, out);
                return Drop::kNone;
        }
        if (n == kMaxIpv6ExtHeaders) return Drop::kTooManyHeaders;
        next = f[pos];
        pos += len;
    }
truncated:
    // The fixed header is there: account the packet under the header we could not pass.
    t.proto = next;
    out.l4_truncated = true;
    return Drop::kNone;
}

}  // namespace

bool link_type_supported(uint16_t linktype) noexcept {
    switch (linktype) {
        case kLinkNull: case kLinkEthernet: case kLinkRaw: case kLinkRawOpenBsd: case kLinkRawLinktype:
        case kLinkLoop: case kLinkLinuxSll: case kLinkIpv4: case kLinkIpv6: case kLinkLinuxSll2:
            return true;
        default:
            return false;
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

Drop decode(const uint8_t* frame, uint32_t caplen, uint16_t linktype, PacketInfo& out) noexcept {
    std::memset(&out, 0, sizeof(out));
    L3 l3{0, 0, 0};
    const Drop d = link_layer(frame, caplen, linktype, l3);
    if (d != Drop::kNone) return d;
    out.tuple.vlan = l3.vlan;
    return l3.version == 4 ? ipv4(frame, caplen, l3.offset, out) : ipv6(frame, caplen, l3.offset, out);
}

}  // namespace weir::packet
