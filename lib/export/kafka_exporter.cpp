// SPDX-License-Identifier: BSD-3-Clause
// Kafka exporter (librdkafka): JSON lines or IPFIX messages produced to one topic, for sites where
// many probes feed one bus. Records of a batch are spread over `keys` message keys by a hash of
// the conversation that is the same for both directions (and for every record of a conversation
// an active timeout splits), so one conversation always lands in one partition, in order
// (idempotent producer). librdkafka's own bounded queue holds what the brokers have not taken;
// when it is full a message is dropped and counted, never waited for. Delivery reports, errors
// and librdkafka's log are served on the control thread (rd_kafka_poll in tick()).
//
// IPFIX over Kafka: each key gets the templates (and, every refresh, again) before its first data
// in a message of the same key, so every partition is readable on its own. Sequence numbers count
// an observation domain's records over all partitions: a consumer of one partition sees gaps,
// and reads loss from weir's metrics instead.
#include <librdkafka/rdkafka.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/log.h"
#include "export/exporter.h"
#include "ipfix/ipfix.h"

namespace weir::exporter {

namespace {

// FNV-1a over the conversation with its two ends in a fixed order: the same for both directions.
uint64_t conversation_hash(const flow::FlowRecord& r) {
    const packet::Tuple& t = r.tuple;
    const size_t alen = t.ip_version == 6 ? 16 : 4;
    int c = std::memcmp(t.src, t.dst, alen);
    if (c == 0) c = t.sport < t.dport ? -1 : t.sport > t.dport ? 1 : 0;
    const bool icmp = t.proto == 1 || t.proto == 58;  // request and answer differ in type: one key all the same
    if (icmp) c = std::memcmp(t.src, t.dst, alen);
    const uint8_t* lo = c <= 0 ? t.src : t.dst;
    const uint8_t* hi = c <= 0 ? t.dst : t.src;
    const uint16_t lport = icmp ? 0 : c <= 0 ? t.sport : t.dport, hport = icmp ? 0 : c <= 0 ? t.dport : t.sport;
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    };
    mix(&t.proto, 1);
    mix(&t.ip_version, 1);
    mix(&t.vlan, 2);
    mix(lo, alen);
    mix(&lport, 2);
    mix(hi, alen);
    mix(&hport, 2);
    const uint32_t tid = r.tunnel_id_or_zero();
    mix(&tid, 4);
    return h;
}

class KafkaExporter : public Exporter {
public:
    KafkaExporter(const config::Exporter& ex, const config::Config& cfg, std::shared_ptr<const ExportContext> ctx)
        : Exporter(ex,
                   "librdkafka keeps the messages and tries again for up to message.timeout.ms, then they are "
                   "counted lost"),
          ex_(ex),
          ctx_(std::move(ctx)),
          probe_(cfg.probe),
          layout_(ipfix_options(ex, cfg, ctx_.get())),
          schedule_(cfg.template_refresh_s, cfg.template_refresh_messages),
          max_message_(65535) {  // an IPFIX message's largest; Kafka takes it whole
        char err[512];
        rd_kafka_conf_t* conf = rd_kafka_conf_new();
        auto set = [&](const std::string& k, const std::string& v, bool user) {
            if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(conf);
                throw std::runtime_error(ex.url + ": " + (user ? "kafka." + k + ": " : "") + err);
            }
        };
        set("bootstrap.servers", ex.host, false);
        set("client.id", "weir-" + cfg.probe, false);
        // Ordered, without duplicates, per partition even when requests are retried.
        set("enable.idempotence", "true", false);
        set("queue.buffering.max.kbytes", std::to_string(static_cast<uint64_t>(ex.queue_mb * 1024) + 1), false);
        set("queue.buffering.max.messages", "1000000", false);
        set("linger.ms", "20", false);
        set("statistics.interval.ms", "1000", false);
        set("log.queue", "true", false);
        for (const auto& [k, v] : ex.kafka) set(k, v, true);
        rd_kafka_conf_set_opaque(conf, this);
        rd_kafka_conf_set_dr_msg_cb(conf, &KafkaExporter::on_delivery);
        rd_kafka_conf_set_error_cb(conf, &KafkaExporter::on_error);
        rd_kafka_conf_set_stats_cb(conf, &KafkaExporter::on_stats);
        rd_kafka_conf_set_log_cb(conf, &KafkaExporter::on_log);
        rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));  // owns conf on success
        if (!rk_) {
            rd_kafka_conf_destroy(conf);
            throw std::runtime_error(ex.url + ": cannot make a Kafka producer: " + err);
        }
        rd_kafka_set_log_queue(rk_, nullptr);  // librdkafka's log through rd_kafka_poll, on this thread
        rkt_ = rd_kafka_topic_new(rk_, ex.path.c_str(), nullptr);
        if (!rkt_) {
            rd_kafka_destroy(rk_);
            throw std::runtime_error(ex.url + ": topic " + ex.path + ": " + rd_kafka_err2str(rd_kafka_last_error()));
        }
        buckets_.resize(ex.keys);
    }
    ~KafkaExporter() override {
        // finish() flushed what it could; anything still queued is dropped with the producer.
        rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(rk_, 0);
        rd_kafka_topic_destroy(rkt_);
        rd_kafka_destroy(rk_);
    }

    void send_records(const flow::FlowRecord* records, uint32_t count, uint32_t domain, uint32_t now_s) override {
        for (auto& b : buckets_) b.clear();
        for (uint32_t i = 0; i < count; ++i)
            buckets_[conversation_hash(records[i]) % buckets_.size()].push_back(&records[i]);
        for (uint32_t k = 0; k < buckets_.size(); ++k) {
            if (buckets_[k].empty()) continue;
            if (ex_.format == config::Format::kJsonl)
                send_json(k, domain);
            else
                send_ipfix(k, domain, now_s);
        }
        rd_kafka_poll(rk_, 0);
        sync();
    }

    void tick(uint32_t /*now_s*/) override {
        rd_kafka_poll(rk_, 0);
        sync();
    }

    void finish(uint32_t /*now_s*/) override {
        // Up to 30 s for the brokers to take what is queued; the rest is counted lost.
        const rd_kafka_resp_err_t rc = rd_kafka_flush(rk_, 30000);
        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_flush(rk_, 1000);  // serves the purged messages' delivery reports
        }
        rd_kafka_poll(rk_, 0);
        sync();
    }

