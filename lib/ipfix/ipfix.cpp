#include "ipfix/ipfix.h"

#include <cstring>

namespace weir::ipfix {
namespace {

// Eight-byte fields first, then four, two and one: every field stays naturally aligned
// relative to the record start.
constexpr FieldSpec kFieldsV4[] = {
    {kFlowStartMilliseconds, 8}, {kFlowEndMilliseconds, 8}, {kPacketDeltaCount, 8},
    {kOctetDeltaCount, 8},       {kSourceIPv4Address, 4},   {kDestinationIPv4Address, 4},
    {kIngressInterface, 4},      {kSourceTransportPort, 2}, {kDestinationTransportPort, 2},
    {kIcmpTypeCodeIPv4, 2},      {kVlanId, 2},              {kTcpControlBits, 2},
    {kProtocolIdentifier, 1},    {kIpClassOfService, 1},    {kMinimumTTL, 1},
    {kMaximumTTL, 1},            {kFlowEndReason, 1},
};
constexpr FieldSpec kFieldsV6[] = {
    {kFlowStartMilliseconds, 8}, {kFlowEndMilliseconds, 8}, {kPacketDeltaCount, 8},
    {kOctetDeltaCount, 8},       {kSourceIPv6Address, 16},  {kDestinationIPv6Address, 16},
    {kIngressInterface, 4},      {kSourceTransportPort, 2}, {kDestinationTransportPort, 2},
    {kIcmpTypeCodeIPv6, 2},      {kVlanId, 2},              {kTcpControlBits, 2},
    {kProtocolIdentifier, 1},    {kIpClassOfService, 1},    {kMinimumTTL, 1},
    {kMaximumTTL, 1},            {kFlowEndReason, 1},
};

constexpr uint16_t sum_lengths(std::span<const FieldSpec> f) {
    uint16_t n = 0;
    for (const auto& x : f) n += x.length;
    return n;
}
constexpr uint16_t kRecV4 = sum_lengths(kFieldsV4);
constexpr uint16_t kRecV6 = sum_lengths(kFieldsV6);
static_assert(kRecV4 == 59 && kRecV6 == 83);

inline uint8_t* put8(uint8_t* p, uint8_t v) { *p = v; return p + 1; }
inline uint8_t* put16(uint8_t* p, uint16_t v) {
    v = __builtin_bswap16(v);
    std::memcpy(p, &v, 2);
    return p + 2;
}
inline uint8_t* put32(uint8_t* p, uint32_t v) {
    v = __builtin_bswap32(v);
    std::memcpy(p, &v, 4);
    return p + 4;
}
inline uint8_t* put64(uint8_t* p, uint64_t v) {
    v = __builtin_bswap64(v);
    std::memcpy(p, &v, 8);
    return p + 8;
}

constexpr bool is_icmp(uint8_t proto) { return proto == 1 || proto == 58; }

// One record, in template order. `t` is the directional tuple, `d` that direction's counters.
uint8_t* put_record(uint8_t* p, const packet::Tuple& t, const flow::DirStats& d, uint16_t in_port,
                    flow::EndReason why) noexcept {
    const bool v6 = t.ip_version == 6;
    const bool icmp = is_icmp(t.proto);
    p = put64(p, d.first_ns / 1'000'000);
    p = put64(p, d.last_ns / 1'000'000);
    p = put64(p, d.packets);
    p = put64(p, d.octets);
    const size_t alen = v6 ? 16 : 4;
    std::memcpy(p, t.src, alen);
    std::memcpy(p + alen, t.dst, alen);
    p += 2 * alen;
    p = put32(p, in_port);
    p = put16(p, icmp ? 0 : t.sport);
    p = put16(p, icmp ? 0 : t.dport);
    p = put16(p, icmp ? t.dport : 0);
    p = put16(p, t.vlan);
    p = put16(p, d.tcp_flags);
    p = put8(p, t.proto);
    p = put8(p, d.tos);
    p = put8(p, d.ttl_min);
    p = put8(p, d.ttl_max);
    p = put8(p, static_cast<uint8_t>(why));
    return p;
}

}  // namespace

std::span<const FieldSpec> template_fields(bool ipv6) noexcept {
    return ipv6 ? std::span<const FieldSpec>(kFieldsV6) : std::span<const FieldSpec>(kFieldsV4);
}

uint16_t record_length(bool ipv6) noexcept { return ipv6 ? kRecV6 : kRecV4; }

size_t write_template_set(uint8_t* buf, size_t cap) noexcept {
    const size_t len = kSetHeaderLen + 2 * 4 + 4 * (std::size(kFieldsV4) + std::size(kFieldsV6));
    if (cap < len) return 0;
    uint8_t* p = put16(buf, kTemplateSetId);
    p = put16(p, static_cast<uint16_t>(len));
    for (bool v6 : {false, true}) {
        const auto fields = template_fields(v6);
        p = put16(p, v6 ? kTemplateIdV6 : kTemplateIdV4);
        p = put16(p, static_cast<uint16_t>(fields.size()));
        for (const auto& f : fields) {
            p = put16(p, f.id);
            p = put16(p, f.length);
        }
    }
    return len;
}

void write_header(uint8_t* msg, uint16_t length, uint32_t export_time, uint32_t sequence,
                  uint32_t domain) noexcept {
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

bool MessageEncoder::add(const flow::FlowRecord& r) noexcept {
    const bool v6 = r.tuple.ip_version == 6;
    const uint16_t tid = v6 ? kTemplateIdV6 : kTemplateIdV4;
    const uint32_t nrec = r.rev.packets ? 2 : 1;
    const uint32_t need = nrec * record_length(v6) + (set_id_ == tid ? 0 : kSetHeaderLen);
    if (pos_ + need > max_len_) return false;
    if (set_id_ != tid) {
        if (set_id_ != 0) put16(buf_ + set_start_ + 2, static_cast<uint16_t>(pos_ - set_start_));
        set_start_ = pos_;
        set_id_ = tid;
        put16(buf_ + pos_, tid);
        pos_ += kSetHeaderLen;
    }
    const auto why = static_cast<flow::EndReason>(r.end_reason);
    uint8_t* p = put_record(buf_ + pos_, r.tuple, r.fwd, r.in_port, why);
    if (nrec == 2) p = put_record(p, r.reverse_tuple(), r.rev, r.in_port, why);
    packets_ += r.packets();
    octets_ += r.fwd.octets + r.rev.octets;
    pos_ = static_cast<uint32_t>(p - buf_);
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
