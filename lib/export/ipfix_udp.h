// IPFIX over UDP to one collector (control thread only). Keeps, per observation domain, the
// sequence number (data records sent before each message, RFC 7011 section 3.1) and the
// template schedule: templates go out before a domain's first data message, then again every
// template_refresh_s seconds or template_refresh_messages messages, whichever comes first.
// A failed send is counted and its records are lost; it never blocks or retries.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/counter.h"
#include "config/config.h"
#include "flow/flow_record.h"
#include "ipfix/ipfix.h"

namespace weir::exporter {

struct ExporterStats {
    Counter messages;
    Counter template_messages;
    Counter bytes;
    Counter records;
    Counter packets;         // packets in the records sent
    Counter send_errors;
    Counter lost_records;    // in messages that could not be sent
    Counter lost_packets;
};

class IpfixUdpExporter {
public:
    IpfixUdpExporter(const config::Exporter& ex, const config::Config& cfg);  // throws std::runtime_error
    ~IpfixUdpExporter();
    IpfixUdpExporter(const IpfixUdpExporter&) = delete;
    IpfixUdpExporter& operator=(const IpfixUdpExporter&) = delete;

    // Encodes ended conversations of observation domain `domain` into as few messages as fit
    // the MTU and sends them (templates first when due).
    void send_records(const flow::FlowRecord* records, uint32_t count, uint32_t domain, uint32_t now_s);

    const std::string& url() const { return url_; }
    const ExporterStats& stats() const { return stats_; }
    int last_errno() const { return last_errno_; }

private:
    struct Domain {
        uint32_t sequence = 0;
        uint32_t last_template_s = 0;
        uint32_t since_template = 0;
        bool templates_sent = false;
    };
    bool send(const uint8_t* p, size_t n);
    void send_templates(uint32_t domain, Domain& d, uint32_t now_s);
    void send_message(uint32_t domain, ipfix::MessageEncoder& enc, uint32_t now_s);

    std::string url_;
    int fd_ = -1;
    uint32_t refresh_s_;
    uint32_t refresh_messages_;
    std::map<uint32_t, Domain> domains_;
    ExporterStats stats_;
    int last_errno_ = 0;
    std::vector<uint8_t> buf_;  // one message, max_message bytes
};

}  // namespace weir::exporter
