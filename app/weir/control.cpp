#include "control.h"

#include "common/log.h"
#include "common/notify.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ring.h>

#include <algorithm>
#include <arpa/inet.h>
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
std::atomic<bool> g_hup{false};

void on_hup(int) { g_hup.store(true); }

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

double unix_s() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Moves every finished message of one worker to the exporters; returns how many.
unsigned drain(Runtime& rt, Worker& w) {
    void* bufs[64];
    const unsigned n = rte_ring_sc_dequeue_burst(w.full_ring(), bufs, 64, nullptr);
    if (n == 0) return 0;
    const uint32_t t = wall_s();
    std::lock_guard<std::mutex> lock(rt.mu);
    for (unsigned i = 0; i < n; ++i) {
        auto* b = static_cast<RecordBatch*>(bufs[i]);
        rt.handed_records += b->count;
        rt.handed_packets += b->packets;
        rt.handed_copy_packets += b->copy_packets;
        rt.handed_batches += 1;
        for (auto& ex : rt.exporters) ex->send_records(b->records, b->count, b->domain, t);
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
    weir::log::say(weir::log::Level::kInfo,
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
    struct sigaction hup{};
    hup.sa_handler = on_hup;
    sigemptyset(&hup.sa_mask);
    sigaction(SIGHUP, &hup, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

namespace {

// Applies a new configuration where that can be done live (exporters, timeouts, template
// refresh, stats interval) and refuses the whole reload, changing nothing, when anything else
// differs. Control thread only.
nlohmann::json do_reload(Runtime& rt) {
    using nlohmann::json;
    std::vector<std::string> errors, changed;
    json pinned = json::array();
    config::Config c;
    try {
        c = config::from_json(rt.config_source(pinned));
    } catch (const config::ConfigError& e) {
        errors = e.problems();
    } catch (const std::exception& e) {
        errors.push_back(e.what());
    }
    const config::Config& o = rt.cfg;
    if (errors.empty()) {
        auto fixed = [&](bool same, const char* what) {
            if (!same) errors.push_back(std::string(what) + ": cannot change while weir runs (restart weir to change it)");
        };
        bool ports_same = c.ports.size() == o.ports.size();
        for (size_t i = 0; ports_same && i < c.ports.size(); ++i)
            ports_same = c.ports[i].device == o.ports[i].device && c.ports[i].rx_descriptors == o.ports[i].rx_descriptors;
        fixed(ports_same, "ports");
        fixed(c.eal == o.eal, "eal");
        fixed(c.workers == o.workers, "workers");
        fixed(c.flow_capacity == o.flow_capacity, "flow_table.capacity_per_worker");
        fixed(c.tunnels == o.tunnels, "tunnels");
        fixed(c.enterprise_number == o.enterprise_number, "ipfix.enterprise_number");
        if (c.want_macs() && !o.want_macs())
            errors.push_back("exporters: MAC addresses are kept only when an exporter asked for them at start "
                             "(restart weir to add \"macs\": true)");
        fixed(c.mtu == o.mtu, "ipfix.mtu");
        fixed(c.observation_domain == o.observation_domain, "ipfix.observation_domain");
        fixed(c.max_delay_ms == o.max_delay_ms, "ipfix.max_delay_ms");
        fixed(c.export_buffers == o.export_buffers, "ipfix.buffers_per_worker");
        fixed(c.burst == o.burst, "burst");
        fixed(c.sample_interval == o.sample_interval && c.sample_random == o.sample_random, "sampling");
        fixed(c.mbufs_per_queue == o.mbufs_per_queue, "mbufs_per_queue");
        fixed(c.management == o.management, "management.listen");
        fixed(c.drivers_config.empty() || c.drivers_config == o.drivers_config, "drivers_config");
    }
    // Exporters: keep those whose URL stays (their sequence numbers go on), open the new ones.
    std::vector<std::unique_ptr<exporter::Exporter>> next;
    if (errors.empty()) {
        std::lock_guard<std::mutex> lock(rt.mu);
        std::vector<std::unique_ptr<exporter::Exporter>> old = std::move(rt.exporters);
        rt.exporters.clear();
        try {
            for (const auto& ex : c.exporters) {
                const std::string id = exporter::identity_of(ex);
                auto it = std::find_if(old.begin(), old.end(), [&](const auto& p) { return p && p->identity() == id; });
                if (it != old.end() && c.template_refresh_s == o.template_refresh_s &&
                    c.template_refresh_messages == o.template_refresh_messages)
                    next.push_back(std::move(*it));
                else
                    next.push_back(exporter::make_exporter(ex, c, rt.export_context));
            }
        } catch (const std::exception& e) {
            errors.push_back(std::string("exporters: ") + e.what());
        }
        if (!errors.empty()) {
            // Put back what was there: nothing changes on a refused reload.
            for (auto& p : next)
                if (p) {
                    auto it = std::find_if(old.begin(), old.end(), [](const auto& q) { return !q; });
                    if (it != old.end()) *it = std::move(p);
                }
            rt.exporters = std::move(old);
        } else {
            std::vector<std::string> before, after;
            for (const auto& e : o.exporters) before.push_back(exporter::identity_of(e));
            for (const auto& e : c.exporters) after.push_back(exporter::identity_of(e));
            if (before != after) changed.push_back("exporters");
            rt.exporters = std::move(next);
        }
    }
    if (errors.empty()) {
        if (c.idle_timeout_s != o.idle_timeout_s || c.active_timeout_s != o.active_timeout_s ||
            c.tcp_end_timeout_s != o.tcp_end_timeout_s) {
            for (auto& w : rt.workers)
                w->set_timeouts(static_cast<uint64_t>(c.idle_timeout_s * 1e9), static_cast<uint64_t>(c.active_timeout_s * 1e9),
                                static_cast<uint64_t>(c.tcp_end_timeout_s * 1e9));
            changed.push_back("timeouts");
        }
        if (c.template_refresh_s != o.template_refresh_s || c.template_refresh_messages != o.template_refresh_messages)
            changed.push_back("ipfix.template_refresh");
        if (c.stats_interval_s != o.stats_interval_s) changed.push_back("stats_interval_s");
        if (c.log_level != o.log_level) {
            log::set_level(c.log_level);
            changed.push_back("log_level");
        }
        const std::string drivers = rt.cfg.drivers_config;
        rt.cfg = c;
        rt.cfg.drivers_config = drivers;
        rt.reloads += 1;
        rt.last_reload_ok = true;
        rt.last_reload_ok_unix_s = unix_s();
        weir::log::say(weir::log::Level::kNotice, "weir: reload applied (%s)\n", changed.empty() ? "nothing changed" : [&] {
            std::string s;
            for (const auto& x : changed) s += (s.empty() ? "" : ", ") + x;
            return s;
        }().c_str());
    } else {
        rt.reload_failures += 1;
        rt.last_reload_ok = false;
        for (const auto& e : errors) weir::log::say(weir::log::Level::kError, "weir: reload refused: %s\n", e.c_str());
    }
    for (const auto& p : pinned)
        weir::log::say(weir::log::Level::kWarning, "weir: reload: %s stays %s, as %s on the command line says (the file says %s)\n",
                     p["key"].get<std::string>().c_str(), p["value"].dump().c_str(),
                     p["option"].get<std::string>().c_str(), p["file"].dump().c_str());
    return json{{"ok", errors.empty()}, {"changed", changed}, {"pinned", pinned}, {"errors", errors}};
}

void refresh_port_stats(Runtime& rt, std::vector<uint64_t>& last_busy, std::vector<uint64_t>& last_total) {
    std::vector<rte_eth_stats> st(rt.ports.size());
    for (size_t p = 0; p < rt.ports.size(); ++p) rte_eth_stats_get(rt.ports[p].id, &st[p]);
    std::vector<double> busy(rt.workers.size());
    for (size_t w = 0; w < rt.workers.size(); ++w) {
        const uint64_t b = rt.workers[w]->stats().busy_cycles.get(), t = rt.workers[w]->stats().total_cycles.get();
        busy[w] = t > last_total[w] ? static_cast<double>(b - last_busy[w]) / static_cast<double>(t - last_total[w]) : 0;
        last_busy[w] = b;
        last_total[w] = t;
    }
    std::lock_guard<std::mutex> lock(rt.mu);
    rt.port_stats = std::move(st);
    rt.busy_ratio = std::move(busy);
}

}  // namespace

nlohmann::json request_reload(Runtime& rt) {
    std::unique_lock<std::mutex> lock(rt.reload_mu);
    const uint64_t id = ++rt.reload_requested;
    if (!rt.reload_cv.wait_for(lock, std::chrono::seconds(10), [&] { return rt.reload_done >= id; }))
        return {{"ok", false}, {"errors", {"the control thread did not answer within 10 s"}}};
    return rt.reload_result;
}

void control_loop(Runtime& rt) {
    bool stopping = false;
    Totals last{};
    double last_t = 0;
    const double t0 = rt.started_s;
    double next_stats = rt.cfg.stats_interval_s > 0 ? rt.cfg.stats_interval_s : 1e300;
    double next_ports = 0, next_tick = 0, next_watchdog = 0;
    const double watchdog_s = notify::watchdog_usec() / 1e6;
    std::vector<uint64_t> last_busy(rt.workers.size()), last_total(rt.workers.size());
    for (;;) {
        unsigned moved = 0;
        for (auto& w : rt.workers) moved += drain(rt, *w);

        // Reloads: SIGHUP, or the API (which waits for the answer).
        bool api_reload;
        {
            std::lock_guard<std::mutex> lock(rt.reload_mu);
            api_reload = rt.reload_requested != rt.reload_done;
        }
        if (g_hup.exchange(false) || api_reload) {
            notify::reloading();
            nlohmann::json r = do_reload(rt);
            notify::send("READY=1");
            std::lock_guard<std::mutex> lock(rt.reload_mu);
            rt.reload_result = std::move(r);
            rt.reload_done = rt.reload_requested;
            rt.reload_cv.notify_all();
        }

        if (!stopping) {
            const int sig = g_signal.load();
            const bool eof = rt.cfg.replay && !rt.replay_finished && replay_finished(rt);
            if (eof) {
                refresh_port_stats(rt, last_busy, last_total);  // final counters before the flag shows
                rt.replay_finished = true;
                if (rt.cfg.hold_after_replay)
                    weir::log::say(weir::log::Level::kNotice, "weir: end of capture; holding (flows stay active) until SIGINT/SIGTERM\n");
            }
            if (sig || (eof && !rt.cfg.hold_after_replay)) {
                if (sig) weir::log::say(weir::log::Level::kNotice, "weir: %s: stopping RX, flushing every flow\n", strsignal(sig));
                rt.stopping = true;
                notify::send("STOPPING=1");
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
                std::lock_guard<std::mutex> lock(rt.mu);
                for (auto& ex : rt.exporters) ex->finish(wall_s());  // final statistics
                for (auto& ex : rt.exporters) ex->tick(wall_s());
                break;
            }
        }
        const double elapsed = now_s() - t0;
        if (elapsed >= next_ports) {
            refresh_port_stats(rt, last_busy, last_total);
            next_ports = elapsed + 0.25;
        }
        if (watchdog_s > 0 && elapsed >= next_watchdog) {
            notify::send("WATCHDOG=1");  // the control loop is alive: draining, exporting, answering
            next_watchdog = elapsed + watchdog_s / 2;
        }
        if (elapsed >= next_tick) {
            std::lock_guard<std::mutex> lock(rt.mu);
            for (auto& ex : rt.exporters) ex->tick(wall_s());
            next_tick = elapsed + 0.1;
        }
        if (rt.cfg.stats_interval_s > 0 && next_stats > elapsed + rt.cfg.stats_interval_s)
            next_stats = elapsed + rt.cfg.stats_interval_s;  // a reload shortened the interval
        if (elapsed >= next_stats) {
            print_interval(rt, elapsed, last, last_t);
            next_stats = rt.cfg.stats_interval_s > 0 ? next_stats + rt.cfg.stats_interval_s : 1e300;
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
    uint64_t rx = 0, drops_total = 0, dropped_packets = 0, records = 0, dropped_records = 0, sampled_out = 0;
    uint64_t dropped_copy = 0, outer_copies = 0, handed = 0, handoff_dropped = 0, contexts_full = 0;
    uint64_t multi_segment = 0, linearized = 0, ipv6_ext_limit = 0;
    json tunneled = json::object(), stops = json::object();
    json drops = json::object();
    json expired = json::object();
    uint64_t created = 0, evicted_full = 0, evicted_bucket = 0;
    for (const auto& w : rt.workers) {
        const auto& s = w->stats();
        json jw = {{"domain", w->domain()},
                   {"rx_packets", s.rx_packets.get()},
                   {"rx_bytes", s.rx_bytes.get()},
                   {"records", s.records.get()},
                   {"batches", s.batches.get()},
                   {"flows_created", w->table_stats().created.get()},
                   {"table_capacity", w->table_capacity()},
                   {"handed_out", s.handed_out.get()},
                   {"handed_in", s.handed_in.get()},
                   {"tunnel_contexts_full", w->tunnel_stats().full.get()}};
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
        sampled_out += s.sampled_out.get();
        drops["l4_truncated_accounted"] = drops.value("l4_truncated_accounted", uint64_t{0}) + s.l4_truncated.get();
        dropped_packets += s.dropped_packets.get();
        dropped_records += s.dropped_records.get();
        dropped_copy += s.dropped_copy_packets.get();
        outer_copies += s.outer_copies.get();
        handed += s.handed_out.get();
        handoff_dropped += s.handoff_dropped.get();
        contexts_full += w->tunnel_stats().full.get();
        multi_segment += s.multi_segment.get();
        linearized += s.linearized.get();
        ipv6_ext_limit += s.ipv6_ext_limit.get();
        for (size_t t = 1; t < packet::kTunnelTypeCount; ++t) {
            const char* name = packet::tunnel_name(static_cast<packet::TunnelType>(t));
            tunneled[name] = tunneled.value(name, uint64_t{0}) + s.tunneled[t].get();
        }
        for (size_t r = 1; r < packet::kTunnelStopCount; ++r) {
            const char* name = packet::tunnel_stop_name(static_cast<packet::TunnelStop>(r));
            stops[name] = stops.value(name, uint64_t{0}) + s.tunnel_stops[r].get();
        }
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
                             {"lost_packets", s.lost_packets.get()},
                             {"skipped_records", s.skipped_records.get()},
                             {"skipped_packets", s.skipped_packets.get()},
                             {"saturated_records", s.saturated_records.get()},
                             {"files", s.files.get()},
                             {"reconnects", s.reconnects.get()},
                             {"options_records", s.options_records.get()},
                             {"format", ex->format()}});
    }
    j["exporters"] = exporters;
    j["records_written"] = records;
    j["records_handed"] = rt.handed_records.load();
    j["export_ring_dropped_records"] = dropped_records;
    j["frames"] = {{"multi_segment", multi_segment}, {"linearized", linearized}, {"ipv6_ext_limit", ipv6_ext_limit}};
    j["tunnels"] = {{"mode", config::tunnel_mode_name(rt.cfg.tunnels.mode)},
                    {"decapsulated", tunneled},
                    {"not_followed", stops},
                    {"outer_copies", outer_copies},
                    {"handed_between_workers", handed},
                    {"handoff_dropped", handoff_dropped},
                    {"contexts_full", contexts_full}};

    // Every packet that reached a worker is in exactly one place: a record handed to the
    // control thread, a record the worker could not hand over, a packet lost between workers, or
    // a decode drop. The copies of tunneled packets in their tunnel's own flow (mode both) are
    // counted apart, and balance the same way.
    const uint64_t handed_packets = rt.handed_packets.load();
    const uint64_t handed_copies = rt.handed_copy_packets.load();
    const bool balanced = rx == handed_packets + dropped_packets + handoff_dropped + drops_total + sampled_out &&
                          outer_copies == handed_copies + dropped_copy;
    j["accounting"] = {{"rx_packets", rx},
                       {"in_records", handed_packets},
                       {"dropped_in_export_ring", dropped_packets},
                       {"dropped_between_workers", handoff_dropped},
                       {"decode_drops", drops_total},
                       {"sampled_out", sampled_out},
                       {"outer_copies", outer_copies},
                       {"outer_copies_in_records", handed_copies},
                       {"outer_copies_dropped_in_export_ring", dropped_copy},
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
    std::printf("  flow records: %lu (ended conversations), %lu dropped before export (export ring full)\n",
                static_cast<unsigned long>(records), static_cast<unsigned long>(dropped_records));
    std::printf("  frames: %lu in several buffers (%lu with headers across buffers), %lu with IPv6 extension headers "
                "past the limit\n",
                static_cast<unsigned long>(multi_segment), static_cast<unsigned long>(linearized),
                static_cast<unsigned long>(ipv6_ext_limit));
    std::printf("  tunnels (%s): opened", config::tunnel_mode_name(rt.cfg.tunnels.mode));
    uint64_t opened = 0;
    for (auto it = tunneled.begin(); it != tunneled.end(); ++it)
        if (it->get<uint64_t>()) std::printf(" %s %lu", it.key().c_str(), it->get<unsigned long>()), opened += it->get<uint64_t>();
    if (!opened) std::printf(" none");
    std::printf("; not followed:");
    for (auto it = stops.begin(); it != stops.end(); ++it) std::printf(" %s %lu", it.key().c_str(), it->get<unsigned long>());
    std::printf("; outer copies %lu; between workers %lu (lost %lu); no context %lu\n",
                static_cast<unsigned long>(outer_copies), static_cast<unsigned long>(handed),
                static_cast<unsigned long>(handoff_dropped), static_cast<unsigned long>(contexts_full));
    if (rt.exporters.empty()) std::printf("  export: no exporter configured; records were discarded\n");
    for (const auto& je : j["exporters"])
        std::printf("  export %s %s: %lu records (%lu packets) in %lu messages + %lu template messages, %lu bytes; "
                    "send errors %lu, records lost %lu, skipped %lu\n",
                    je["format"].get<std::string>().c_str(), je["url"].get<std::string>().c_str(),
                    je["records"].get<unsigned long>(), je["packets"].get<unsigned long>(),
                    je["messages"].get<unsigned long>(), je["template_messages"].get<unsigned long>(),
                    je["bytes"].get<unsigned long>(), je["send_errors"].get<unsigned long>(),
                    je["lost_records"].get<unsigned long>(), je["skipped_records"].get<unsigned long>());
    std::printf("  accounting: %lu packets = %lu in records + %lu dropped at export ring + %lu lost between workers + "
                "%lu decode drops + %lu not sampled; %lu outer copies = %lu in records + %lu dropped at export ring: %s\n",
                static_cast<unsigned long>(rx), static_cast<unsigned long>(handed_packets),
                static_cast<unsigned long>(dropped_packets), static_cast<unsigned long>(handoff_dropped),
                static_cast<unsigned long>(drops_total), static_cast<unsigned long>(sampled_out),
                static_cast<unsigned long>(outer_copies),
                static_cast<unsigned long>(handed_copies), static_cast<unsigned long>(dropped_copy),
                balanced ? "OK" : "MISMATCH");
    std::fflush(stdout);

    if (!rt.cfg.summary_json.empty()) {
        std::ofstream out(rt.cfg.summary_json);
        out << j.dump(2) << "\n";
        if (!out) weir::log::say(weir::log::Level::kError, "weir: cannot write %s\n", rt.cfg.summary_json.c_str());
    }
    return balanced;
}

}  // namespace weir

namespace weir {
namespace {

std::string addr_str(const packet::Tuple& t, const uint8_t* a) {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(t.ip_version == 6 ? AF_INET6 : AF_INET, a, buf, sizeof(buf));
    return buf;
}

}  // namespace

metrics::Snapshot snapshot(Runtime& rt) {
    metrics::Snapshot s;
    s.version = rt.version;
    s.start_time_s = rt.started_unix_s;
    s.process = metrics::read_process();
    s.last_reload_ok = rt.last_reload_ok.load();
    s.last_reload_ok_time_s = rt.last_reload_ok_unix_s.load();
    s.reloads = rt.reloads.load();
    s.reload_failures = rt.reload_failures.load();
    std::vector<double> busy;
    {
        std::lock_guard<std::mutex> lock(rt.mu);
        for (size_t p = 0; p < rt.ports.size(); ++p) {
            metrics::PortSnapshot ps;
            ps.name = rt.ports[p].name;
            ps.driver = rt.ports[p].driver;
            if (p < rt.port_stats.size()) {
                const auto& st = rt.port_stats[p];
                ps.ipackets = st.ipackets, ps.ibytes = st.ibytes, ps.imissed = st.imissed;
                ps.ierrors = st.ierrors, ps.rx_nombuf = st.rx_nombuf;
            }
            s.ports.push_back(ps);
        }
        for (const auto& ex : rt.exporters) {
            const auto& st = ex->stats();
            metrics::ExporterSnapshot e;
            e.url = ex->url();
            e.format = ex->format();
            e.records = st.records.get(), e.packets = st.packets.get(), e.messages = st.messages.get();
            e.template_messages = st.template_messages.get(), e.bytes = st.bytes.get();
            e.send_errors = st.send_errors.get(), e.lost_records = st.lost_records.get();
            e.lost_packets = st.lost_packets.get();
            e.skipped_records = st.skipped_records.get(), e.skipped_packets = st.skipped_packets.get();
            e.reconnects = st.reconnects.get();
            s.exporters.push_back(e);
        }
        busy = rt.busy_ratio;
    }
    for (size_t i = 0; i < rt.workers.size(); ++i) {
        const Worker& w = *rt.workers[i];
        const auto& st = w.stats();
        const auto& ts = w.table_stats();
        metrics::WorkerSnapshot ws;
        ws.index = static_cast<uint32_t>(i);
        ws.rx_packets = st.rx_packets.get(), ws.rx_bytes = st.rx_bytes.get();
        const double hz = static_cast<double>(rte_get_tsc_hz());
        ws.busy_s = st.busy_cycles.get() / hz, ws.total_s = st.total_cycles.get() / hz;
        ws.busy_ratio = i < busy.size() ? busy[i] : 0;
        for (size_t d = 1; d < packet::kDropCount; ++d)
            ws.decode_drops.emplace_back(packet::drop_name(static_cast<packet::Drop>(d)), st.drops[d].get());
        ws.l4_truncated = st.l4_truncated.get();
        ws.sampled_out = st.sampled_out.get();
        ws.flows_active = ts.active.get(), ws.flows_capacity = w.table_capacity(), ws.flows_created = ts.created.get();
        for (uint8_t r = 1; r < flow::kEndReasonSlots; ++r)
            ws.flows_expired.emplace_back(flow::end_reason_name(static_cast<flow::EndReason>(r)), ts.expired[r].get());
        ws.evicted_table_full = ts.evicted_table_full.get(), ws.evicted_bucket_full = ts.evicted_bucket_full.get();
        ws.records = st.records.get(), ws.batches = st.batches.get();
        ws.multi_segment = st.multi_segment.get(), ws.linearized = st.linearized.get();
        ws.ipv6_ext_limit = st.ipv6_ext_limit.get();
        for (size_t t = 1; t < packet::kTunnelTypeCount; ++t)
            ws.tunneled.emplace_back(packet::tunnel_name(static_cast<packet::TunnelType>(t)), st.tunneled[t].get());
        for (size_t r = 1; r < packet::kTunnelStopCount; ++r)
            ws.tunnel_stops.emplace_back(packet::tunnel_stop_name(static_cast<packet::TunnelStop>(r)), st.tunnel_stops[r].get());
        ws.outer_copies = st.outer_copies.get(), ws.handed_out = st.handed_out.get(), ws.handed_in = st.handed_in.get();
        ws.handoff_dropped = st.handoff_dropped.get();
        ws.tunnel_contexts = w.tunnel_stats().active.get(), ws.tunnel_contexts_capacity = w.tunnel_capacity();
        ws.tunnel_contexts_full = w.tunnel_stats().full.get();
        ws.ring_dropped_records = st.dropped_records.get(), ws.ring_dropped_packets = st.dropped_packets.get();
        ws.ring_occupancy = w.ring_occupancy(), ws.ring_capacity = rt.cfg.export_buffers;
        s.workers.push_back(ws);
        for (size_t q = 0; q < w.queues().size(); ++q) {
            metrics::QueueSnapshot qs;
            qs.port = q < rt.ports.size() ? rt.ports[q].name : std::to_string(w.queues()[q].port);
            qs.queue = w.queues()[q].queue, qs.worker = static_cast<uint32_t>(i);
            qs.packets = w.queue_stats(q).packets.get(), qs.bytes = w.queue_stats(q).bytes.get();
            s.queues.push_back(qs);
        }
    }
    return s;
}

nlohmann::json status(Runtime& rt) {
    using nlohmann::json;
    const metrics::Snapshot s = snapshot(rt);
    json ports = json::array();
    for (size_t p = 0; p < rt.ports.size(); ++p) {
        const auto& pi = rt.ports[p];
        ports.push_back({{"name", pi.name}, {"driver", pi.driver}, {"queues", pi.queues},
                         {"rx_descriptors", pi.rx_descriptors}, {"rss", pi.rss}, {"profile", pi.profile.source},
                         {"rx_packets", s.ports[p].ipackets}, {"rx_bytes", s.ports[p].ibytes},
                         {"rx_missed", s.ports[p].imissed}, {"rx_nombuf", s.ports[p].rx_nombuf},
                         {"rx_errors", s.ports[p].ierrors}});
    }
    json workers = json::array();
    for (const auto& w : s.workers)
        workers.push_back({{"index", w.index}, {"domain", rt.workers[w.index]->domain()}, {"rx_packets", w.rx_packets},
                           {"flows_active", w.flows_active}, {"flows_capacity", w.flows_capacity},
                           {"flows_created", w.flows_created}, {"records", w.records}, {"busy_ratio", w.busy_ratio},
                           {"export_ring_occupancy", w.ring_occupancy}});
    json exporters = json::array();
    for (const auto& e : s.exporters)
        exporters.push_back({{"url", e.url}, {"format", e.format}, {"records", e.records}, {"messages", e.messages},
                             {"send_errors", e.send_errors}, {"dropped_records", e.lost_records}});
    const auto& c = rt.cfg;
    json exporter_urls = json::array();
    for (const auto& e : c.exporters) exporter_urls.push_back(e.url);
    return json{{"version", rt.version},
                {"uptime_s", unix_s() - s.start_time_s},
                {"start_time", s.start_time_s},
                {"mode", c.replay ? "replay" : "live"},
                {"replay_finished", rt.replay_finished.load()},
                {"stopping", rt.stopping.load()},
                {"ports", ports},
                {"workers", workers},
                {"exporters", exporters},
                {"reloads", s.reloads},
                {"reload_failures", s.reload_failures},
                {"config",
                 {{"workers", c.workers},
                  {"flow_capacity_per_worker", c.flow_capacity},
                  {"timeouts", {{"idle_s", c.idle_timeout_s}, {"active_s", c.active_timeout_s}, {"tcp_end_s", c.tcp_end_timeout_s}}},
                  {"exporters", exporter_urls},
                  {"tunnels", {{"mode", config::tunnel_mode_name(c.tunnels.mode)}, {"max_depth", c.tunnels.max_depth},
                               {"contexts_per_worker", c.tunnels.contexts_per_worker}}},
                  {"ipfix", {{"mtu", c.mtu}, {"observation_domain", c.observation_domain},
                             {"template_refresh_s", c.template_refresh_s}}},
                  {"management", c.management}}}};
}

nlohmann::json top_flows(Runtime& rt, bool by_packets, uint32_t n) {
    using nlohmann::json;
    std::lock_guard<std::mutex> lock(rt.top_mu);
    std::vector<std::pair<size_t, uint32_t>> tickets;
    for (size_t i = 0; i < rt.workers.size(); ++i)
        if (!rt.workers[i]->done()) tickets.emplace_back(i, rt.workers[i]->request_top(by_packets, n));
    std::vector<std::pair<size_t, TopFlow>> all;
    const double deadline = now_s() + 5;
    for (const auto& [i, t] : tickets) {
        while (!rt.workers[i]->top_ready(t)) {
            if (rt.workers[i]->done() || now_s() > deadline) throw std::runtime_error("worker " + std::to_string(i) + " did not answer");
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        for (const auto& f : rt.workers[i]->top_result()) all.emplace_back(i, f);
    }
    auto weight = [by_packets](const TopFlow& f) { return by_packets ? f.packets : f.octets; };
    std::sort(all.begin(), all.end(), [&](const auto& a, const auto& b) { return weight(a.second) > weight(b.second); });
    if (all.size() > n) all.resize(n);
    json out = json::array();
    for (const auto& [w, f] : all) {
        const auto& t = f.tuple;
        const bool icmp = t.proto == 1 || t.proto == 58;
        out.push_back({{"src", addr_str(t, t.src)}, {"dst", addr_str(t, t.dst)},
                       {"sport", icmp ? 0 : t.sport}, {"dport", icmp ? 0 : t.dport},
                       {"icmp_type_code", icmp ? t.dport : 0}, {"proto", t.proto}, {"vlan", t.vlan},
                       {"cvlan", f.cvlan}, {"tunnel_type", packet::tunnel_name(static_cast<packet::TunnelType>(f.tunnel_type))},
                       {"tunnel_id", f.tunnel_id}, {"outer_copy", f.outer_copy},
                       {"packets", f.packets}, {"bytes", f.octets}, {"first_ms", f.first_ns / 1000000},
                       {"last_ms", f.last_ns / 1000000}, {"worker", w}});
    }
    return out;
}

}  // namespace weir
