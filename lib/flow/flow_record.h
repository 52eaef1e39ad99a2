// SPDX-License-Identifier: BSD-3-Clause
// What a worker hands to the exporters for each conversation that ends: fixed length (256 B),
// both directions, the tunnel that carried it, when kept its MAC addresses, MPLS label, TCP
// handshake times and packet-size histograms, and (beside it, in
// the batch's findings, for the flows that have any) what payload inspection found in it
// (application, rules, server name), so every format
// (uniflow or biflow IPFIX, NetFlow, JSON, ClickHouse) is encoded on the control side from the
// same bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "flow/flow_table.h"
#include "flow/tunnel_table.h"

namespace weir::flow {

// What payload inspection found in a conversation (128 B), written beside its record only when
// there is something: the record points to it.
struct Findings {
    enum Flags : uint8_t {
        kInspectSkipped = 1,  // not inspected: no stream context was free
        kInspectCut = 2,      // a rules reload ended its inspection early
        kNameTruncated = 4,   // the server name was longer than `name` holds
        kInspectCarried = 8,  // findings of the conversation's earlier record (split by the active timeout)
    };
    uint16_t app;        // inspect::Registry application handle, 0 none
    uint8_t nrules;      // tagging rules that matched (the first 6 in `rules`, the rest 0)
    uint8_t name_kind;   // inspect::NameKind of `name`: TLS server name or HTTP Host
    uint16_t rules[8];   // inspect::Registry rule handles
    uint32_t inspected;  // payload bytes scanned, both directions
    uint8_t name_len;
    uint8_t flags;  // Flags
    uint8_t reserved[6];
    char name[96];
};
static_assert(sizeof(Findings) == 128);

struct FlowRecord {
    enum Flags : uint8_t {
        kOuterCopy = 1,  // the tunnel's own flow (both mode): its packets are also in tenant flows
        kHasMacs = 2,
        kTunnelRevSame = 4,  // the responder's packets ran between the tunnel end points the same way
                             // as the initiator's (a mirror session), not the other way round
        kInspected = 8,      // payload inspection left findings: `findings` points to them
        kHasSizes = 16,      // `sizes` (the fourth cache line) is written
        kRttClient = 32,     // fwd.rtt_us holds SYN-ACK to ACK
        kRttServer = 64,     // rev.rtt_us holds SYN to SYN-ACK
    };

    packet::Tuple tuple;  // the initiator's direction (the first packet seen)
    DirStats fwd;         // initiator -> responder
    DirStats rev;         // responder -> initiator; packets == 0 when it never answered
    uint16_t in_port;
    uint8_t end_reason;   // EndReason
    uint8_t flags;        // Flags
    uint16_t cvlan;       // QinQ customer VLAN (dot1qCustomerVlanId)
    uint8_t tunnel_type;  // packet::TunnelType; 0: not tunneled (and the fields after it, the third
                          // cache line, are not written unless kHasMacs: read them through the
                          // accessors below or after testing tunnel_type)
    uint8_t tunnel_depth;
    uint32_t tunnel_id;
    uint16_t tunnel_vlan;
    uint8_t tunnel_ip_version;
    uint8_t reserved0;
    uint8_t tunnel_src[16];  // the tunnel's end points as the initiator's packets ran
    uint8_t tunnel_dst[16];
    uint8_t dst_mac[6];  // of the initiator's first packet
    uint8_t src_mac[6];
    uint32_t mpls;                 // top MPLS entry of its first frame, with bit 24 set (PacketInfo::mpls)
    const Findings* findings;      // with kInspected (written only then): valid while the batch is
    uint32_t sizes[2][kSizeBins];  // with kHasSizes (written only then): packets per size bin,
                                   // the initiator's, then the responder's

    bool inspected_flow() const noexcept { return flags & kInspected; }
    // What payload inspection found, or nullptr.
    const Findings* inspection() const noexcept { return flags & kInspected ? findings : nullptr; }