private:
    // What a produced message carries, for its delivery report.
    struct Load {
        uint64_t records = 0, packets = 0, bytes = 0;
        bool templates = false;
    };

    void send_json(uint32_t key, uint32_t domain) {
        std::string out;
        uint64_t records = 0, packets = 0;
        for (const flow::FlowRecord* r : buckets_[key]) {
            json_rows(out, r, 1, domain, ex_, ctx_.get(), probe_, false, records, packets);
            if (out.size() >= 65536) {
                produce(key, out.data(), out.size(), {records, packets, out.size(), false});
                out.clear();
                records = packets = 0;
            }
        }
        if (!out.empty()) produce(key, out.data(), out.size(), {records, packets, out.size(), false});
    }

    void send_ipfix(uint32_t key, uint32_t domain, uint32_t now_s) {
        uint32_t& sequence = sequence_[domain];
        TemplateSchedule::State& ks = keys_[(uint64_t{domain} << 32) | key];
        if (schedule_.due(ks, now_s) && send_templates(key, domain, sequence, now_s)) TemplateSchedule::sent(ks, now_s);
        buf_.resize(max_message_);
        ipfix::MessageEncoder enc(domain, static_cast<uint32_t>(buf_.size()), layout_);
        auto flush = [&] {
            const uint32_t records = enc.records();
            const uint64_t packets = enc.packets();
            const uint32_t len = enc.finish();
            ipfix::set_header_fields(buf_.data(), now_s, sequence);
            sequence += records;  // the records are in the domain's sequence whether or not they arrive
            TemplateSchedule::data_sent(ks);
            produce(key, buf_.data(), len, {records, packets, len, false});
        };
        enc.start(buf_.data());
        for (const flow::FlowRecord* r : buckets_[key]) {
            if (enc.add(*r)) continue;
            flush();
            enc.start(buf_.data());
            enc.add(*r);
        }
        if (enc.records()) flush();
    }

    bool send_templates(uint32_t key, uint32_t domain, uint32_t sequence, uint32_t now_s) {
        std::vector<uint8_t> buf(max_message_);
        int next = 0;
        bool ok = true;
        while (ok && next < ipfix::Layout::kVariants) {
            size_t len = ipfix::kHeaderLen;
            len += layout_.write_templates(buf.data() + len, buf.size() - len, next);
            if (len == ipfix::kHeaderLen) break;
            ipfix::write_header(buf.data(), static_cast<uint16_t>(len), now_s, sequence, domain);
            ok = produce(key, buf.data(), len, {0, 0, len, true});
        }
        return ok;
    }

    // Hands one message to librdkafka (copied); false, counted, when its queue is full or the
    // message cannot be produced.
    bool produce(uint32_t key, const void* p, size_t n, const Load& load) {
        char k[12];
        const int klen = snprintf(k, sizeof(k), "%u", key);
        auto* l = new Load(load);
        if (rd_kafka_produce(rkt_, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, const_cast<void*>(p), n, k,
                             static_cast<size_t>(klen), l) == 0) {
            ++queued_;
            return true;
        }
        const rd_kafka_resp_err_t err = rd_kafka_last_error();
        delete l;
        stats_.send_errors.add();
        stats_.lost_records.add(load.records);
        stats_.lost_packets.add(load.packets);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) stats_.queue_full.add();
        failures_.failed(std::string("cannot produce: ") + rd_kafka_err2str(err));
        return false;
    }

    static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
        auto* self = static_cast<KafkaExporter*>(opaque);
        auto* l = static_cast<Load*>(m->_private);
        if (self->queued_) --self->queued_;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (l->templates) {
                self->stats_.template_messages.add();
            } else {
                self->stats_.messages.add();
                self->stats_.records.add(l->records);
                self->stats_.packets.add(l->packets);
            }
            self->stats_.bytes.add(l->bytes);
            self->failures_.ok();
        } else {
            self->stats_.send_errors.add();
            self->stats_.lost_records.add(l->records);
            self->stats_.lost_packets.add(l->packets);
            self->failures_.failed(std::string("delivery failed: ") + rd_kafka_err2str(m->err));
        }
        delete l;
    }

    static void on_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
        auto* self = static_cast<KafkaExporter*>(opaque);
        // librdkafka recovers from these itself (brokers down: it reconnects); say so once per
        // episode through the failure log, alongside the deliveries that fail.
        self->failures_.failed(std::string(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))) + ": " + reason);
    }

    static int on_stats(rd_kafka_t*, char* json, size_t len, void* opaque) {
        auto* self = static_cast<KafkaExporter*>(opaque);
        const auto j = nlohmann::json::parse(json, json + len, nullptr, false);
        if (j.is_discarded() || !j.contains("brokers") || !j["brokers"].is_object()) return 0;
        uint64_t retries = 0, reconnects = 0;
        for (const auto& [name, b] : j["brokers"].items()) {
            if (b.contains("txretries") && b["txretries"].is_number_unsigned())
                retries += b["txretries"].get<uint64_t>();
            if (b.contains("connects") && b["connects"].is_number_unsigned() && b["connects"].get<uint64_t>() > 1)
                reconnects += b["connects"].get<uint64_t>() - 1;
        }
        // Broker statistics restart when librdkafka forgets a broker: keep the largest seen.
        if (retries > self->retries_) self->retries_ = retries;
        if (reconnects > self->reconnects_) self->reconnects_ = reconnects;
        return 0;  // librdkafka frees the JSON
    }

    static void on_log(const rd_kafka_t*, int level, const char* fac, const char* buf) {
        // syslog levels, as weir's; librdkafka's chatter below notice stays out of the journal.
        const auto l = level <= 3 ? log::Level::kError : level == 4 ? log::Level::kWarning : log::Level::kDebug;
        log::say(l, "kafka %s: %s", fac, buf);
    }

    void sync() {
        stats_.queued.set(queued_);
        stats_.retries.set(retries_);
        stats_.reconnects.set(reconnects_);
    }

    config::Exporter ex_;
    std::shared_ptr<const ExportContext> ctx_;
    std::string probe_;
    ipfix::Layout layout_;
    TemplateSchedule schedule_;
    size_t max_message_;
    rd_kafka_t* rk_ = nullptr;
    rd_kafka_topic_t* rkt_ = nullptr;
    std::vector<std::vector<const flow::FlowRecord*>> buckets_;
    std::map<uint32_t, uint32_t> sequence_;             // by observation domain
    std::map<uint64_t, TemplateSchedule::State> keys_;  // by (domain, key)
    std::vector<uint8_t> buf_;
    uint64_t queued_ = 0, retries_ = 0, reconnects_ = 0;
};

}  // namespace

bool kafka_available() { return true; }

std::vector<std::string> kafka_problems(const config::Exporter& ex) {
    std::vector<std::string> out;
    if (ex.scheme != config::Scheme::kKafka) return out;
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    for (const auto& [k, v] : ex.kafka)
        if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK)
            out.push_back("kafka." + k + ": " + err);
    rd_kafka_conf_destroy(conf);
    return out;
}

std::unique_ptr<Exporter> make_kafka_exporter(const config::Exporter& ex, const config::Config& cfg,
                                              std::shared_ptr<const ExportContext> ctx) {
    return std::make_unique<KafkaExporter>(ex, cfg, std::move(ctx));
}

}  // namespace weir::exporter
