// SPDX-License-Identifier: BSD-3-Clause
#include "ipfix/netflow.h"

#include "ipfix/wire.h"

#include <cstring>
#include <iterator>
#include <span>

namespace weir::netflow {
namespace {

using wire::put16;
using wire::put32;
using wire::put64;
using wire::put8;
bool is_icmp(uint8_t proto) { return proto == 1 || proto == 58; }

}  // namespace

void NetflowClock::observe(const flow::FlowRecord& r) noexcept {
    uint64_t first = r.fwd.first_ns, last = r.fwd.last_ns;
    if (r.rev.packets) {
        if (r.rev.first_ns < first) first = r.rev.first_ns;
        if (r.rev.last_ns > last) last = r.rev.last_ns;
    }
    if (!started_) {
        boot_ms_ = (first / 1'000'000 / 1000 - 3600) * 1000;  // a whole second, an hour earlier
        now_ms_ = boot_ms_;
        started_ = true;
    }
    if (last / 1'000'000 > now_ms_) now_ms_ = last / 1'000'000;
}

namespace v9 {
namespace {
// Field types (RFC 3954 section 8), in record order.
struct F {
    uint16_t type, len;
};
using namespace ipfix;  // the element table (Ie): v9's field types are the same numbers
constexpr F kV4[] = {{kSourceIPv4Address, 4},
                     {kDestinationIPv4Address, 4},
                     {kSourceTransportPort, 2},
                     {kDestinationTransportPort, 2},
                     {kProtocolIdentifier, 1},
                     {kIpClassOfService, 1},
                     {kTcpControlBits, 1},
                     {kIngressInterface, 4},
                     {kVlanId, 2},
                     {kIcmpTypeCodeIPv4, 2},
                     {kPacketDeltaCount, 8},
                     {kOctetDeltaCount, 8},
                     {kFlowStartSysUpTime, 4},
                     {kFlowEndSysUpTime, 4},
                     {kMinimumTTL, 1},
                     {kMaximumTTL, 1}};
constexpr F kV6[] = {{kSourceIPv6Address, 16},
                     {kDestinationIPv6Address, 16},
                     {kSourceTransportPort, 2},
                     {kDestinationTransportPort, 2},
                     {kProtocolIdentifier, 1},
                     {kIpClassOfService, 1},
                     {kTcpControlBits, 1},
                     {kIngressInterface, 4},
                     {kVlanId, 2},
                     {kIcmpTypeCodeIPv6, 2},
                     {kPacketDeltaCount, 8},
                     {kOctetDeltaCount, 8},
                     {kFlowStartSysUpTime, 4},
                     {kFlowEndSysUpTime, 4},
                     {kMinimumTTL, 1},
                     {kMaximumTTL, 1}};
constexpr uint16_t len_of(const F* f, size_t n) {
    uint16_t s = 0;
    for (size_t i = 0; i < n; ++i) s += f[i].len;
    return s;
}
constexpr F kMacs[] = {{kSourceMacAddress, 6}, {kDestinationMacAddress, 6}};  // IN_SRC_MAC, IN_DST_MAC
constexpr uint16_t kLen4 = len_of(kV4, std::size(kV4));
constexpr uint16_t kLen6 = len_of(kV6, std::size(kV6));
constexpr uint16_t kLenMacs = len_of(kMacs, std::size(kMacs));

uint8_t* put_record(uint8_t* p, const packet::Tuple& t, const flow::DirStats& d, uint32_t in_port,
                    const NetflowClock& c, const uint8_t* src_mac, const uint8_t* dst_mac) {
    const size_t alen = t.ip_version == 6 ? 16 : 4;
    std::memcpy(p, t.src, alen);
    std::memcpy(p + alen, t.dst, alen);
    p += 2 * alen;
    const bool icmp = is_icmp(t.proto);
    p = put16(p, icmp ? 0 : t.sport);
    p = put16(p, icmp ? 0 : t.dport);
    p = put8(p, t.proto);
    p = put8(p, d.tos);
    p = put8(p, d.tcp_flags);
    p = put32(p, in_port);
    p = put16(p, t.vlan);
    p = put16(p, icmp ? t.dport : 0);
    p = put64(p, d.packets);
    p = put64(p, d.octets);
    p = put32(p, c.since_boot(d.first_ns));
    p = put32(p, c.since_boot(d.last_ns));
    p = put8(p, d.ttl_min);
    p = put8(p, d.ttl_max);
    if (src_mac) {
        std::memcpy(p, src_mac, 6);
        std::memcpy(p + 6, dst_mac, 6);
        p += 12;
    }
    return p;
}
}  // namespace

size_t write_templates(uint8_t* buf, size_t cap, bool macs) noexcept {
    const size_t nm = macs ? std::size(kMacs) : 0;
    const size_t len = 4 + 2 * 4 + 4 * (std::size(kV4) + std::size(kV6) + 2 * nm);
    if (cap < len) return 0;
    uint8_t* p = put16(buf, 0);
    p = put16(p, static_cast<uint16_t>(len));
    for (int v6 = 0; v6 < 2; ++v6) {
        p = put16(p, static_cast<uint16_t>(template_id(v6, macs)));
        p = put16(p, static_cast<uint16_t>((v6 ? std::size(kV6) : std::size(kV4)) + nm));
        for (const F& f : v6 ? std::span<const F>(kV6) : std::span<const F>(kV4)) {
            p = put16(p, f.type);
            p = put16(p, f.len);
        }
        for (size_t i = 0; i < nm; ++i) {
            p = put16(p, kMacs[i].type);
            p = put16(p, kMacs[i].len);
        }
    }
    return len;
}

void Encoder::close_set() noexcept {
    if (!set_id_) return;
    while ((pos_ - set_start_) % 4) buf_[pos_++] = 0;  // flowsets end on a 32-bit boundary
    put16(buf_ + set_start_ + 2, static_cast<uint16_t>(pos_ - set_start_));
    set_id_ = 0;
}

bool Encoder::add_templates() noexcept {
    close_set();
    const size_t n = write_templates(buf_ + pos_, max_len_ - pos_, macs_);
    if (!n) return false;
    pos_ += static_cast<uint32_t>(n);
    count_ += kTemplateRecords;
    if (sampling_.interval) {
        // Options template flowset (RFC 3954 6.1): scope System (1), SAMPLING_INTERVAL (34),
        // SAMPLING_ALGORITHM (35); then its record.
        constexpr uint16_t kLen = 4 + 6 + 4 + 8 + 2;  // header, ids and lengths, scope, options, padding
        constexpr uint16_t kDataLen = 4 + 4 + 4 + 1 + 3;
        if (pos_ + kLen + kDataLen > max_len_) return false;
        uint8_t* p = put16(buf_ + pos_, 1);
        p = put16(p, kLen);
        p = put16(p, kSamplingOptionsTemplate);
        p = put16(p, 4);  // scope fields, bytes
        p = put16(p, 8);  // option fields, bytes
        p = put16(p, 1);  // scope: System
        p = put16(p, 4);
        p = put16(p, ipfix::kSamplingInterval);
        p = put16(p, 4);
        p = put16(p, ipfix::kSamplingAlgorithm);
        p = put16(p, 1);
        p = put16(p, 0);  // padding
        p = put16(p, kSamplingOptionsTemplate);
        p = put16(p, kDataLen);
        p = put32(p, 0);  // the system: this exporter
        p = put32(p, sampling_.interval);
        p = put8(p, sampling_.random ? 2 : 1);
        p = put8(p, 0);
        p = put16(p, 0);
        pos_ = static_cast<uint32_t>(p - buf_);
        count_ += 2;
    }
    return true;
}

bool Encoder::add(const flow::FlowRecord& r, const NetflowClock& clock) noexcept {
    const bool v6 = r.tuple.ip_version == 6;
    const uint16_t tid = template_id(v6, macs_);
    const uint32_t nrec = r.rev.packets ? 2 : 1;
    // A flowset of another template closes the open one first, with its padding (up to 3 bytes).
    const uint32_t close_pad = set_id_ && set_id_ != tid ? (4 - (pos_ - set_start_) % 4) % 4 : 0;
    const uint32_t need = close_pad + nrec * ((v6 ? kLen6 : kLen4) + (macs_ ? kLenMacs : 0)) +
        (set_id_ == tid ? 0 : 4) + 3;  // + this flowset's padding
    if (pos_ + need > max_len_) return false;
    if (set_id_ != tid) {
        close_set();
        set_start_ = pos_;
        set_id_ = tid;
        put16(buf_ + pos_, tid);
        pos_ += 4;
    }
    const uint32_t in = ifindex_ ? ipfix::interface_of(r.in_port, *ifindex_) : r.in_port;
    uint8_t* p =
        put_record(buf_ + pos_, r.tuple, r.fwd, in, clock, macs_ ? r.src_mac_or_zero() : nullptr, r.dst_mac_or_zero());
    if (nrec == 2)
        p = put_record(p, r.reverse_tuple(), r.rev, in, clock, macs_ ? r.dst_mac_or_zero() : nullptr,
                       r.src_mac_or_zero());
    pos_ = static_cast<uint32_t>(p - buf_);
    count_ = static_cast<uint16_t>(count_ + nrec);
    data_records_ += nrec;
    packets_ += r.packets();
    return true;
}

uint32_t Encoder::finish(const NetflowClock& clock, uint32_t sequence, uint32_t source_id) noexcept {
    close_set();
    uint8_t* p = put16(buf_, 9);
    p = put16(p, count_);
    p = put32(p, clock.uptime_ms());
    p = put32(p, clock.unix_secs());
    p = put32(p, sequence);
    put32(p, source_id);
    return pos_;
}
}  // namespace v9

namespace v5 {

void Encoder::put(const packet::Tuple& t, const flow::DirStats& d, uint16_t in_port, const NetflowClock& c) noexcept {
    uint8_t* p = buf_ + kHeaderLen + static_cast<size_t>(count_) * kRecordLen;
    std::memcpy(p, t.src, 4);
    std::memcpy(p + 4, t.dst, 4);
    p += 8;
    p = put32(p, 0);  // next hop: not known to a passive probe
    p = put16(p, in_port);
    p = put16(p, 0);  // output interface
    const bool clip = d.packets > 0xFFFFFFFFull || d.octets > 0xFFFFFFFFull;
    saturated_ += clip;
    p = put32(p, d.packets > 0xFFFFFFFFull ? 0xFFFFFFFFu : static_cast<uint32_t>(d.packets));
    p = put32(p, d.octets > 0xFFFFFFFFull ? 0xFFFFFFFFu : static_cast<uint32_t>(d.octets));
    p = put32(p, c.since_boot(d.first_ns));
    p = put32(p, c.since_boot(d.last_ns));
    const bool icmp = is_icmp(t.proto);
    p = put16(p, icmp ? 0 : t.sport);
    p = put16(p, t.dport);  // ICMP: type << 8 | code, as NetFlow v5 collectors expect
    p = put8(p, 0);
    p = put8(p, d.tcp_flags);
    p = put8(p, t.proto);
    p = put8(p, d.tos);
    p = put16(p, 0);  // source AS
    p = put16(p, 0);  // destination AS
    p = put8(p, 0);   // source mask
    p = put8(p, 0);   // destination mask
    put16(p, 0);
    ++count_;
    packets_ += d.packets;
}

bool Encoder::add(const flow::FlowRecord& r, const NetflowClock& clock) noexcept {
    const uint16_t nrec = r.rev.packets ? 2 : 1;
    if (count_ + nrec > max_records_) return false;
    // v5 has 16 bits for the interface: a larger ifIndex is written as 0 (unknown).
    const uint32_t in = ifindex_ ? ipfix::interface_of(r.in_port, *ifindex_) : r.in_port;
    const uint16_t in16 = in > 0xFFFF ? 0 : static_cast<uint16_t>(in);
    put(r.tuple, r.fwd, in16, clock);
    if (nrec == 2) put(r.reverse_tuple(), r.rev, in16, clock);
    return true;
}

uint32_t Encoder::finish(const NetflowClock& clock, uint32_t flow_sequence, uint8_t engine_id) noexcept {
    uint8_t* p = put16(buf_, 5);
    p = put16(p, count_);
    p = put32(p, clock.uptime_ms());
    p = put32(p, clock.unix_secs());
    p = put32(p, 0);  // unix_nsecs: sysUptime is taken at the whole second
    p = put32(p, flow_sequence);
    p = put8(p, 0);  // engine type
    p = put8(p, engine_id);
    const uint16_t interval = sampling_.interval > 0x3FFF ? 0x3FFF : static_cast<uint16_t>(sampling_.interval);
    put16(p, sampling_.interval ? static_cast<uint16_t>((sampling_.random ? 2u : 1u) << 14 | interval) : 0);
    return static_cast<uint32_t>(kHeaderLen + static_cast<size_t>(count_) * kRecordLen);
}
}  // namespace v5

}  // namespace weir::netflow