    uint64_t packets() const noexcept { return fwd.packets + rev.packets; }
    // MAC addresses, all zero when the table kept none.
    const uint8_t* src_mac_or_zero() const noexcept { return flags & kHasMacs ? src_mac : kNoMac; }
    const uint8_t* dst_mac_or_zero() const noexcept { return flags & kHasMacs ? dst_mac : kNoMac; }
    // The top MPLS label stack entry (label << 4 | traffic class << 1 | bottom of stack), or -1.
    int64_t mpls_top() const noexcept { return flags & kHasMacs && mpls ? static_cast<int64_t>(mpls & 0xFFFFFF) : -1; }
    const uint32_t* sizes_or_null(int d) const noexcept { return flags & kHasSizes ? sizes[d] : nullptr; }
    uint32_t tunnel_id_or_zero() const noexcept { return tunnel_type ? tunnel_id : 0; }
    uint16_t tunnel_vlan_or_zero() const noexcept { return tunnel_type ? tunnel_vlan : 0; }
    static constexpr uint8_t kNoMac[6] = {};
    bool outer_copy() const noexcept { return flags & kOuterCopy; }
    // The tunnel's end points as the responder's packets ran.
    const uint8_t* rev_tunnel_src() const noexcept { return flags & kTunnelRevSame ? tunnel_src : tunnel_dst; }
    const uint8_t* rev_tunnel_dst() const noexcept { return flags & kTunnelRevSame ? tunnel_dst : tunnel_src; }
    packet::Tuple reverse_tuple() const noexcept {
        packet::Tuple t = tuple;
        std::memcpy(t.src, tuple.dst, 16);
        std::memcpy(t.dst, tuple.src, 16);
        t.sport = tuple.dport;
        t.dport = tuple.sport;
        return t;
    }
};
static_assert(sizeof(FlowRecord) == 256);

// The record of an entry. `tunnel` is the key of its tunnel (nullptr: not tunneled) and `side`
// what the table kept beside the entry.
inline void make_record(const FlowEntry& e, EndReason why, const TunnelKey* tunnel, const EntrySide& side,
                        FlowRecord& r) noexcept {
    // The first two lines are written whole; the third (tunnel, MACs) and the fourth (sizes) only
    // when there is something for them: a plain record costs two lines less to write.
    const uint8_t* macs = side.l2;
    static_assert(offsetof(FlowRecord, tunnel_type) == 126 && offsetof(FlowRecord, reserved0) == 135 &&
                  offsetof(FlowRecord, sizes) == 192);
    r.tuple = e.tuple(0);
    r.fwd = e.dir(0);
    r.rev = e.dir(1);
    r.in_port = e.in_port;
    r.end_reason = static_cast<uint8_t>(why);
    r.flags = e.key.view == kViewOuterCopy ? FlowRecord::kOuterCopy : 0;
    r.cvlan = e.key.cvlan;
    r.tunnel_type = 0;
    r.tunnel_depth = 0;
    if (const Handshake* h = side.handshake; h && h->synack_ns != Handshake::kNoHandshake) [[unlikely]] {
        if (h->synack_ns >= e.c[0].first_ns && h->synack_ns) {
            r.rev.rtt_us = static_cast<uint32_t>((h->synack_ns - e.c[0].first_ns + 500) / 1000);
            r.flags |= FlowRecord::kRttServer;
            if (h->ack_ns >= h->synack_ns) {
                r.fwd.rtt_us = static_cast<uint32_t>((h->ack_ns - h->synack_ns + 500) / 1000);
                r.flags |= FlowRecord::kRttClient;
            }
        }
    }
    if (side.sizes) {
        std::memcpy(r.sizes, side.sizes, sizeof(r.sizes));
        r.flags |= FlowRecord::kHasSizes;
    }
    if (!tunnel && !macs) return;
    std::memset(reinterpret_cast<uint8_t*>(&r) + 128, 0, 64);
    if (tunnel) {
        r.tunnel_type = tunnel->type;
        r.tunnel_depth = tunnel->version_depth & 0x0F;
        r.tunnel_id = tunnel->id;
        r.tunnel_vlan = tunnel->vlan;
        r.tunnel_ip_version = tunnel->version_depth >> 4;
        const bool hi = e.state & FlowTable::kTunnelSrcHi;
        std::memcpy(r.tunnel_src, hi ? tunnel->hi : tunnel->lo, 16);
        std::memcpy(r.tunnel_dst, hi ? tunnel->lo : tunnel->hi, 16);
        if (e.c[1].packets && hi == static_cast<bool>(e.state & FlowTable::kTunnelSrcHiRev))
            r.flags |= FlowRecord::kTunnelRevSame;
    }
    if (macs) {
        std::memcpy(r.dst_mac, macs, 6);
        std::memcpy(r.src_mac, macs + 6, 6);
        std::memcpy(&r.mpls, macs + 12, 4);
        r.flags |= FlowRecord::kHasMacs;
    }
}

inline void make_record(const FlowEntry& e, EndReason why, FlowRecord& r) noexcept {
    make_record(e, why, nullptr, EntrySide{}, r);
}

}  // namespace weir::flow
