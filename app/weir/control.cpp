#include "control.h"

#include <rte_ethdev.h>
#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <unistd.h>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace weir {
namespace {

std::atomic<int> g_signal{0};

void on_signal(int sig) {
    if (g_signal.exchange(sig) != 0) {
        // Second signal: the user wants out now.
        static const char msg[] = "weir: second signal, exiting without flushing\n";
        [[maybe_unused]] auto n = write(2, msg, sizeof(msg) - 1);
        _exit(130);
    }
}

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

uint32_t wall_s() { return static_cast<uint32_t>(std::time(nullptr)); }

// Moves every finished message of one worker to the exporters; returns how many.
unsigned drain(Runtime& rt, Worker& w) {
    void* bufs[64];
    const unsigned n = rte_ring_sc_dequeue_burst(w.full_ring(), bufs, 64, nullptr);
    if (n == 0) return 0;
    const uint32_t t = wall_s();
    for (unsigned i = 0; i < n; ++i) {
        auto* m = static_cast<MessageBuffer*>(bufs[i]);
        rt.handed_records += m->records;
        rt.handed_packets += m->packets;
        rt.handed_messages += 1;
        for (auto& ex : rt.exporters) ex->send_data(m->data, m->len, m->domain, m->records, m->packets, t);
    }
    rte_ring_sp_enqueue_burst(w.free_ring(), bufs, n, nullptr);
    return n;
}

bool replay_finished(const Runtime& rt) {
    for (size_t p = 0; p < rt.ports.size(); ++p) {
        rte_eth_stats st{};
        if (rte_eth_stats_get(rt.ports[p].id, &st) != 0) return false;
        // net_pcap counts a record it could not deliver in rx_nombuf or ierrors.
        if (st.ipackets + st.rx_nombuf + st.ierrors < rt.expected_packets[p]) return false;
    }
    return true;
}

struct Totals {
    uint64_t rx = 0, rx_bytes = 0, drops = 0, records = 0, dropped_records = 0, dropped_packets = 0;
    uint64_t created = 0, active = 0;
};

Totals totals(const Runtime& rt) {
    Totals t;
    for (const auto& w : rt.workers) {
        const auto& s = w->stats();
        t.rx += s.rx_packets.get();
        t.rx_bytes += s.rx_bytes.get();
        for (size_t d = 1; d < packet::kDropCount; ++d) t.drops += s.drops[d].get();
        t.records += s.records.get();
        t.dropped_records += s.dropped_records.get();
        t.dropped_packets += s.dropped_packets.get();
        t.created += w->table_stats().created.get();
        t.active += w->table_stats().active.get();
    }
    return t;
}

void print_interval(const Runtime& rt, double elapsed, Totals& last, double& last_t) {
    const Totals t = totals(rt);
    const double dt = elapsed - last_t;
    const double mpps = dt > 0 ? (t.rx - last.rx) / dt / 1e6 : 0;
    uint64_t errors = 0;
    for (const auto& ex : rt.exporters) errors += ex->stats().send_errors.get();
    std::fprintf(stderr,
                 "weir: %.1fs rx %lu pkts (%.3f Mpps) decode_drops %lu flows active %lu created %lu "
                 "records %lu export_drops %lu send_errors %lu\n",
                 elapsed, static_cast<unsigned long>(t.rx), mpps, static_cast<unsigned long>(t.drops),
                 static_cast<unsigned long>(t.active), static_cast<unsigned long>(t.created),
                 static_cast<unsigned long>(t.records), static_cast<unsigned long>(t.dropped_records),
                 static_cast<unsigned long>(errors));
    last = t;
    last_t = elapsed;
}

}  // namespace

