// SPDX-License-Identifier: BSD-3-Clause
// IPFIX exporter: per observation domain, the sequence number (data records sent before each
// message, RFC 7011 section 3.1) and the template schedule: templates before a domain's first
// data on each transport generation (socket, file), then every template_refresh_s seconds or
// template_refresh_messages messages, whichever comes first.
#include <map>
#include <vector>

#include "export/exporter.h"
#include "inspect/ipfix_names.h"
#include "export/transport.h"
#include "ipfix/ipfix.h"

namespace weir::exporter {

Exporter::Exporter(const config::Exporter& ex) : Exporter(ex, "what it carries is counted lost until it recovers") {}

void Exporter::settle(Transport& t) {
    const Transport::Lost l = t.take_lost();
    if (l.messages) {
        stats_.records.sub(l.records);
        stats_.packets.sub(l.packets);
        stats_.lost_records.add(l.records);
        stats_.lost_packets.add(l.packets);
    }
    if (l.failed) {
        stats_.send_errors.add(l.failed);
        delivered(false, l.err);
    } else if (l.sent) {
        delivered(true, 0);
    }
    stats_.reconnects.set(t.reconnects());
}

Exporter::Exporter(const config::Exporter& ex, std::string consequence)
    : url_(ex.url),
      format_(config::format_name(ex.format)),
      identity_(identity_of(ex)),
      failures_(std::string("exporter ") + config::format_name(ex.format) + " " + ex.url, std::chrono::seconds(60),
                std::move(consequence)) {}

std::string identity_of(const config::Exporter& ex) {
    std::string id = std::string(config::format_name(ex.format)) + " " + ex.url + " " + config::mode_name(ex.mode) +
        " " + config::time_unit_name(ex.time_unit) + (ex.macs ? " macs" : "") + (ex.mpls ? " mpls" : "") +
        (ex.direction ? " direction" : "") + (ex.rtt ? " rtt" : "") + (ex.sizes ? " sizes" : "") + " " +
        std::to_string(ex.rotate_mb) + " " + std::to_string(ex.rotate_s) + " " + std::to_string(ex.queue_mb) +
        (ex.options ? " options" : "") + " " + ex.table + " " + std::to_string(ex.batch_rows) + " " +
        std::to_string(ex.flush_s) + " " + std::to_string(ex.queue_batches) + " " + ex.source + " " +
        std::to_string(ex.dscp) + " " + ex.user + " " + ex.password + " " + ex.ca_file + (ex.compress ? " gzip" : "") +
        " " + std::to_string(ex.keys);
    for (const auto& [k, v] : ex.kafka) id += " " + k + "=" + v;
    return id;
}

ipfix::Options ipfix_options(const config::Exporter& ex, const config::Config& cfg, const ExportContext* ctx) {
    ipfix::Options o;
    if (ctx) o.ifindex = ctx->ifindex;
    o.biflow = ex.mode == config::Mode::kBiflow;
    o.macs = ex.macs;
    o.mpls = ex.mpls;
    o.rtt = ex.rtt;
    o.sizes = ex.sizes;
    if (ex.direction) {
        o.direction = ctx ? ctx->direction : std::vector<uint8_t>{};
        if (o.direction.empty()) o.direction.push_back(0xFF);  // the element all the same
    }
    o.pen = cfg.enterprise_number;
    static const inspect::RegistryNames names;
    if (cfg.inspect.on()) o.names = &names;
    o.tunnels = cfg.tunnels.mode == packet::TunnelMode::kOuter ? ipfix::Tunnels::kNone
        : cfg.tunnels.mode == packet::TunnelMode::kInner       ? ipfix::Tunnels::kInner
                                                               : ipfix::Tunnels::kBoth;
    o.time = ex.time_unit == config::TimeUnit::kUs ? ipfix::TimeUnit::kMicroseconds
        : ex.time_unit == config::TimeUnit::kNs    ? ipfix::TimeUnit::kNanoseconds
                                                   : ipfix::TimeUnit::kMilliseconds;
    return o;
}

namespace {

class IpfixExporter : public Exporter {
public:
    IpfixExporter(const config::Exporter& ex, const config::Config& cfg, std::shared_ptr<const ExportContext> ctx)
        : Exporter(ex),
          layout_(ipfix_options(ex, cfg, ctx.get())),
          ctx_(ex.options ? std::move(ctx) : nullptr),
          transport_(make_transport(ex, cfg)),
          schedule_(cfg.template_refresh_s, cfg.template_refresh_messages),
          probe_(cfg.probe),
          buf_(transport_->max_message()) {
        if (transport_->generation()) stats_.files.add();
        transport_->batch();  // UDP: one sendmmsg per round of the control loop
    }

    void send_records(const flow::FlowRecord* records, uint32_t count, uint32_t domain, uint32_t now_s) override {
        ipfix::MessageEncoder enc(domain, static_cast<uint32_t>(buf_.size()), layout_);
        enc.start(buf_.data());
        for (uint32_t i = 0; i < count; ++i) {
            if (enc.add(records[i])) continue;
            send_message(domain, enc, now_s);
            enc.start(buf_.data());
            enc.add(records[i]);  // always fits an empty message
        }
        if (enc.records()) send_message(domain, enc, now_s);
    }

    void flush(uint32_t) override { flush_queue(*transport_); }

    void tick(uint32_t now_s) override { tick_queue(*transport_, now_s); }

private:
    struct Domain {
        uint32_t sequence = 0;
        TemplateSchedule::State templates;
    };

    bool deliver(const uint8_t* p, size_t n, uint32_t now_s, uint64_t records = 0, uint64_t packets = 0) {
        const uint64_t gen = transport_->generation();
        if (transport_->send(p, n, now_s, records, packets)) {
            stats_.bytes.add(n);
            if (transport_->generation() != gen) stats_.files.add();  // reopened after an error
            took(*transport_);
            return true;
        }
        stats_.send_errors.add();
        delivered(false, transport_->last_errno());
        return false;
    }

