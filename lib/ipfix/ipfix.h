// SPDX-License-Identifier: BSD-3-Clause
// IPFIX (RFC 7011) wire format for weir's flow records: the templates of IANA elements (RFC
// 7012) and of weir's own (tunnel end points, ...), the message header, and MessageEncoder,
// with which an exporter on the control side writes ended conversations as fixed-length data
// records into a message buffer. No I/O here: the exporter fills in sequence number and export
// time and sends the bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "flow/flow_record.h"

namespace weir::ipfix {

constexpr uint16_t kVersion = 10;
constexpr size_t kHeaderLen = 16;
constexpr size_t kSetHeaderLen = 4;
constexpr uint16_t kTemplateSetId = 2;
constexpr uint16_t kTemplateIdV4 = 256;
constexpr uint16_t kTemplateIdV6 = 257;

// weir's own information elements, under the enterprise number in the configuration (by default
// IANA's number for documentation, RFC 5612, until an organisation sets its own).
constexpr uint32_t kWeirPenDefault = 32473;
enum WeirIe : uint16_t {
    kTunnelType = 1,               // unsigned8: packet::TunnelType (1 VXLAN, 2 VXLAN-GPE, 3 Geneve, 4 GRE, ...)
    kTunnelId = 2,                 // unsigned32: VNI, GRE key, NVGRE VSID, ERSPAN session, MPLS label
    kTunnelSourceIPv4Address = 3,  // the tunnel's end points in the flow's direction
    kTunnelDestinationIPv4Address = 4,
    kTunnelSourceIPv6Address = 5,
    kTunnelDestinationIPv6Address = 6,
    kTunnelDepth = 7,       // unsigned8: tunnels opened to reach the flow's headers
    kTunnelVlanId = 8,      // unsigned16: VLAN of the tunnel's delivery frame
    kOuterCopy = 9,         // unsigned8: 1 = a tunnel's own flow, its packets also in tenant flows
    kTlsServerName = 10,    // string: the server name of the client's TLS ClientHello (SNI)
    kMatchedRuleIds = 11,   // string: ids of the payload rules that tagged the flow, comma-separated
    kMatchedRuleTags = 12,  // string: their tags, comma-separated
    kInspectedOctets = 13,  // unsigned32: payload bytes inspected, both directions
    // unsigned32, microseconds of the TCP handshake as the probe saw it: SYN-ACK to ACK (the
    // client's side of the round trip) and SYN to SYN-ACK (the server's side); 4294967295 when
    // not measured (no SYN seen first, no answer, no ACK).
    kHandshakeClientRttMicroseconds = 14,
    kHandshakeServerRttMicroseconds = 15,
    // octetArray of 32: eight unsigned32 packet counts by IP length, up to 64, 128, 256, 512,
    // 1024, 1500, 9000 bytes and above; of the record's direction, and (biflow) the responder's.
    kPacketSizeHistogram = 16,
    kReversePacketSizeHistogram = 17,
};

// IANA information element ids: the one table the data templates, the options templates and the
// NetFlow v9 fields are written from (v9's field types 1..127 are IPFIX's element ids, RFC 7012
// section 3.2).
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
    kSourceMacAddress = 56,
    kDestinationMacAddress = 80,
    kDot1qCustomerVlanId = 245,
    kLayer2SegmentId = 351,
    kFlowStartMilliseconds = 152,
    kFlowEndMilliseconds = 153,
    kFlowStartMicroseconds = 154,
    kFlowEndMicroseconds = 155,
    kFlowStartNanoseconds = 156,
    kFlowEndNanoseconds = 157,
    kApplicationName = 96,
    kHttpRequestHost = 460,
    kFlowDirection = 61,
    kMplsTopLabelStackSection = 70,
    kFlowEndSysUpTime = 21,    // NetFlow v9 LAST_SWITCHED
    kFlowStartSysUpTime = 22,  // NetFlow v9 FIRST_SWITCHED
    // Options records: metering and exporting statistics, the interface table, sampling.
    kSamplingInterval = 34,
    kSamplingAlgorithm = 35,
    kExportedOctetTotalCount = 40,
    kExportedMessageTotalCount = 41,
    kExportedFlowRecordTotalCount = 42,
    kInterfaceName = 82,
    kInterfaceDescription = 83,
    kPacketTotalCount = 86,
    kExportingProcessId = 144,
    kObservationDomainId = 149,
    kObservedFlowTotalCount = 163,
    kIgnoredPacketTotalCount = 164,
    kNotSentFlowTotalCount = 166,
    kNotSentPacketTotalCount = 167,
    kObservationDomainName = 300,
    kSelectorAlgorithm = 304,
};
constexpr uint16_t kVarLen = 65535;  // a template's length of a variable-length field