void install_signal_handlers() {
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

void control_loop(Runtime& rt) {
    bool stopping = false;
    Totals last{};
    double last_t = 0;
    const double t0 = rt.started_s;
    double next_stats = rt.cfg.stats_interval_s > 0 ? rt.cfg.stats_interval_s : 1e300;
    for (;;) {
        unsigned moved = 0;
        for (auto& w : rt.workers) moved += drain(rt, *w);

        if (!stopping) {
            const int sig = g_signal.load();
            const bool eof = rt.cfg.replay && replay_finished(rt);
            if (sig || eof) {
                if (sig) std::fprintf(stderr, "weir: %s: stopping RX, flushing every flow\n", strsignal(sig));
                for (auto& w : rt.workers) w->request_stop();
                stopping = true;
            }
        } else {
            bool all_done = true;
            for (auto& w : rt.workers) all_done = all_done && w->done();
            if (all_done) {
                // Workers are done: whatever is still in the rings is all there is.
                for (auto& w : rt.workers)
                    while (drain(rt, *w) != 0) {
                    }
                break;
            }
        }
        const double elapsed = now_s() - t0;
        if (elapsed >= next_stats) {
            print_interval(rt, elapsed, last, last_t);
            next_stats += rt.cfg.stats_interval_s;
        }
        if (moved == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
}

bool report(Runtime& rt) {
    using nlohmann::json;
    json j;
    const double elapsed = now_s() - rt.started_s;
    j["elapsed_s"] = elapsed;

    json ports = json::array();
    for (size_t p = 0; p < rt.ports.size(); ++p) {
        const auto& pi = rt.ports[p];
        rte_eth_stats st{};
        rte_eth_stats_get(pi.id, &st);
        json jp = {{"id", pi.id},           {"name", pi.name},         {"driver", pi.driver},
                   {"queues", pi.queues},   {"rss", pi.rss},           {"ipackets", st.ipackets},
                   {"ibytes", st.ibytes},   {"imissed", st.imissed},   {"ierrors", st.ierrors},
                   {"rx_nombuf", st.rx_nombuf}};
        if (rt.cfg.replay) jp["capture_packets"] = rt.expected_packets[p];
        ports.push_back(jp);
    }
    j["ports"] = ports;

    json workers = json::array();
    uint64_t rx = 0, drops_total = 0, dropped_packets = 0, records = 0, dropped_records = 0;
    json drops = json::object();
    json expired = json::object();
    uint64_t created = 0, evicted_full = 0, evicted_bucket = 0;
    for (const auto& w : rt.workers) {
        const auto& s = w->stats();
        json jw = {{"domain", w->domain()},
                   {"rx_packets", s.rx_packets.get()},
                   {"rx_bytes", s.rx_bytes.get()},
                   {"records", s.records.get()},
                   {"messages", s.messages.get()},
                   {"flows_created", w->table_stats().created.get()},
                   {"table_capacity", w->table_capacity()}};
        json jq = json::array();
        for (size_t i = 0; i < w->queues().size(); ++i)
            jq.push_back({{"port", w->queues()[i].port},
                          {"queue", w->queues()[i].queue},
                          {"packets", w->queue_stats(i).packets.get()},
                          {"bytes", w->queue_stats(i).bytes.get()}});
        jw["queues"] = jq;
        const uint64_t total = s.total_cycles.get();
        jw["busy_ratio"] = total ? static_cast<double>(s.busy_cycles.get()) / total : 0.0;
        workers.push_back(jw);
        rx += s.rx_packets.get();
        for (size_t d = 1; d < packet::kDropCount; ++d) {
            const char* name = packet::drop_name(static_cast<packet::Drop>(d));
            drops[name] = drops.value(name, uint64_t{0}) + s.drops[d].get();
            drops_total += s.drops[d].get();
        }
        drops["l4_truncated_accounted"] = drops.value("l4_truncated_accounted", uint64_t{0}) + s.l4_truncated.get();
        dropped_packets += s.dropped_packets.get();
        dropped_records += s.dropped_records.get();
        records += s.records.get();
        const auto& ts = w->table_stats();
        created += ts.created.get();
        evicted_full += ts.evicted_table_full.get();
        evicted_bucket += ts.evicted_bucket_full.get();
        for (uint8_t r = 1; r < flow::kEndReasonSlots; ++r) {
            const char* name = flow::end_reason_name(static_cast<flow::EndReason>(r));
            expired[name] = expired.value(name, uint64_t{0}) + ts.expired[r].get();
        }
    }
    j["workers"] = workers;
    j["rx_packets"] = rx;
    j["decode_drops"] = drops;
    j["flows"] = {{"created", created},
                  {"expired", expired},
                  {"evicted_table_full", evicted_full},
                  {"evicted_bucket_full", evicted_bucket}};

    json exporters = json::array();
    for (const auto& ex : rt.exporters) {
        const auto& s = ex->stats();
        exporters.push_back({{"url", ex->url()},
                             {"messages", s.messages.get()},
                             {"template_messages", s.template_messages.get()},
                             {"bytes", s.bytes.get()},
                             {"records", s.records.get()},
                             {"packets", s.packets.get()},
                             {"send_errors", s.send_errors.get()},
                             {"lost_records", s.lost_records.get()},
                             {"lost_packets", s.lost_packets.get()}});
    }
    j["exporters"] = exporters;
    j["records_encoded"] = records;
    j["records_handed"] = rt.handed_records;
    j["export_ring_dropped_records"] = dropped_records;

    // Every packet that reached a worker is in exactly one place: a record handed to the
    // control thread, a record the worker could not hand over, or a decode drop.
    const bool balanced = rx == rt.handed_packets + dropped_packets + drops_total;
    j["accounting"] = {{"rx_packets", rx},
                       {"in_records", rt.handed_packets},
                       {"dropped_in_export_ring", dropped_packets},
                       {"decode_drops", drops_total},
                       {"balanced", balanced}};

    std::printf("weir summary (%.3f s)\n", elapsed);
    for (const auto& jp : j["ports"]) {
        std::printf("  port %s (%s, %s): rx %lu packets %lu bytes, imissed %lu, rx_nombuf %lu, ierrors %lu",
                    jp["name"].get<std::string>().c_str(), jp["driver"].get<std::string>().c_str(),
                    jp["rss"].get<std::string>().c_str(), jp["ipackets"].get<unsigned long>(),
                    jp["ibytes"].get<unsigned long>(), jp["imissed"].get<unsigned long>(),
                    jp["rx_nombuf"].get<unsigned long>(), jp["ierrors"].get<unsigned long>());
        if (jp.contains("capture_packets"))
            std::printf(", capture holds %lu", jp["capture_packets"].get<unsigned long>());
        std::printf("\n");
    }
    for (size_t i = 0; i < rt.workers.size(); ++i) {
        const auto& jw = j["workers"][i];
        std::printf("  worker %zu (domain %u): rx %lu packets, %lu flows, %lu records, busy %.1f%%\n", i,
                    jw["domain"].get<unsigned>(), jw["rx_packets"].get<unsigned long>(),
                    jw["flows_created"].get<unsigned long>(), jw["records"].get<unsigned long>(),
                    100.0 * jw["busy_ratio"].get<double>());
    }
    std::printf("  decode drops:");
    for (auto it = drops.begin(); it != drops.end(); ++it) std::printf(" %s %lu", it.key().c_str(), it->get<unsigned long>());
    std::printf("\n  flows: created %lu, expired", static_cast<unsigned long>(created));
    for (auto it = expired.begin(); it != expired.end(); ++it)
        std::printf(" %s %lu", it.key().c_str(), it->get<unsigned long>());
    std::printf(" (evictions: table full %lu, bucket full %lu)\n", static_cast<unsigned long>(evicted_full),
                static_cast<unsigned long>(evicted_bucket));
    std::printf("  records: %lu encoded, %lu dropped before export (export ring full)\n",
                static_cast<unsigned long>(records), static_cast<unsigned long>(dropped_records));
    if (rt.exporters.empty()) std::printf("  export: no exporter configured; records were discarded\n");
    for (const auto& je : j["exporters"])
        std::printf("  export %s: %lu records (%lu packets) in %lu messages + %lu template messages, %lu bytes; "
                    "send errors %lu, records lost %lu\n",
                    je["url"].get<std::string>().c_str(), je["records"].get<unsigned long>(),
                    je["packets"].get<unsigned long>(), je["messages"].get<unsigned long>(),
                    je["template_messages"].get<unsigned long>(), je["bytes"].get<unsigned long>(),
                    je["send_errors"].get<unsigned long>(), je["lost_records"].get<unsigned long>());
    std::printf("  accounting: %lu packets = %lu in records + %lu dropped at export ring + %lu decode drops: %s\n",
                static_cast<unsigned long>(rx), static_cast<unsigned long>(rt.handed_packets),
                static_cast<unsigned long>(dropped_packets), static_cast<unsigned long>(drops_total),
                balanced ? "OK" : "MISMATCH");
    std::fflush(stdout);

    if (!rt.cfg.summary_json.empty()) {
        std::ofstream out(rt.cfg.summary_json);
        out << j.dump(2) << "\n";
        if (!out) std::fprintf(stderr, "weir: cannot write %s\n", rt.cfg.summary_json.c_str());
    }
    return balanced;
}

}  // namespace weir