    // The layout's templates, in as many messages as the transport's message size needs, with
    // the options templates in the last one.
    void send_templates(uint32_t domain, Domain& d, uint32_t now_s) {
        std::vector<uint8_t> buf(transport_->max_message());
        int next = 0;
        bool ok = true;
        while (ok && next < ipfix::Layout::kVariants) {
            size_t len = ipfix::kHeaderLen;
            len += layout_.write_templates(buf.data() + len, buf.size() - len, next);
            if (next == ipfix::Layout::kVariants && ctx_) {
                const size_t o =
                    ipfix::write_options_templates(buf.data() + len, buf.size() - len, ctx_->sampling.interval != 0);
                if (!o && len > ipfix::kHeaderLen) {  // no room left: the options templates go alone
                    ipfix::write_header(buf.data(), static_cast<uint16_t>(len), now_s, d.sequence, domain);
                    ok = deliver(buf.data(), len, now_s);
                    if (ok) stats_.template_messages.add();
                    len = ipfix::kHeaderLen;
                    len += ipfix::write_options_templates(buf.data() + len, buf.size() - len,
                                                          ctx_->sampling.interval != 0);
                } else {
                    len += o;
                }
            }
            if (!ok || len == ipfix::kHeaderLen) break;
            ipfix::write_header(buf.data(), static_cast<uint16_t>(len), now_s, d.sequence, domain);
            ok = deliver(buf.data(), len, now_s);
            if (ok) stats_.template_messages.add();
        }
        if (ok) {
            TemplateSchedule::sent(d.templates, now_s, transport_->generation());
            send_options(domain, d, now_s);
        }
    }

    // Statistics and the interface table as options data (counted in the sequence like any
    // data record, RFC 7011 section 3.1).
    void send_options(uint32_t domain, Domain& d, uint32_t now_s) {
        if (!ctx_ || d.templates.generation != transport_->generation()) return;
        std::vector<uint8_t> buf(4096);
        ipfix::ExportingStats e;
        e.process_id = ctx_->process_id;
        e.messages = stats_.messages.get();
        e.records = stats_.records.get();
        e.octets = stats_.bytes.get();
        e.lost_records = stats_.lost_records.get();
        e.lost_packets = stats_.lost_packets.get();
        const ipfix::MeteringStats m = ctx_->metering ? ctx_->metering(domain) : ipfix::MeteringStats{};
        uint32_t records = 0;
        const size_t n = ipfix::write_options_data(buf.data() + ipfix::kHeaderLen, buf.size() - ipfix::kHeaderLen,
                                                   domain, m, e, ctx_->interfaces, records, ctx_->sampling, probe_);
        if (!n) return;
        const auto len = static_cast<uint16_t>(ipfix::kHeaderLen + n);
        ipfix::write_header(buf.data(), len, now_s, d.sequence, domain);
        if (deliver(buf.data(), len, now_s)) {
            d.sequence += records;
            stats_.options_records.add(records);
        }
    }

public:
    void finish(uint32_t now_s) override {
        for (auto& [domain, d] : domains_) send_options(domain, d, now_s);
        flush(now_s);
    }

private:
    void send_message(uint32_t domain, ipfix::MessageEncoder& enc, uint32_t now_s) {
        Domain& d = domains_[domain];
        const uint64_t gen = transport_->generation();
        transport_->prepare(enc.length() + 1024, now_s);  // room for templates too
        settle(*transport_);
        if (transport_->generation() != gen && !transport_->new_session_per_generation()) stats_.files.add();
        if (d.templates.generation != transport_->generation() && transport_->new_session_per_generation())
            d.sequence = 0;  // a new TCP connection is a new transport session (RFC 7011 10.4)
        if (schedule_.due(d.templates, now_s, transport_->generation())) send_templates(domain, d, now_s);
        const uint32_t records = enc.records();
        const uint64_t packets = enc.packets();
        const uint32_t len = enc.finish();
        ipfix::set_header_fields(buf_.data(), now_s, d.sequence);
        if (d.templates.generation == transport_->generation() && deliver(buf_.data(), len, now_s, records, packets)) {
            d.sequence += records;
            TemplateSchedule::data_sent(d.templates);
            stats_.messages.add();
            stats_.records.add(records);
            stats_.packets.add(packets);
        } else {
            stats_.lost_records.add(records);
            stats_.lost_packets.add(packets);
        }
    }

    ipfix::Layout layout_;
    std::shared_ptr<const ExportContext> ctx_;
    std::unique_ptr<Transport> transport_;
    TemplateSchedule schedule_;
    std::map<uint32_t, Domain> domains_;
    std::string probe_;
    std::vector<uint8_t> buf_;
};

}  // namespace

std::unique_ptr<Exporter> make_exporter(const config::Exporter& ex, const config::Config& cfg,
                                        std::shared_ptr<const ExportContext> ctx) {
    if (ex.scheme == config::Scheme::kKafka) {
        if (!kafka_available())
            throw std::runtime_error(ex.url +
                                     ": this weir was built without Kafka (librdkafka-dev missing at build time)");
        return make_kafka_exporter(ex, cfg, std::move(ctx));
    }
    if (ex.netflow()) return make_netflow_exporter(ex, cfg, std::move(ctx));
    if (ex.format == config::Format::kJsonl || ex.format == config::Format::kClickhouse)
        return make_json_exporter(ex, cfg, std::move(ctx));
    return std::make_unique<IpfixExporter>(ex, cfg, std::move(ctx));
}

}  // namespace weir::exporter
