// SPDX-License-Identifier: BSD-3-Clause
// NetFlow v9 (RFC 3954) and v5 encoders for legacy collectors: byte layout only, no I/O.
// Times in records are milliseconds since the exporter's "boot" (sysUptime-relative); the caller
// picks boot and the header clock so that unix_secs - sysUptime + FIRST_SWITCHED is the flow's
// real start (see NetflowClock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "flow/flow_record.h"
#include "ipfix/ipfix.h"

namespace weir::netflow {

// The clock NetFlow headers and times are expressed in: boot is fixed at the first record
// (an hour before it, so older flows of other workers still fit), "now" is the newest flow end
// seen. Replayed captures from years ago and live traffic both get exact absolute times.
class NetflowClock {
public:
    void observe(const flow::FlowRecord& r) noexcept;
    uint64_t boot_ms() const noexcept { return boot_ms_; }
    // Header time: whole seconds, and sysUptime taken at that same whole second, so that
    // unix_secs * 1000 - sysUptime is exactly boot and a collector's absolute times are exact.
    uint32_t unix_secs() const noexcept { return static_cast<uint32_t>(now_ms_ / 1000); }
    uint32_t uptime_ms() const noexcept { return static_cast<uint32_t>(now_ms_ / 1000 * 1000 - boot_ms_); }
    // A time as milliseconds since boot (0 for a time before boot).
    uint32_t since_boot(uint64_t ns) const noexcept {
        const uint64_t ms = ns / 1'000'000;
        return ms > boot_ms_ ? static_cast<uint32_t>(ms - boot_ms_) : 0;
    }

private:
    bool started_ = false;
    uint64_t boot_ms_ = 0;
    uint64_t now_ms_ = 0;
};

// NetFlow v9: templates 256 (IPv4) and 257 (IPv6), 258 and 259 with MAC addresses; uniflow
// data records.
namespace v9 {

constexpr uint16_t kSamplingOptionsTemplate = 300;
constexpr size_t kHeaderLen = 20;
constexpr uint16_t template_id(bool v6, bool macs) noexcept {
    return static_cast<uint16_t>(256 + (v6 ? 1 : 0) + (macs ? 2 : 0));
}
size_t write_templates(uint8_t* buf, size_t cap, bool macs = false) noexcept;  // one template flowset; 0 if no room
constexpr uint16_t kTemplateRecords = 2;

class Encoder {
public:
    // ifindex: INPUT_SNMP by the record's port (ipfix::interface_of); nullptr: the port id.
    // sampling: with the templates goes an options template and record (scope System) with
    // SAMPLING_INTERVAL and SAMPLING_ALGORITHM (1 deterministic, 2 random).
    Encoder(uint8_t* buf, uint32_t max_len, bool macs = false, const std::vector<uint32_t>* ifindex = nullptr,
            ipfix::Sampling sampling = {}) noexcept
        : buf_(buf), max_len_(max_len), macs_(macs), ifindex_(ifindex), sampling_(sampling) {
        pos_ = kHeaderLen;
    }
    // Appends a template flowset (counts as 2 records in the header).
    bool add_templates() noexcept;
    bool add(const flow::FlowRecord& r, const NetflowClock& clock) noexcept;
    // Closes the open flowset and writes the header; returns the packet length.
    uint32_t finish(const NetflowClock& clock, uint32_t sequence, uint32_t source_id) noexcept;
    uint32_t data_records() const noexcept { return data_records_; }
    uint64_t packets() const noexcept { return packets_; }
    uint32_t length() const noexcept { return pos_; }

private:
    void close_set() noexcept;
    uint8_t* buf_;
    uint32_t max_len_;
    bool macs_;
    const std::vector<uint32_t>* ifindex_;
    ipfix::Sampling sampling_;
    uint32_t pos_;
    uint32_t set_start_ = 0;
    uint16_t set_id_ = 0;
    uint16_t count_ = 0;  // records of all kinds, for the header
    uint32_t data_records_ = 0;
    uint64_t packets_ = 0;
};
}  // namespace v9

// NetFlow v5: IPv4 only, at most 30 records of 48 bytes a packet, 32-bit counters.
namespace v5 {
constexpr size_t kHeaderLen = 24;
constexpr size_t kRecordLen = 48;
constexpr uint16_t kMaxRecords = 30;

class Encoder {
public:
    // At most 30 records, and no more than fit max_len bytes.
    // sampling: in the header's sampling_interval (mode in the top 2 bits: 1 deterministic,
    // 2 random; the interval in 14 bits, at most 16383).
    Encoder(uint8_t* buf, size_t max_len, const std::vector<uint32_t>* ifindex = nullptr,
            ipfix::Sampling sampling = {}) noexcept
        : buf_(buf),
          ifindex_(ifindex),
          sampling_(sampling),
          max_records_(static_cast<uint16_t>(max_len < kHeaderLen + kRecordLen ? 0
                                                 : (max_len - kHeaderLen) / kRecordLen < kMaxRecords
                                                 ? (max_len - kHeaderLen) / kRecordLen
                                                 : kMaxRecords)) {}
    // False when the packet is full. The record must be IPv4 (check can_encode()).
    bool add(const flow::FlowRecord& r, const NetflowClock& clock) noexcept;
    static bool can_encode(const flow::FlowRecord& r) noexcept { return r.tuple.ip_version == 4; }
    uint32_t finish(const NetflowClock& clock, uint32_t flow_sequence, uint8_t engine_id) noexcept;
    uint16_t records() const noexcept { return count_; }
    uint64_t packets() const noexcept { return packets_; }
    uint32_t saturated() const noexcept { return saturated_; }  // counters clipped at 2^32-1

private:
    void put(const packet::Tuple& t, const flow::DirStats& d, uint16_t in_port, const NetflowClock& c) noexcept;
    uint8_t* buf_;
    const std::vector<uint32_t>* ifindex_;
    ipfix::Sampling sampling_;
    uint16_t max_records_;
    uint16_t count_ = 0;
    uint64_t packets_ = 0;
    uint32_t saturated_ = 0;
};
}  // namespace v5

}  // namespace weir::netflow