// The names behind the handles of an inspected record (applications, rules), which the
// variable-length fields carry; given by the exporter.
class InspectNames {
public:
    virtual ~InspectNames() = default;
    virtual std::string app(uint16_t handle) const = 0;
    virtual bool rule(uint16_t handle, uint32_t& id, std::string& tag) const = 0;
};

// The variable-length fields of one inspected record, as written.
struct VarFields {
    std::string app, host, sni, ids, tags;
};

// Flow times: absolute milliseconds (dateTimeMilliseconds), or micro/nanoseconds in the NTP
// timestamp format of RFC 7011 section 6.1.9.
enum class TimeUnit : uint8_t { kMilliseconds = 0, kMicroseconds = 1, kNanoseconds = 2 };

// Which records an exporter may meet beside untunneled ones.
enum class Tunnels : uint8_t {
    kNone = 0,   // outer mode: no tunnel fields
    kInner = 1,  // records of tunneled flows carry the tunnel (type, id, end points)
    kBoth = 2,   // ... and the tunnels' own flows come as outer copies, marked
};

struct Options {
    bool biflow = false;  // RFC 5103: one record per conversation with reverse elements
    TimeUnit time = TimeUnit::kMilliseconds;
    bool macs = false;   // sourceMacAddress, destinationMacAddress
    bool mpls = false;   // mplsTopLabelStackSection
    bool rtt = false;    // weir's handshake round trip elements
    bool sizes = false;  // weir's packet-size histograms
    // flowDirection by the record's port (DPDK port id): 0 ingress, 1 egress. Empty: no element.
    std::vector<uint8_t> direction;
    Tunnels tunnels = Tunnels::kNone;
    uint32_t pen = kWeirPenDefault;  // enterprise number of weir's own elements
    // ingressInterface by the record's port (DPDK port id); a port beyond it is written as is.
    std::vector<uint32_t> ifindex;
    // Payload inspection is on: records with findings go in templates with applicationName,
    // httpRequestHost and weir's server name and rule fields (variable length).
    const InspectNames* names = nullptr;
};

// A record's port as the interface number an exporter writes (see Options::ifindex).
inline uint32_t interface_of(uint16_t port, const std::vector<uint32_t>& ifindex) noexcept {
    return port < ifindex.size() ? ifindex[port] : port;
}

constexpr uint32_t kReversePen = 29305;  // RFC 5103 reverse information elements

struct FieldSpec {
    uint16_t id;
    uint16_t length;
    uint32_t pen;  // 0: IANA; kReversePen: the reverse of element `id`
};

// The templates and record layout of one exporter's options: which elements in which order,
// and how each is filled from a FlowRecord. Fixed-length records (no variable fields). One
// template per variant: the flow's IP version, times whether and over which IP version it was
// tunneled, or whether it is a tunnel's outer copy.
class Layout {
public:
    explicit Layout(Options o = {});

    // The variants of a record; kInspected added: the same with payload inspection's fields.
    enum Variant : uint8_t {
        kV4 = 0,
        kV6,
        kV4InV4,
        kV6InV4,
        kV4InV6,
        kV6InV6,
        kCopyV4,
        kCopyV6,
        kInspected = 8,
        kVariants = 16
    };
    static Variant variant_of(const flow::FlowRecord& r) noexcept;
    bool has(Variant v) const noexcept { return !f_[v].empty(); }

