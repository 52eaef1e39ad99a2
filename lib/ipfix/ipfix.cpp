// SPDX-License-Identifier: BSD-3-Clause
#include "ipfix/ipfix.h"

#include <cstring>

#include "ipfix/wire.h"

namespace weir::ipfix {
namespace {

using wire::put16;
using wire::put32;
using wire::put64;
using wire::put8;

constexpr bool is_icmp(uint8_t proto) { return proto == 1 || proto == 58; }

// An absolute time in ns as the exporter's time unit asks: ms since the epoch, or an NTP
// timestamp (seconds since 1900, 32-bit fraction). Nanoseconds round the fraction up, so a
// reader that truncates gets the exact ns back; microseconds use the 2^-21 s grid RFC 7011
// prescribes (low 11 bits zero), rounded to nearest, so a reader rounding to us gets it back.
uint64_t time_value(uint64_t ns, TimeUnit u) {
    if (u == TimeUnit::kMilliseconds) return ns / 1'000'000;
    uint64_t secs = ns / 1'000'000'000 + 2'208'988'800ull;
    const uint64_t sub = ns % 1'000'000'000;
    uint64_t frac;
    if (u == TimeUnit::kNanoseconds) {
        frac = ((sub << 32) + 999'999'999) / 1'000'000'000;
    } else {
        const uint64_t us = sub / 1000;
        frac = ((us << 21) + 500'000) / 1'000'000 << 11;
    }
    if (frac >> 32) {  // rounded up to the next second
        frac = 0;
        ++secs;
    }
    return secs << 32 | frac;
}

}  // namespace

enum class Layout::Src : uint8_t {
    kStart,
    kEnd,
    kPackets,
    kOctets,
    kSrcAddr,
    kDstAddr,
    kIngress,
    kSport,
    kDport,
    kIcmp,
    kVlan,
    kCvlan,
    kTcpFlags,
    kProto,
    kTos,
    kMinTtl,
    kMaxTtl,
    kEndReason,
    kSrcMac,
    kDstMac,
    kRevStart,
    kRevEnd,
    kRevPackets,
    kRevOctets,
    kRevTcpFlags,
    kRevMinTtl,
    kRevMaxTtl,
    kL2Segment,
    kTunnelType,
    kTunnelId,
    kTunnelSrc,
    kTunnelDst,
    kTunnelDepth,
    kTunnelVlan,
    kOuterCopy,
    kApp,
    kHost,
    kSni,
    kRuleIds,
    kRuleTags,
    kInspectedOctets,
    kMpls,
    kDirection,
    kRttClient,
    kRttServer,
    kSizes,
    kRevSizes,
};

namespace {

Layout::Variant plain_variant(const flow::FlowRecord& r) noexcept {
    const bool v6 = r.tuple.ip_version == 6;
    if (r.flags & flow::FlowRecord::kOuterCopy) return v6 ? Layout::kCopyV6 : Layout::kCopyV4;
    if (!r.tunnel_type) return v6 ? Layout::kV6 : Layout::kV4;
    if (r.tunnel_ip_version == 6) return v6 ? Layout::kV6InV6 : Layout::kV4InV6;
    return v6 ? Layout::kV6InV4 : Layout::kV4InV4;
}

}  // namespace

Layout::Variant Layout::variant_of(const flow::FlowRecord& r) noexcept {
    const Variant v = plain_variant(r);
    return r.inspected_flow() ? static_cast<Variant>(v | kInspected) : v;
}

Layout::Layout(Options o) : o_(o) {
    // Template ids: a block of 8 per combination of options, so exporters with different options
    // never reuse an id for another template. The default layout keeps 256 and 257.
    // Template ids: 8 per combination of options, so exporters with different options never reuse
    // an id for another template. Without the opt-in extras (MPLS, direction, handshake, sizes)
    // as always: 256 .. 351, and 256 above for inspected records (the default layout keeps 256 and
    // 257); with them, pairs of blocks (plain, inspected) from 1024.
    const int base = static_cast<int>(o.time) + 3 * (o.biflow ? 1 : 0) + 6 * (o.macs ? 1 : 0);
    const int extras = (o.mpls ? 1 : 0) | (o.direction.empty() ? 0 : 2) | (o.rtt ? 4 : 0) | (o.sizes ? 8 : 0);
    tid_ = static_cast<uint16_t>(extras ? 1024 + 16 * (base + 12 * (extras - 1)) : 256 + 8 * base);
    inspected_offset_ = extras ? 8 : 256;
    const uint16_t start = o.time == TimeUnit::kMilliseconds ? kFlowStartMilliseconds
        : o.time == TimeUnit::kMicroseconds                  ? kFlowStartMicroseconds
                                                             : kFlowStartNanoseconds;
    for (int vi = 0; vi < kVariants; ++vi) {
        const bool inspected = vi & kInspected;
        if (inspected && !o.names) continue;
        const auto v = static_cast<Variant>(vi & 7);
        const bool tunneled = v >= kV4InV4 && v <= kV6InV6;
        const bool copy = v == kCopyV4 || v == kCopyV6;
        if (tunneled && o.tunnels == Tunnels::kNone) continue;
        if (copy && o.tunnels != Tunnels::kBoth) continue;
        const bool v6 = v == kV6 || v == kV6InV4 || v == kV6InV6 || v == kCopyV6;
        const bool outer6 = v == kV4InV6 || v == kV6InV6;
        const uint16_t alen = v6 ? 16 : 4;
        std::vector<Field> f = {{{start, 8, 0}, Src::kStart},
                                {{static_cast<uint16_t>(start + 1), 8, 0}, Src::kEnd},
                                {{kPacketDeltaCount, 8, 0}, Src::kPackets},
                                {{kOctetDeltaCount, 8, 0}, Src::kOctets}};
        if (o.biflow) {
            f.push_back({{start, 8, kReversePen}, Src::kRevStart});
            f.push_back({{static_cast<uint16_t>(start + 1), 8, kReversePen}, Src::kRevEnd});
            f.push_back({{kPacketDeltaCount, 8, kReversePen}, Src::kRevPackets});
            f.push_back({{kOctetDeltaCount, 8, kReversePen}, Src::kRevOctets});
        }
        f.push_back({{v6 ? kSourceIPv6Address : kSourceIPv4Address, alen, 0}, Src::kSrcAddr});
        f.push_back({{v6 ? kDestinationIPv6Address : kDestinationIPv4Address, alen, 0}, Src::kDstAddr});
        f.push_back({{kIngressInterface, 4, 0}, Src::kIngress});
        if (!o.direction.empty()) f.push_back({{kFlowDirection, 1, 0}, Src::kDirection});
        f.push_back({{kSourceTransportPort, 2, 0}, Src::kSport});
        f.push_back({{kDestinationTransportPort, 2, 0}, Src::kDport});
        f.push_back({{v6 ? kIcmpTypeCodeIPv6 : kIcmpTypeCodeIPv4, 2, 0}, Src::kIcmp});
        f.push_back({{kVlanId, 2, 0}, Src::kVlan});
        f.push_back({{kDot1qCustomerVlanId, 2, 0}, Src::kCvlan});
        f.push_back({{kTcpControlBits, 2, 0}, Src::kTcpFlags});
        if (o.biflow) f.push_back({{kTcpControlBits, 2, kReversePen}, Src::kRevTcpFlags});
        if (o.macs) {
            f.push_back({{kSourceMacAddress, 6, 0}, Src::kSrcMac});
            f.push_back({{kDestinationMacAddress, 6, 0}, Src::kDstMac});
        }
        if (o.mpls) f.push_back({{kMplsTopLabelStackSection, 3, 0}, Src::kMpls});
        if (tunneled) {
            f.push_back({{kLayer2SegmentId, 8, 0}, Src::kL2Segment});
            f.push_back({{kTunnelId, 4, o.pen}, Src::kTunnelId});
            f.push_back({{outer6 ? kTunnelSourceIPv6Address : kTunnelSourceIPv4Address,
                          static_cast<uint16_t>(outer6 ? 16 : 4), o.pen},
                         Src::kTunnelSrc});
            f.push_back({{outer6 ? kTunnelDestinationIPv6Address : kTunnelDestinationIPv4Address,
                          static_cast<uint16_t>(outer6 ? 16 : 4), o.pen},
                         Src::kTunnelDst});
            f.push_back({{kTunnelVlanId, 2, o.pen}, Src::kTunnelVlan});
            f.push_back({{kTunnelType, 1, o.pen}, Src::kTunnelType});
            f.push_back({{kTunnelDepth, 1, o.pen}, Src::kTunnelDepth});
        }
        if (copy) f.push_back({{kOuterCopy, 1, o.pen}, Src::kOuterCopy});
        f.push_back({{kProtocolIdentifier, 1, 0}, Src::kProto});
        f.push_back({{kIpClassOfService, 1, 0}, Src::kTos});
        f.push_back({{kMinimumTTL, 1, 0}, Src::kMinTtl});
        f.push_back({{kMaximumTTL, 1, 0}, Src::kMaxTtl});
        if (o.biflow) {
            f.push_back({{kMinimumTTL, 1, kReversePen}, Src::kRevMinTtl});
            f.push_back({{kMaximumTTL, 1, kReversePen}, Src::kRevMaxTtl});
        }
        f.push_back({{kFlowEndReason, 1, 0}, Src::kEndReason});
        if (o.rtt) {
            f.push_back({{kHandshakeClientRttMicroseconds, 4, o.pen}, Src::kRttClient});
            f.push_back({{kHandshakeServerRttMicroseconds, 4, o.pen}, Src::kRttServer});
        }
        if (o.sizes) {
            f.push_back({{kPacketSizeHistogram, 4 * flow::kSizeBins, o.pen}, Src::kSizes});
            if (o.biflow) f.push_back({{kReversePacketSizeHistogram, 4 * flow::kSizeBins, o.pen}, Src::kRevSizes});
        }
        if (inspected) {
            f.push_back({{kInspectedOctets, 4, o.pen}, Src::kInspectedOctets});
            f.push_back({{kApplicationName, kVarLen, 0}, Src::kApp});
            f.push_back({{kHttpRequestHost, kVarLen, 0}, Src::kHost});
            f.push_back({{kTlsServerName, kVarLen, o.pen}, Src::kSni});
            f.push_back({{kMatchedRuleIds, kVarLen, o.pen}, Src::kRuleIds});
            f.push_back({{kMatchedRuleTags, kVarLen, o.pen}, Src::kRuleTags});
        }
        uint16_t len = 0;
        std::vector<FieldSpec> spec;
        for (const auto& x : f) {
            if (x.spec.length != kVarLen) len += x.spec.length;
            spec.push_back(x.spec);
        }
        f_[vi] = std::move(f);
        spec_[vi] = std::move(spec);
        len_[vi] = len;
    }
}

const Layout& default_layout() noexcept {
    static const Layout layout;
    return layout;
}

namespace {

// layer2SegmentId (IANA 351): the overlay type in the top byte (1 VXLAN, 2 NVGRE) and the segment
// below; 0 for the tunnels the element has no type for.
uint64_t layer2_segment(const flow::FlowRecord& r) {
    if (r.tunnel_type == static_cast<uint8_t>(packet::TunnelType::kVxlan)) return 1ull << 56 | r.tunnel_id;
    if (r.tunnel_type == static_cast<uint8_t>(packet::TunnelType::kNvgre)) return 2ull << 56 | r.tunnel_id;
    return 0;
}

}  // namespace

namespace {

// A variable-length field: its length in one byte, or 255 and two bytes (RFC 7011 section 7).
uint8_t* put_var(uint8_t* p, const std::string& s) noexcept {
    if (s.size() < 255) {
        p = put8(p, static_cast<uint8_t>(s.size()));
    } else {
        p = put8(p, 255);
        p = put16(p, static_cast<uint16_t>(s.size()));
    }
    std::memcpy(p, s.data(), s.size());
    return p + s.size();
}
size_t var_len(const std::string& s) noexcept { return s.size() + (s.size() < 255 ? 1 : 3); }

}  // namespace

void Layout::var_fields(const flow::FlowRecord& r, VarFields& out) const {
    static const flow::Findings kNone{};
    const flow::Findings& f = r.inspection() ? *r.inspection() : kNone;
    out.app = o_.names ? o_.names->app(f.app) : std::string();
    const std::string name(f.name, f.name_len);
    out.host = f.name_kind == 2 ? name : std::string();
    out.sni = f.name_kind == 1 ? name : std::string();
    out.ids.clear();
    out.tags.clear();
    const unsigned kept = f.nrules < 8 ? f.nrules : 8;
    for (unsigned i = 0; o_.names && i < kept; ++i) {
        uint32_t id;
        std::string tag;
        if (!o_.names->rule(f.rules[i], id, tag)) continue;
        if (!out.ids.empty()) out.ids += ',';
        out.ids += std::to_string(id);
        if (out.tags.size() + tag.size() + 1 <= 255) {
            if (!out.tags.empty()) out.tags += ',';
            out.tags += tag;
        }
    }
}

uint32_t Layout::length(const flow::FlowRecord& r, Variant v, const VarFields* vf) const noexcept {
    uint32_t one = len_[v];
    if ((v & kInspected) && vf)
        one += static_cast<uint32_t>(var_len(vf->app) + var_len(vf->host) + var_len(vf->sni) + var_len(vf->ids) +
                                     var_len(vf->tags));
    return one * records_for(r);
}

uint8_t* Layout::put_one(uint8_t* p, const flow::FlowRecord& r, Variant v, bool reverse,
                         const VarFields* vf) const noexcept {
    static const VarFields kNone;
    if (!vf) vf = &kNone;
    const packet::Tuple t = reverse ? r.reverse_tuple() : r.tuple;
    const flow::DirStats& d = reverse ? r.rev : r.fwd;
    const flow::DirStats& o = r.rev;  // the reverse direction, for biflow records
    const bool icmp = is_icmp(t.proto);
    for (const Field& f : f_[v]) {
        switch (f.src) {
            case Src::kStart: p = put64(p, time_value(d.first_ns, o_.time)); break;
            case Src::kEnd: p = put64(p, time_value(d.last_ns, o_.time)); break;
            case Src::kPackets: p = put64(p, d.packets); break;
            case Src::kOctets: p = put64(p, d.octets); break;
            case Src::kSrcAddr:
                std::memcpy(p, t.src, f.spec.length);
                p += f.spec.length;
                break;
            case Src::kDstAddr:
                std::memcpy(p, t.dst, f.spec.length);
                p += f.spec.length;
                break;
            case Src::kIngress: p = put32(p, interface_of(r.in_port, o_.ifindex)); break;
            case Src::kSport: p = put16(p, icmp ? 0 : t.sport); break;
            case Src::kDport: p = put16(p, icmp ? 0 : t.dport); break;
            case Src::kIcmp: p = put16(p, icmp ? t.dport : 0); break;
            case Src::kVlan: p = put16(p, t.vlan); break;
            case Src::kCvlan: p = put16(p, r.cvlan); break;
            case Src::kTcpFlags: p = put16(p, d.tcp_flags); break;
            case Src::kProto: p = put8(p, t.proto); break;
            case Src::kTos: p = put8(p, d.tos); break;
            case Src::kMinTtl: p = put8(p, d.ttl_min); break;
            case Src::kMaxTtl: p = put8(p, d.ttl_max); break;
            case Src::kEndReason: p = put8(p, r.end_reason); break;
            case Src::kSrcMac:
                std::memcpy(p, reverse ? r.dst_mac_or_zero() : r.src_mac_or_zero(), 6);
                p += 6;
                break;
            case Src::kDstMac:
                std::memcpy(p, reverse ? r.src_mac_or_zero() : r.dst_mac_or_zero(), 6);
                p += 6;
                break;
            case Src::kRevStart: p = put64(p, o.packets ? time_value(o.first_ns, o_.time) : 0); break;
            case Src::kRevEnd: p = put64(p, o.packets ? time_value(o.last_ns, o_.time) : 0); break;
            case Src::kRevPackets: p = put64(p, o.packets); break;
            case Src::kRevOctets: p = put64(p, o.octets); break;
            case Src::kRevTcpFlags: p = put16(p, o.tcp_flags); break;
            case Src::kRevMinTtl: p = put8(p, o.ttl_min); break;
            case Src::kRevMaxTtl: p = put8(p, o.ttl_max); break;
            case Src::kL2Segment: p = put64(p, layer2_segment(r)); break;
            case Src::kTunnelType: p = put8(p, r.tunnel_type); break;
            case Src::kTunnelId: p = put32(p, r.tunnel_id); break;
            case Src::kTunnelSrc:
                std::memcpy(p, reverse ? r.rev_tunnel_src() : r.tunnel_src, f.spec.length);
                p += f.spec.length;
                break;
            case Src::kTunnelDst:
                std::memcpy(p, reverse ? r.rev_tunnel_dst() : r.tunnel_dst, f.spec.length);
                p += f.spec.length;
                break;
            case Src::kTunnelDepth: p = put8(p, r.tunnel_depth); break;
            case Src::kTunnelVlan: p = put16(p, r.tunnel_vlan); break;
            case Src::kOuterCopy: p = put8(p, 1); break;
            case Src::kInspectedOctets: p = put32(p, r.inspection() ? r.inspection()->inspected : 0); break;
            case Src::kApp: p = put_var(p, vf->app); break;
            case Src::kHost: p = put_var(p, vf->host); break;
            case Src::kSni: p = put_var(p, vf->sni); break;
            case Src::kRuleIds: p = put_var(p, vf->ids); break;
            case Src::kRuleTags: p = put_var(p, vf->tags); break;
            case Src::kMpls: {
                const int64_t m = r.mpls_top();
                const uint32_t v24 = m < 0 ? 0 : static_cast<uint32_t>(m);
                *p++ = static_cast<uint8_t>(v24 >> 16);
                *p++ = static_cast<uint8_t>(v24 >> 8);
                *p++ = static_cast<uint8_t>(v24);
                break;
            }
            case Src::kDirection: p = put8(p, r.in_port < o_.direction.size() ? o_.direction[r.in_port] : 0xFF); break;
            case Src::kRttClient:
                p = put32(p, r.flags & flow::FlowRecord::kRttClient ? r.fwd.rtt_us : UINT32_MAX);
                break;
            case Src::kRttServer:
                p = put32(p, r.flags & flow::FlowRecord::kRttServer ? r.rev.rtt_us : UINT32_MAX);
                break;
            case Src::kSizes:
            case Src::kRevSizes: {
                const uint32_t* z = r.sizes_or_null(f.src == Src::kRevSizes || reverse ? 1 : 0);
                for (uint32_t b = 0; b < flow::kSizeBins; ++b) p = put32(p, z ? z[b] : 0);
                break;
            }
        }
    }
    return p;
}

uint8_t* Layout::put(uint8_t* p, const flow::FlowRecord& r, Variant v, const VarFields* vf) const noexcept {
    p = put_one(p, r, v, false, vf);
    if (!o_.biflow && r.rev.packets) p = put_one(p, r, v, true, vf);
    return p;
}

size_t Layout::write_templates(uint8_t* buf, size_t cap, int& next) const noexcept {
    size_t len = kSetHeaderLen;
    int last = next;
    for (; last < kVariants; ++last) {
        const auto v = static_cast<Variant>(last);
        if (!has(v)) continue;
        size_t t = 4;
        for (const auto& f : fields(v)) t += f.pen ? 8 : 4;
        if (len + t > cap) break;
        len += t;
    }
    if (len == kSetHeaderLen) {
        while (next < kVariants && !has(static_cast<Variant>(next))) ++next;
        return 0;
    }
    uint8_t* p = put16(buf, kTemplateSetId);
    p = put16(p, static_cast<uint16_t>(len));
    for (int vi = next; vi < last; ++vi) {
        const auto v = static_cast<Variant>(vi);
        if (!has(v)) continue;
        const auto fields = this->fields(v);
        p = put16(p, template_id(v));
        p = put16(p, static_cast<uint16_t>(fields.size()));
        for (const auto& f : fields) {
            p = put16(p, static_cast<uint16_t>(f.id | (f.pen ? 0x8000 : 0)));
            p = put16(p, f.length);
            if (f.pen) p = put32(p, f.pen);
        }
    }
    next = last;
    return len;
}

size_t Layout::write_template_set(uint8_t* buf, size_t cap) const noexcept {
    int next = 0;
    const size_t len = write_templates(buf, cap, next);
    return next == kVariants ? len : 0;
}

void write_header(uint8_t* msg, uint16_t length, uint32_t export_time, uint32_t sequence, uint32_t domain) noexcept {
    uint8_t* p = put16(msg, kVersion);
    p = put16(p, length);
    p = put32(p, export_time);
    p = put32(p, sequence);
    put32(p, domain);
}

void set_header_fields(uint8_t* msg, uint32_t export_time, uint32_t sequence) noexcept {
    put32(msg + 4, export_time);
    put32(msg + 8, sequence);
}

void MessageEncoder::start(uint8_t* buf) noexcept {
    buf_ = buf;
    pos_ = kHeaderLen;
    set_id_ = 0;
    records_ = 0;
    packets_ = 0;
    octets_ = 0;
}

bool MessageEncoder::add(const flow::FlowRecord& r) {
    Layout::Variant v = layout_->variant_for(r);
    const VarFields* vf = nullptr;
    if (v & Layout::kInspected) {
        layout_->var_fields(r, vf_);
        vf = &vf_;
    }
    uint32_t len = layout_->length(r, v, vf);
    if (vf && kHeaderLen + kSetHeaderLen + len > max_len_) {
        // Too big for any message of this exporter (a small MTU): the record without its findings.
        v = static_cast<Layout::Variant>(v & 7);
        vf = nullptr;
        len = layout_->length(r, v, nullptr);
    }
    const uint16_t tid = layout_->template_id(v);
    const uint32_t nrec = layout_->records_for(r);
    const uint32_t need = len + (set_id_ == tid ? 0 : kSetHeaderLen);
    if (pos_ + need > max_len_) return false;
    if (set_id_ != tid) {
        if (set_id_ != 0) put16(buf_ + set_start_ + 2, static_cast<uint16_t>(pos_ - set_start_));
        set_start_ = pos_;
        set_id_ = tid;
        put16(buf_ + pos_, tid);
        pos_ += kSetHeaderLen;
    }
    pos_ = static_cast<uint32_t>(layout_->put(buf_ + pos_, r, v, vf) - buf_);
    packets_ += r.packets();
    octets_ += r.fwd.octets + r.rev.octets;
    records_ += nrec;
    return true;
}

uint32_t MessageEncoder::finish() noexcept {
    if (set_id_ != 0) put16(buf_ + set_start_ + 2, static_cast<uint16_t>(pos_ - set_start_));
    write_header(buf_, static_cast<uint16_t>(pos_), 0, 0, domain_);
    const uint32_t len = pos_;
    buf_ = nullptr;
    set_id_ = 0;
    return len;
}

}  // namespace weir::ipfix

namespace weir::ipfix {
namespace {

using wire::put16;
using wire::put32;
using wire::put64;

struct OptField {
    uint16_t id, len;
};
constexpr OptField kMetering[] = {{kObservationDomainId, 4},        {kPacketTotalCount, 8},
                                  {kIgnoredPacketTotalCount, 8},    {kObservedFlowTotalCount, 8},
                                  {kNotSentFlowTotalCount, 8},      {kNotSentPacketTotalCount, 8},
                                  {kObservationDomainName, kVarLen}};  // the probe's name: whose domain it is
constexpr OptField kExporting[] = {{kExportingProcessId, 4},           {kExportedMessageTotalCount, 8},
                                   {kExportedFlowRecordTotalCount, 8}, {kExportedOctetTotalCount, 8},
                                   {kNotSentFlowTotalCount, 8},        {kNotSentPacketTotalCount, 8}};
constexpr OptField kInterface[] = {{kIngressInterface, 4}, {kInterfaceName, kVarLen}, {kInterfaceDescription, kVarLen}};
// In this order: a collector that reads both the PSAMP and the legacy mode keeps the later one.
constexpr OptField kSampling[] = {
    {kObservationDomainId, 4}, {kSelectorAlgorithm, 2}, {kSamplingInterval, 4}, {kSamplingAlgorithm, 1}};

uint8_t* put_template(uint8_t* p, uint16_t id, const OptField* f, size_t n) {
    p = put16(p, id);
    p = put16(p, static_cast<uint16_t>(n));
    p = put16(p, 1);  // one scope field, the first
    for (size_t i = 0; i < n; ++i) {
        p = put16(p, f[i].id);
        p = put16(p, f[i].len);
    }
    return p;
}

uint8_t* put_string(uint8_t* p, const std::string& s) {
    const size_t n = s.size() < 255 ? s.size() : 254;
    *p++ = static_cast<uint8_t>(n);
    std::memcpy(p, s.data(), n);
    return p + n;
}

}  // namespace

size_t write_options_templates(uint8_t* buf, size_t cap, bool sampling) noexcept {
    const size_t len = 4 + 3 * 6 + 4 * (std::size(kMetering) + std::size(kExporting) + std::size(kInterface));
    // The sampling template goes first, in a set of its own: some collectors (nfdump) read only
    // the first template of an options template set.
    const size_t slen = sampling ? 4 + 6 + 4 * std::size(kSampling) : 0;
    if (cap < len + slen) return 0;
    uint8_t* p = buf;
    if (sampling) {
        p = put16(p, kOptionsTemplateSetId);
        p = put16(p, static_cast<uint16_t>(slen));
        p = put_template(p, kSamplingTemplate, kSampling, std::size(kSampling));
    }
    p = put16(p, kOptionsTemplateSetId);
    p = put16(p, static_cast<uint16_t>(len));
    p = put_template(p, kMeteringStatsTemplate, kMetering, std::size(kMetering));
    p = put_template(p, kExportingStatsTemplate, kExporting, std::size(kExporting));
    put_template(p, kInterfaceTemplate, kInterface, std::size(kInterface));
    return len + slen;
}

size_t write_options_data(uint8_t* buf, size_t cap, uint32_t domain, const MeteringStats& m, const ExportingStats& e,
                          const std::vector<InterfaceInfo>& ifs, uint32_t& records, const Sampling& s,
                          const std::string& domain_name) noexcept {
    size_t need = 2 * (4 + 44) + 4 + (s.interval ? 4 + 11 + 1 : 0) + 1 + std::min<size_t>(domain_name.size(), 254) + 3;
    for (const auto& i : ifs)
        need += 4 + 2 + std::min<size_t>(i.name.size(), 254) + std::min<size_t>(i.description.size(), 254);
    need += 3;  // padding
    if (cap < need) return 0;
    uint8_t* p = buf;
    uint8_t* metering = p;
    p = put16(p, kMeteringStatsTemplate);
    p += 2;
    p = put32(p, domain);
    p = put64(p, m.packets);
    p = put64(p, m.ignored_packets);
    p = put64(p, m.flows);
    p = put64(p, m.lost_flows);
    p = put64(p, m.lost_packets);
    p = put_string(p, domain_name);
    while ((p - metering) % 4) *p++ = 0;
    put16(metering + 2, static_cast<uint16_t>(p - metering));
    p = put16(p, kExportingStatsTemplate);
    p = put16(p, 48);
    p = put32(p, e.process_id);
    p = put64(p, e.messages);
    p = put64(p, e.records);
    p = put64(p, e.octets);
    p = put64(p, e.lost_records);
    p = put64(p, e.lost_packets);
    records = 2;
    if (!ifs.empty()) {
        uint8_t* set = p;
        p = put16(p, kInterfaceTemplate);
        p += 2;
        for (const auto& i : ifs) {
            p = put32(p, i.index);
            p = put_string(p, i.name);
            p = put_string(p, i.description);
            ++records;
        }
        while ((p - set) % 4) *p++ = 0;  // pad the set to 32 bits (RFC 7011 3.3.1)
        put16(set + 2, static_cast<uint16_t>(p - set));
    }
    if (s.interval) {
        uint8_t* set = p;
        p = put16(p, kSamplingTemplate);
        p += 2;
        p = put32(p, domain);
        p = put16(p, s.random ? 4 : 1);
        p = put32(p, s.interval);
        *p++ = s.random ? 2 : 1;
        ++records;
        while ((p - set) % 4) *p++ = 0;
        put16(set + 2, static_cast<uint16_t>(p - set));
    }
    return static_cast<size_t>(p - buf);
}

}  // namespace weir::ipfix
