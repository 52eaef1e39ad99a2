// SPDX-License-Identifier: BSD-3-Clause
// The export side on one control thread: how many records per second each exporter encodes and
// delivers, from synthetic ended conversations handed over in worker-sized batches (64), as the
// control loop does. One line per exporter:
//   export FORMAT TRANSPORT conversations=N records=N sec=S krec_per_s=R lost=N delivered=N
// Transports: a UDP sink bound on 127.0.0.1 (a thread counts the datagrams that arrive), a file
// under /tmp, and Kafka (librdkafka's mock cluster in this process, three brokers, 12 partitions:
// the real protocol over loopback; the time includes waiting for every delivery report).
// With --clickhouse URL also a ClickHouse server's HTTP interface (table weir.flows of
// deploy/clickhouse/weir.sql; batches of 10000 rows; the time includes the last insert).
// usage: export_bench [--conversations N] [--only NAME] [--clickhouse http://HOST:PORT]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "export/exporter.h"
#include "flow/flow_record.h"
#include "udp_sink.h"

#ifdef WEIR_HAVE_KAFKA
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#endif

using namespace weir;

namespace {

std::vector<flow::FlowRecord> conversations(uint32_t n) {
    std::vector<flow::FlowRecord> v(n);
    for (uint32_t i = 0; i < n; ++i) {
        flow::FlowRecord& r = v[i];
        std::memset(&r, 0, sizeof(r));
        r.tuple.ip_version = 4;
        r.tuple.proto = 6;
        const uint32_t a = htonl(0x0A000000u | (i & 0xFFFFFF)), b = htonl(0xC0A80001u + (i % 4096));
        std::memcpy(r.tuple.src, &a, 4);
        std::memcpy(r.tuple.dst, &b, 4);
        r.tuple.sport = static_cast<uint16_t>(1024 + i % 60000);
        r.tuple.dport = 443;
        const uint64_t t0 = 1'700'000'000'000'000'000ull + uint64_t{i} * 1000;
        r.fwd = {6, 520, t0, t0 + 40'000'000, 0x1b, 60, 64, 0, 0};
        r.rev = {4, 4800, t0 + 1'000'000, t0 + 39'000'000, 0x1b, 50, 50, 0, 0};
        r.end_reason = 3;
    }
    return v;
}

void run(const char* name, const std::string& format, const std::string& url, const std::vector<flow::FlowRecord>& recs,
         weir::perf::UdpSink* sink = nullptr) {
    config::Config cfg;
    cfg.probe = "bench";
    config::Exporter ex;
    ex.format = format == "jsonl" ? config::Format::kJsonl
        : format == "clickhouse"  ? config::Format::kClickhouse
        : format == "netflow9"    ? config::Format::kNetflow9
                                  : config::Format::kIpfix;
    config::parse_url(url, ex);
    ex.queue_mb = 256;
    const uint64_t before = sink ? sink->datagrams.load() : 0;
    auto e = exporter::make_exporter(ex, cfg, nullptr);
    const auto t0 = std::chrono::steady_clock::now();
    const uint32_t batch = 64;
    uint32_t now_s = 1'700'000'000;
    for (size_t i = 0; i < recs.size(); i += batch) {
        const auto n = static_cast<uint32_t>(std::min<size_t>(batch, recs.size() - i));
        e->send_records(recs.data() + i, n, 1, now_s);
        if ((i / batch) % 32 == 31) e->flush(now_s);  // a control loop's round: up to 2048 records
        if ((i / batch) % 1024 == 0) e->tick(now_s);  // about every 100 ms of a busy control loop
    }
    e->finish(now_s);
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto& s = e->stats();
    std::string delivered = std::to_string(s.records.get());
    if (sink) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        delivered = std::to_string(sink->datagrams.load() - before) + "_of_" +
            // NetFlow v9 sends its templates in data datagrams (counted in both).
            std::to_string(s.messages.get() + (format == "netflow9" ? 0 : s.template_messages.get())) + "_datagrams";
    }
    std::printf(
        "export %s conversations=%zu records=%lu sec=%.3f krec_per_s=%.0f bytes_per_rec=%.0f lost=%lu delivered=%s\n",
        name, recs.size(), static_cast<unsigned long>(s.records.get() + s.lost_records.get()), sec,
        static_cast<double>(s.records.get() + s.lost_records.get()) / sec / 1000,
        s.records.get() ? static_cast<double>(s.bytes.get()) / static_cast<double>(s.records.get()) : 0.0,
        static_cast<unsigned long>(s.lost_records.get()), delivered.c_str());
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    uint32_t n = 1'000'000;
    std::string only, clickhouse;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--conversations")) n = static_cast<uint32_t>(std::atoi(argv[i + 1]));
        if (!std::strcmp(argv[i], "--only")) only = argv[i + 1];
        if (!std::strcmp(argv[i], "--clickhouse")) clickhouse = argv[i + 1];
    }
    const auto recs = conversations(n);
    auto want = [&](const char* name) { return only.empty() || only == name; };
    const std::string file = "/tmp/weir-export-bench-" + std::to_string(getpid());
    if (want("ipfix_udp")) {
        weir::perf::UdpSink sink;
        run("ipfix_udp", "ipfix", "udp://127.0.0.1:" + std::to_string(sink.port), recs, &sink);
    }
    if (want("ipfix_file")) run("ipfix_file", "ipfix", "file://" + file + ".ipfix", recs);
    if (want("netflow9_udp")) {
        weir::perf::UdpSink sink;
        run("netflow9_udp", "netflow9", "udp://127.0.0.1:" + std::to_string(sink.port), recs, &sink);
    }
    if (want("jsonl_file")) run("jsonl_file", "jsonl", "file://" + file + ".jsonl", recs);
    unlink((file + ".ipfix").c_str());
    unlink((file + ".jsonl").c_str());
    if (!clickhouse.empty() && want("clickhouse_http")) run("clickhouse_http", "clickhouse", clickhouse, recs);
#ifdef WEIR_HAVE_KAFKA
    if (want("jsonl_kafka") || want("ipfix_kafka")) {
        char err[256];
        rd_kafka_conf_t* conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
        rd_kafka_t* host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(host, 3);
        rd_kafka_mock_topic_create(mc, "flows", 12, 3);
        rd_kafka_mock_topic_create(mc, "ipfix", 12, 3);
        const std::string boot = rd_kafka_mock_cluster_bootstraps(mc);
        if (want("jsonl_kafka")) run("jsonl_kafka", "jsonl", "kafka://" + boot + "/flows", recs);
        if (want("ipfix_kafka")) run("ipfix_kafka", "ipfix", "kafka://" + boot + "/ipfix", recs);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(host);
    }
#endif
    return 0;
}