    const Options& options() const noexcept { return o_; }
    std::span<const FieldSpec> fields(Variant v) const noexcept { return spec_[v]; }
    std::span<const FieldSpec> fields(bool ipv6) const noexcept { return spec_[ipv6 ? kV6 : kV4]; }
    // Bytes of a record of the variant; for inspected variants without the variable-length fields.
    uint16_t record_length(Variant v) const noexcept { return len_[v]; }
    uint16_t record_length(bool ipv6) const noexcept { return len_[ipv6 ? kV6 : kV4]; }
    // Inspected variants take ids 256 above the others.
    uint16_t template_id(Variant v) const noexcept {
        return static_cast<uint16_t>(tid_ + (v & 7) + ((v & kInspected) ? inspected_offset_ : 0));
    }
    uint16_t template_id(bool ipv6) const noexcept { return template_id(ipv6 ? kV6 : kV4); }
    // The variant a record is written in (its own, or the nearest this layout has).
    Variant variant_for(const flow::FlowRecord& r) const noexcept {
        const Variant v = variant_of(r);
        const int inspected = (v & kInspected) && o_.names ? kInspected : 0;
        int base = v & 7;
        if (!has(static_cast<Variant>(base))) base = r.tuple.ip_version == 6 ? kV6 : kV4;
        return static_cast<Variant>(base | inspected);
    }
    // Records one conversation becomes: 1 for biflow; 1 or 2 (one per direction) for uniflow.
    uint32_t records_for(const flow::FlowRecord& r) const noexcept { return o_.biflow || !r.rev.packets ? 1 : 2; }
    // The variable-length fields of an inspected record, and the bytes its records take in
    // variant v (all of them: one or two).
    void var_fields(const flow::FlowRecord& r, VarFields& out) const;
    uint32_t length(const flow::FlowRecord& r, Variant v, const VarFields* vf) const noexcept;
    // One template set with every template of the layout; its length, or 0 when cap is too small.
    size_t write_template_set(uint8_t* buf, size_t cap) const noexcept;
    // A template set with the templates from variant `next` on that fit in `cap`; `next` moves past
    // them (kVariants when all are written). Its length, or 0 when not even one fits.
    size_t write_templates(uint8_t* buf, size_t cap, int& next) const noexcept;
    // Writes the records of a conversation at p in variant v (vf: its variable-length fields, for
    // an inspected variant); returns the end.
    uint8_t* put(uint8_t* p, const flow::FlowRecord& r, Variant v, const VarFields* vf) const noexcept;
    uint8_t* put(uint8_t* p, const flow::FlowRecord& r) const noexcept {
        return put(p, r, static_cast<Variant>(variant_for(r) & 7), nullptr);
    }

    enum class Src : uint8_t;
    struct Field {
        FieldSpec spec;
        Src src;
    };

private:
    uint8_t* put_one(uint8_t* p, const flow::FlowRecord& r, Variant v, bool reverse,
                     const VarFields* vf) const noexcept;
    Options o_;
    uint16_t tid_;
    uint16_t inspected_offset_;
    std::vector<Field> f_[kVariants];
    std::vector<FieldSpec> spec_[kVariants];
    uint16_t len_[kVariants] = {};
};

// The default layout: uniflow, milliseconds (templates 256 and 257).
const Layout& default_layout() noexcept;
inline std::span<const FieldSpec> template_fields(bool ipv6) noexcept { return default_layout().fields(ipv6); }
inline uint16_t record_length(bool ipv6) noexcept { return default_layout().record_length(ipv6); }
inline size_t write_template_set(uint8_t* buf, size_t cap) noexcept {
    return default_layout().write_template_set(buf, cap);
}
void write_header(uint8_t* msg, uint16_t length, uint32_t export_time, uint32_t sequence, uint32_t domain) noexcept;
// Sets export time and sequence number of a finished message in place.
void set_header_fields(uint8_t* msg, uint32_t export_time, uint32_t sequence) noexcept;

