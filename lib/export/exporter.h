// SPDX-License-Identifier: BSD-3-Clause
// Exporters (control thread only): each takes the ended conversations workers hand over and
// delivers them in its own format over its own transport. A failed delivery is counted with
// the records and packets it lost; nothing here blocks for long or retries forever.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "zones/zones.h"
#include "common/counter.h"
#include "config/config.h"
#include "export/failure_log.h"
#include "export/transport.h"
#include "flow/flow_record.h"
#include "ipfix/ipfix.h"

namespace weir::exporter {

struct ExporterStats {
    Counter messages;
    Counter template_messages;
    Counter bytes;
    Counter records;  // records in the exporter's format (e.g. two uniflow per conversation)
    Counter packets;  // packets in the records delivered
    Counter send_errors;
    Counter lost_records;  // in messages that could not be delivered
    Counter lost_packets;
    Counter reconnects;
    Counter files;            // files opened (file transport)
    Counter skipped_records;  // the format cannot carry them (IPv6 in NetFlow v5)
    Counter skipped_packets;
    Counter saturated_records;  // counters clipped at 2^32-1 (NetFlow v5)
    Counter options_records;    // IPFIX options records sent (statistics, interface table)
    Counter retries;            // deliveries tried again (Kafka produce requests, ClickHouse inserts)
    Counter queue_full;         // messages refused because the exporter's local queue was full (records lost)
    Counter queued;             // gauge: messages accepted but not yet delivered nor lost
};

// What the exporters may report about the probe itself (IPFIX options records): metering
// statistics per observation domain, read on the control thread, and the interface table.
struct ExportContext {
    std::function<ipfix::MeteringStats(uint32_t domain)> metering;
    std::vector<ipfix::InterfaceInfo> interfaces;
    std::vector<uint32_t> ifindex;   // the interface number each port's records carry, by DPDK port id
    std::vector<uint8_t> direction;  // flowDirection by DPDK port id: 0 ingress, 1 egress, 0xFF unsaid
    ipfix::Sampling sampling;        // the packet sampling of every port (interval 0: none)
    uint32_t process_id = 0;
    std::shared_ptr<const zones::ZoneMap> zones;  // JSON and ClickHouse rows name each end's zone; nullptr: no zones
};

class Transport;

// When templates go out again (IPFIX, NetFlow v9; per observation domain, or per Kafka key):
// before the first data on each transport generation (a new file, a new connection), then every
// refresh_s seconds or refresh_messages data messages, whichever comes first.
class TemplateSchedule {
public:
    struct State {
        uint32_t last_s = 0;               // when templates last went out
        uint32_t since = 0;                // data messages since
        uint64_t generation = UINT64_MAX;  // the transport generation they went out on (none yet)
    };
    TemplateSchedule(uint32_t refresh_s, uint32_t refresh_messages) : s_(refresh_s), m_(refresh_messages) {}
    bool due(const State& st, uint32_t now_s, uint64_t generation = 0) const {
        return st.generation != generation || now_s - st.last_s >= s_ || st.since >= m_;
    }
    static void sent(State& st, uint32_t now_s, uint64_t generation = 0) {
        st.generation = generation;
        st.last_s = now_s;
        st.since = 0;
    }
    static void data_sent(State& st) { ++st.since; }

private:
    uint32_t s_, m_;
};

class Exporter {
public:
    virtual ~Exporter() = default;
    // Conversations of observation domain `domain` (one per worker).
    virtual void send_records(const flow::FlowRecord* records, uint32_t count, uint32_t domain, uint32_t now_s) = 0;
    // Called by the control thread after each round of send_records (a burst of batches): sends
    // what a batching transport queued, and counts the outcome.
    virtual void flush(uint32_t /*now_s*/) {}
    // Called by the control thread about every 100 ms: reconnect, flush queues, count losses.
    virtual void tick(uint32_t /*now_s*/) {}
    // At shutdown, after the last records: final statistics (IPFIX options records).
    virtual void finish(uint32_t /*now_s*/) {}

