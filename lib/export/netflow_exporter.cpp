// SPDX-License-Identifier: BSD-3-Clause
// NetFlow v9 and v5 exporters over UDP. Per source (one per worker, the IPFIX observation
// domain): the clock of netflow.h, and the sequence: v9 counts export packets (RFC 3954 section
// 5.1), v5 counts flow records sent before the packet. v9 templates go out with the data on the
// same schedule as IPFIX templates. v5 cannot carry IPv6: those records are skipped and counted.
#include <map>
#include <vector>

#include "export/exporter.h"
#include "export/transport.h"
#include "ipfix/netflow.h"

namespace weir::exporter {
namespace {

class NetflowExporter : public Exporter {
public:
    NetflowExporter(const config::Exporter& ex, const config::Config& cfg, const ExportContext* ctx)
        : Exporter(ex),
          ifindex_(ctx ? ctx->ifindex : std::vector<uint32_t>{}),
          sampling_(ctx ? ctx->sampling : ipfix::Sampling{}),
          v5_(ex.format == config::Format::kNetflow5),
          macs_(ex.macs),
          transport_(make_transport(ex, cfg)),
          schedule_(cfg.template_refresh_s, cfg.template_refresh_messages),
          buf_(transport_->max_message()) {
        transport_->batch();  // UDP: one sendmmsg per round of the control loop
    }

    void send_records(const flow::FlowRecord* records, uint32_t count, uint32_t domain, uint32_t now_s) override {
        Source& s = sources_[domain];
        for (uint32_t i = 0; i < count; ++i) s.clock.observe(records[i]);
        if (v5_)
            send_v5(records, count, domain, s, now_s);
        else
            send_v9(records, count, domain, s, now_s);
    }

    void flush(uint32_t) override { flush_queue(*transport_); }

    void tick(uint32_t now_s) override { tick_queue(*transport_, now_s); }

    void finish(uint32_t now_s) override { flush(now_s); }

private:
    struct Source {
        netflow::NetflowClock clock;
        uint32_t sequence = 0;
        TemplateSchedule::State templates;
    };

    // A datagram queued is counted sent; one its flush could not send is moved to lost then
    // (settle), with the records and packets it carried.
    bool deliver(uint32_t len, uint32_t now_s, uint64_t records, uint64_t packets) {
        if (transport_->send(buf_.data(), len, now_s, records, packets)) {
            stats_.bytes.add(len);
            stats_.messages.add();
            took(*transport_);
            return true;
        }
        stats_.send_errors.add();
        delivered(false, transport_->last_errno());
        return false;
    }

    void send_v9(const flow::FlowRecord* r, uint32_t count, uint32_t domain, Source& s, uint32_t now_s) {
        uint32_t i = 0;
        while (i < count) {
            netflow::v9::Encoder enc(buf_.data(), static_cast<uint32_t>(buf_.size()), macs_, &ifindex_, sampling_);
            const bool with_templates = schedule_.due(s.templates, now_s);
            if (with_templates) enc.add_templates();
            while (i < count && enc.add(r[i], s.clock)) ++i;
            const uint32_t len = enc.finish(s.clock, s.sequence, domain);
            if (deliver(len, now_s, enc.data_records(), enc.packets())) {
                ++s.sequence;  // v9 counts packets
                stats_.records.add(enc.data_records());
                stats_.packets.add(enc.packets());
                if (with_templates) {
                    stats_.template_messages.add();
                    TemplateSchedule::sent(s.templates, now_s);
                } else {
                    TemplateSchedule::data_sent(s.templates);
                }
            } else {
                stats_.lost_records.add(enc.data_records());
                stats_.lost_packets.add(enc.packets());
            }
        }
    }

    void send_v5(const flow::FlowRecord* r, uint32_t count, uint32_t domain, Source& s, uint32_t now_s) {
        netflow::v5::Encoder enc(buf_.data(), buf_.size(), &ifindex_, sampling_);
        auto flush = [&] {
            if (!enc.records()) return;
            const uint32_t len = enc.finish(s.clock, s.sequence, static_cast<uint8_t>(domain));
            if (deliver(len, now_s, enc.records(), enc.packets())) {
                s.sequence += enc.records();  // v5 counts flows
                stats_.records.add(enc.records());
                stats_.packets.add(enc.packets());
            } else {
                stats_.lost_records.add(enc.records());
                stats_.lost_packets.add(enc.packets());
            }
            stats_.saturated_records.add(enc.saturated());
            enc = netflow::v5::Encoder(buf_.data(), buf_.size(), &ifindex_, sampling_);
        };
        for (uint32_t i = 0; i < count; ++i) {
            if (!netflow::v5::Encoder::can_encode(r[i])) {
                stats_.skipped_records.add(r[i].rev.packets ? 2 : 1);
                stats_.skipped_packets.add(r[i].packets());
                continue;
            }
            if (!enc.add(r[i], s.clock)) {
                flush();
                enc.add(r[i], s.clock);
            }
        }
        flush();
    }

    std::vector<uint32_t> ifindex_;
    ipfix::Sampling sampling_;
    bool v5_;
    bool macs_;
    std::unique_ptr<Transport> transport_;
    TemplateSchedule schedule_;
    std::map<uint32_t, Source> sources_;
    std::vector<uint8_t> buf_;
};

}  // namespace

std::unique_ptr<Exporter> make_netflow_exporter(const config::Exporter& ex, const config::Config& cfg,
                                                std::shared_ptr<const ExportContext> ctx) {
    return std::make_unique<NetflowExporter>(ex, cfg, ctx.get());
}

}  // namespace weir::exporter