// Smallest message size that always fits one conversation in any layout.
constexpr uint32_t kMinMessage = kHeaderLen + kSetHeaderLen + 2 * 256;

class MessageEncoder {
public:
    MessageEncoder(uint32_t domain, uint32_t max_len, const Layout& layout = default_layout()) noexcept
        : layout_(&layout), domain_(domain), max_len_(max_len) {}

    void start(uint8_t* buf) noexcept;
    bool started() const noexcept { return buf_ != nullptr; }
    // Appends the records of an ended conversation (Layout::records_for). Returns false,
    // writing nothing, when they do not fit: finish() and start().
    bool add(const flow::FlowRecord& r);
    // Closes the open set and writes the header (sequence and export time left 0).
    // Returns the message length; the buffer is released.
    uint32_t finish() noexcept;

    uint32_t records() const noexcept { return records_; }
    uint32_t length() const noexcept { return pos_; }
    uint64_t packets() const noexcept { return packets_; }
    uint64_t octets() const noexcept { return octets_; }
    uint32_t domain() const noexcept { return domain_; }

private:
    const Layout* layout_;
    uint8_t* buf_ = nullptr;
    uint32_t pos_ = 0;
    uint32_t set_start_ = 0;
    uint16_t set_id_ = 0;
    uint32_t records_ = 0;
    uint64_t packets_ = 0;
    uint64_t octets_ = 0;
    uint32_t domain_;
    uint32_t max_len_;
    VarFields vf_;
};

}  // namespace weir::ipfix

// Options template records (RFC 7011 section 4): statistics and the interface table, sent on
// the template refresh schedule and once more at shutdown.
namespace weir::ipfix {

constexpr uint16_t kOptionsTemplateSetId = 3;
constexpr uint16_t kMeteringStatsTemplate = 400;   // scope observationDomainId
constexpr uint16_t kExportingStatsTemplate = 401;  // scope exportingProcessId
constexpr uint16_t kInterfaceTemplate = 402;       // scope ingressInterface
constexpr uint16_t kSamplingTemplate = 403;        // scope observationDomainId

struct MeteringStats {             // one worker = one observation domain
    uint64_t packets = 0;          // packetTotalCount: packets the worker received
    uint64_t ignored_packets = 0;  // ignoredPacketTotalCount: not accounted to a flow (decode drops)
    uint64_t flows = 0;            // observedFlowTotalCount: conversations created
    uint64_t lost_flows = 0;       // notSentFlowTotalCount: records lost before export
    uint64_t lost_packets = 0;     // notSentPacketTotalCount
};
struct ExportingStats {  // this exporter
    uint32_t process_id = 0;
    uint64_t messages = 0, records = 0, octets = 0, lost_records = 0, lost_packets = 0;
};
// Packet sampling of an observation domain: 1 in `interval` packets, systematic (count-based) or
// random (uniform probabilistic). interval 0: no sampling, and no sampling options record.
struct Sampling {
    uint32_t interval = 0;
    bool random = false;
};
struct InterfaceInfo {
    uint32_t index;
    std::string name, description;
};

// The options template set (three templates, four with sampling). Returns its length, 0 if cap is
// too small.
size_t write_options_templates(uint8_t* buf, size_t cap, bool sampling = false) noexcept;
// The data sets; `records` gets the number of records written. The metering statistics record
// names its domain (observationDomainName: the probe's name). 0 if cap is too small. The
// sampling record carries selectorAlgorithm (PSAMP, RFC 5477: 1 systematic count-based, 4
// uniform probabilistic) and the samplingInterval/samplingAlgorithm pair (1 deterministic, 2
// random) that collectors such as nfdump scale counters by.
size_t write_options_data(uint8_t* buf, size_t cap, uint32_t domain, const MeteringStats& m, const ExportingStats& e,
                          const std::vector<InterfaceInfo>& ifs, uint32_t& records, const Sampling& s = {},
                          const std::string& domain_name = {}) noexcept;

}  // namespace weir::ipfix