    const std::string& url() const { return url_; }
    const std::string& format() const { return format_; }
    const ExporterStats& stats() const { return stats_; }
    // Same destination, format and options: a reload keeps this exporter (and its sequence).
    const std::string& identity() const { return identity_; }

protected:
    Exporter(const config::Exporter& ex);
    Exporter(const config::Exporter& ex, std::string consequence);  // what a failed delivery costs, for the log
    // After each delivery: a failure goes to the log when it starts, every minute while it
    // lasts, and when it ends.
    // A transport that lost messages it had accepted (a connection that broke with messages
    // queued, a batched datagram that failed): their records move from sent to lost; failed
    // sends are counted and logged, reconnections copied.
    void settle(Transport& t);
    // A batching transport's queue sent and its outcome counted: after a round of the control
    // loop (flush), and at a tick, where the transport also reconnects or reopens (prepare).
    void flush_queue(Transport& t) {
        t.flush();
        settle(t);
    }
    void tick_queue(Transport& t, uint32_t now_s) {
        t.flush();
        t.prepare(0, now_s);
        settle(t);
    }
    // After the transport took a message: a refusal it reports is counted; a transport that
    // sends at once has delivered it (a batching one reports at flush, through settle).
    void took(Transport& t) {
        const bool refused = t.take_refused();
        if (refused || !t.batching()) delivered(true, 0, refused);
    }
    void delivered(bool ok, int err, bool refused = false) {
        if (refused) {
            stats_.send_errors.add();
            failures_.failed("Connection refused (the collector answers with ICMP port unreachable: is it listening?)");
        } else if (ok) {
            failures_.ok();
        } else {
            failures_.failed(err ? std::strerror(err) : "refused");
        }
    }
    std::string url_, format_, identity_;
    ExporterStats stats_;
    FailureLog failures_;
};

// Builds the exporter a configuration entry describes; throws std::runtime_error naming the
// URL and the reason (cannot resolve, cannot open the file, ...).
std::unique_ptr<Exporter> make_exporter(const config::Exporter& ex, const config::Config& cfg,
                                        std::shared_ptr<const ExportContext> ctx = nullptr);
std::string identity_of(const config::Exporter& ex);
// The makers behind make_exporter, one per family of formats.
std::unique_ptr<Exporter> make_netflow_exporter(const config::Exporter& ex, const config::Config& cfg,
                                                std::shared_ptr<const ExportContext> ctx);
std::unique_ptr<Exporter> make_json_exporter(const config::Exporter& ex, const config::Config& cfg,
                                             std::shared_ptr<const ExportContext> ctx);
std::unique_ptr<Exporter> make_kafka_exporter(const config::Exporter& ex, const config::Config& cfg,
                                              std::shared_ptr<const ExportContext> ctx);
// Whether this weir was built with Kafka (librdkafka).
bool kafka_available();
// What is wrong with a kafka:// exporter's settings that only librdkafka can tell (its
// properties), or that this build has no Kafka: "kafka.NAME: reason" / "url: reason".
std::vector<std::string> kafka_problems(const config::Exporter& ex);

// The IPFIX layout options an exporter's settings ask for (uniflow/biflow, time unit, opt-in
// elements, tunnels, enterprise number, payload inspection's names).
ipfix::Options ipfix_options(const config::Exporter& ex, const config::Config& cfg, const ExportContext* ctx);

// JSON lines of a batch of conversations as the jsonl format writes them (one object per line;
// `clickhouse`: start/end as Unix seconds); adds the records and packets written.
void json_rows(std::string& out, const flow::FlowRecord* rs, uint32_t n, uint32_t domain, const config::Exporter& ex,
               const ExportContext* ctx, const std::string& probe, bool clickhouse, uint64_t& records,
               uint64_t& packets);

}  // namespace weir::exporter
