// IPFIX (RFC 7011) wire format for weir's flow records: the IPv4 and IPv6 templates of IANA
// elements (RFC 7012), the message header, and MessageEncoder, which a worker uses to write
// expired flows as fixed-length uniflow data records into a message buffer. No I/O here: the
// control thread fills in sequence number and export time and sends the bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "flow/flow_record.h"

namespace weir::ipfix {

constexpr uint16_t kVersion = 10;
constexpr size_t kHeaderLen = 16;
constexpr size_t kSetHeaderLen = 4;
constexpr uint16_t kTemplateSetId = 2;
constexpr uint16_t kTemplateIdV4 = 256;
constexpr uint16_t kTemplateIdV6 = 257;

// IANA information element ids used by the templates.
enum Ie : uint16_t {
    kOctetDeltaCount = 1,
    kPacketDeltaCount = 2,
    kProtocolIdentifier = 4,
    kIpClassOfService = 5,
    kTcpControlBits = 6,
    kSourceTransportPort = 7,
    kSourceIPv4Address = 8,
    kIngressInterface = 10,
    kDestinationTransportPort = 11,
    kDestinationIPv4Address = 12,
    kSourceIPv6Address = 27,
    kDestinationIPv6Address = 28,
    kIcmpTypeCodeIPv4 = 32,
    kMinimumTTL = 52,
    kMaximumTTL = 53,
    kVlanId = 58,
    kFlowEndReason = 136,
    kIcmpTypeCodeIPv6 = 139,
    kFlowStartMilliseconds = 152,
    kFlowEndMilliseconds = 153,
};

struct FieldSpec {
    uint16_t id;
    uint16_t length;
};

std::span<const FieldSpec> template_fields(bool ipv6) noexcept;
uint16_t record_length(bool ipv6) noexcept;

// Writes one template set holding both templates. Returns its length, 0 if cap is too small.
size_t write_template_set(uint8_t* buf, size_t cap) noexcept;
void write_header(uint8_t* msg, uint16_t length, uint32_t export_time, uint32_t sequence,
                  uint32_t domain) noexcept;
// Sets export time and sequence number of a finished message in place.
void set_header_fields(uint8_t* msg, uint32_t export_time, uint32_t sequence) noexcept;

// Smallest message size that always fits one flow (two records of the larger template).
constexpr uint32_t kMinMessage = kHeaderLen + kSetHeaderLen + 2 * 83;

class MessageEncoder {
public:
    MessageEncoder(uint32_t domain, uint32_t max_len) noexcept : domain_(domain), max_len_(max_len) {}

    void start(uint8_t* buf) noexcept;
    bool started() const noexcept { return buf_ != nullptr; }
    // Appends the uniflow records of an ended conversation: one per direction that saw
    // packets. Returns false, writing nothing, when they do not fit: finish() and start().
    bool add(const flow::FlowRecord& r) noexcept;
    // Closes the open set and writes the header (sequence and export time left 0).
    // Returns the message length; the buffer is released.
    uint32_t finish() noexcept;

    uint32_t records() const noexcept { return records_; }
    uint64_t packets() const noexcept { return packets_; }
    uint64_t octets() const noexcept { return octets_; }
    uint32_t domain() const noexcept { return domain_; }

private:
    uint8_t* buf_ = nullptr;
    uint32_t pos_ = 0;
    uint32_t set_start_ = 0;
    uint16_t set_id_ = 0;
    uint32_t records_ = 0;
    uint64_t packets_ = 0;
    uint64_t octets_ = 0;
    uint32_t domain_;
    uint32_t max_len_;
};

}  // namespace weir::ipfix
