// SPDX-License-Identifier: BSD-3-Clause
// The control loop: drains the workers' record batches into the exporters, notices the end of
// a replay and signals, applies reloads, prints the counters, and at the end waits for every
// worker to flush. Control thread only.
#include "control.h"

#include <csignal>
#include <thread>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ring.h>

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>

#include <nlohmann/json.hpp>

#include "clock.h"
#include "common/log.h"
#include "common/notify.h"
#include "reload.h"

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
        if (rt.inspection) rt.inspection->count(b->records, b->count);
        if (rt.matrix) rt.matrix->count(b->records, b->count);
        for (auto& ex : rt.exporters) ex->send_records(b->records, b->count, b->domain, t);
    }
    for (auto& ex : rt.exporters) ex->flush(t);  // UDP: the burst's datagrams in one system call
    rte_ring_sp_enqueue_burst(w.free_ring(), bufs, n, nullptr);
    return n;
}

bool replay_finished(const Runtime& rt) {
    for (size_t p = 0; p < rt.ports.size(); ++p) {
        rte_eth_stats st{};
        if (rte_eth_stats_get(rt.ports[p].id, &st) != 0) return false;
        if (rt.replays[p]) {  // weir's capture reader: done, and the workers took all it handed out
            const auto& rs = rt.replays[p]->stats();
            if (!rs.done.load(std::memory_order_acquire) || st.ipackets < rs.packets.load()) return false;
            continue;
        }
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

void refresh_port_stats(Runtime& rt, std::vector<uint64_t>& last_busy, std::vector<uint64_t>& last_total);

}  // namespace

void install_signal_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;  // DPDK's start-up reads files and sysfs: no EINTR for it to meet
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    struct sigaction hup {};
    hup.sa_handler = on_hup;
    hup.sa_flags = SA_RESTART;
    sigemptyset(&hup.sa_mask);
    sigaction(SIGHUP, &hup, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

namespace {

void refresh_port_stats(Runtime& rt, std::vector<uint64_t>& last_busy, std::vector<uint64_t>& last_total) {
    std::vector<rte_eth_stats> st(rt.ports.size());
    for (size_t p = 0; p < rt.ports.size(); ++p) rte_eth_stats_get(rt.ports[p].id, &st[p]);
    std::vector<double> busy(rt.workers.size());
    for (size_t w = 0; w < rt.workers.size(); ++w) {
        const uint64_t b = rt.workers[w]->stats().busy_cycles.get(), t = rt.workers[w]->stats().total_cycles.get();
        busy[w] =
            t > last_total[w] ? static_cast<double>(b - last_busy[w]) / static_cast<double>(t - last_total[w]) : 0;
        last_busy[w] = b;
        last_total[w] = t;
    }
    std::lock_guard<std::mutex> lock(rt.mu);
    rt.port_stats = std::move(st);
    rt.busy_ratio = std::move(busy);
}

// One sample of the page's history: the totals, the NICs' misses, the exporters' losses.
void sample_history(Runtime& rt) {
    const Totals t = totals(rt);
    metrics::Sample s;
    s.t = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    s.rx_packets = t.rx;
    s.rx_bytes = t.rx_bytes;
    s.decode_drops = t.drops;
    s.flows_created = t.created;
    s.flows_active = t.active;
    s.records = t.records;
    s.export_dropped = t.dropped_records;
    {
        std::lock_guard<std::mutex> lock(rt.mu);
        for (const auto& p : rt.port_stats) s.missed += p.imissed + p.rx_nombuf;
        for (double b : rt.busy_ratio) s.busy = std::max(s.busy, b);
        for (const auto& ex : rt.exporters) s.export_dropped += ex->stats().lost_records.get();
    }
    if (rt.detection) {
        std::lock_guard<std::mutex> lock(rt.detection->mu);
        for (uint64_t e : rt.detection->detector->stats().events) s.events += e;
    }
    rt.history.add(s);
}

}  // namespace

void control_loop(Runtime& rt) {
    bool stopping = false;
    Totals last{};
    double last_t = 0;
    const double t0 = rt.started_s;
    double next_stats = rt.cfg.stats_interval_s > 0 ? rt.cfg.stats_interval_s : 1e300;
    double next_ports = 0, next_tick = 0, next_watchdog = 0, next_history = 0;
    const double watchdog_s = notify::watchdog_usec() / 1e6;
    std::vector<uint64_t> last_busy(rt.workers.size()), last_total(rt.workers.size());
    for (;;) {
        unsigned moved = 0;
        for (auto& w : rt.workers) moved += drain(rt, *w);
        // Detection takes each worker's finished interval (a worker's final flush waits for it).
        if (rt.detection) rt.detection->poll();
        if (rt.matrix) rt.matrix->hand_over(rt.detection.get());

        // Reloads: SIGHUP, or the API (which waits for the answer).
        bool api_reload;
        {
            std::lock_guard<std::mutex> lock(rt.reload_mu);
            api_reload = rt.reload_requested != rt.reload_done;
        }
        if (g_hup.exchange(false) || api_reload) {
            notify::reloading();
            nlohmann::json r = apply_reload(rt);
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
                    weir::log::say(weir::log::Level::kNotice,
                                   "weir: end of capture; holding (flows stay active) until SIGINT/SIGTERM\n");
            }
            if (sig || (eof && !rt.cfg.hold_after_replay)) {
                if (sig)
                    weir::log::say(weir::log::Level::kNotice, "weir: %s: stopping RX, flushing every flow\n",
                                   strsignal(sig));
                rt.stopping = true;
                notify::send("STOPPING=1");
                for (auto& w : rt.workers)
                    while (!w->request_stop() && !w->done()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
                stopping = true;
            }
        } else {
            bool all_done = true;
            for (auto& w : rt.workers) all_done = all_done && w->done();
            if (all_done) {
                // Workers are done: whatever is still in the rings is all there is.
                for (auto& w : rt.workers)
                    while (drain(rt, *w) != 0) {}
                if (rt.matrix) rt.matrix->hand_over(rt.detection.get());
                if (rt.detection) rt.detection->finish();  // every event still going on ends
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
        if (elapsed >= next_history) {
            sample_history(rt);
            next_history = elapsed + rt.history.step_s();
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

}  // namespace weir
