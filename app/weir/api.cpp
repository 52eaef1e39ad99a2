// SPDX-License-Identifier: BSD-3-Clause
// What the management API serves from the running probe: the metrics snapshot, /status, and
// the top flows, which each worker walks in its own table between bursts.
#include "control.h"

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
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "clock.h"
#include "common/log.h"

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
            e.retries = st.retries.get(), e.queue_full = st.queue_full.get(), e.queued = st.queued.get();
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
            ws.tunnel_stops.emplace_back(packet::tunnel_stop_name(static_cast<packet::TunnelStop>(r)),
                                         st.tunnel_stops[r].get());
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
    if (rt.inspection) inspection_metrics(*rt.inspection, rt.workers, s);
    if (rt.detection) detection_metrics(*rt.detection, rt.workers, s);
    if (rt.matrix) matrix_metrics(*rt.matrix, s);
    if (rt.capture) {
        s.capture = true;
        const capture::WriterStats c = rt.capture->snapshot();
        s.capture_files = {c.packets, c.bytes, c.files, c.deleted, c.budget_drops, c.write_errors, c.on_disk};
        for (size_t i = 0; i < s.workers.size() && i < rt.workers.size(); ++i) {
            s.workers[i].capture = true;
            s.workers[i].captured = rt.workers[i]->stats().captured.get();
            s.workers[i].capture_dropped = rt.workers[i]->stats().capture_dropped.get();
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
        ports.push_back({{"name", pi.name},
                         {"driver", pi.driver},
                         {"queues", pi.queues},
                         {"rx_descriptors", pi.rx_descriptors},
                         {"rss", pi.rss},
                         {"profile", pi.profile.source},
                         {"rx_packets", s.ports[p].ipackets},
                         {"rx_bytes", s.ports[p].ibytes},
                         {"rx_missed", s.ports[p].imissed},
                         {"rx_nombuf", s.ports[p].rx_nombuf},
                         {"rx_errors", s.ports[p].ierrors}});
    }
    json workers = json::array();
    for (const auto& w : s.workers)
        workers.push_back({{"index", w.index},
                           {"domain", rt.workers[w.index]->domain()},
                           {"rx_packets", w.rx_packets},
                           {"flows_active", w.flows_active},
                           {"flows_capacity", w.flows_capacity},
                           {"flows_created", w.flows_created},
                           {"records", w.records},
                           {"busy_ratio", w.busy_ratio},
                           {"export_ring_occupancy", w.ring_occupancy}});
    json exporters = json::array();
    for (const auto& e : s.exporters)
        exporters.push_back({{"url", e.url},
                             {"format", e.format},
                             {"records", e.records},
                             {"messages", e.messages},
                             {"send_errors", e.send_errors},
                             {"dropped_records", e.lost_records}});
    const auto& c = rt.cfg;
    json exporter_urls = json::array();
    for (const auto& e : c.exporters) exporter_urls.push_back(e.url);
    return json{
        {"version", rt.version},
        {"probe", rt.cfg.probe},
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
        {"inspect", rt.inspection ? inspection_status(*rt.inspection, rt.workers) : json(nullptr)},
        {"detect", rt.detection ? detection_status(*rt.detection, rt.workers) : json(nullptr)},
        {"matrix", rt.matrix ? matrix_status(*rt.matrix) : json(nullptr)},
        {"config",
         {{"workers", c.workers},
          {"flow_capacity_per_worker", c.flow_capacity},
          {"timeouts",
           {{"idle_s", c.idle_timeout_s}, {"active_s", c.active_timeout_s}, {"tcp_end_s", c.tcp_end_timeout_s}}},
          {"exporters", exporter_urls},
          {"tunnels",
           {{"mode", config::tunnel_mode_name(c.tunnels.mode)},
            {"max_depth", c.tunnels.max_depth},
            {"contexts_per_worker", c.tunnels.contexts_per_worker}}},
          {"ipfix",
           {{"mtu", c.mtu},
            {"observation_domain", c.observation_domain},
            {"template_refresh_s", c.template_refresh_s}}},
          {"management", c.management}}}};
}

nlohmann::json top_flows(Runtime& rt, bool by_packets, uint32_t n) {
    using nlohmann::json;
    std::lock_guard<std::mutex> lock(rt.top_mu);
    std::vector<std::pair<size_t, uint32_t>> tickets;
    for (size_t i = 0; i < rt.workers.size(); ++i) {
        if (rt.workers[i]->done()) continue;
        const uint32_t t = rt.workers[i]->request_top(by_packets, n);
        if (!t) throw std::runtime_error("worker " + std::to_string(i) + " is busy (its mailbox is full)");
        tickets.emplace_back(i, t);
    }
    std::vector<std::pair<size_t, TopFlow>> all;
    const double deadline = now_s() + 5;
    for (const auto& [i, t] : tickets) {
        while (!rt.workers[i]->top_ready(t)) {
            if (rt.workers[i]->done() || now_s() > deadline)
                throw std::runtime_error("worker " + std::to_string(i) + " did not answer");
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        for (const auto& f : rt.workers[i]->top_result()) all.emplace_back(i, f);
    }
    auto weight = [by_packets](const TopFlow& f) { return by_packets ? f.packets : f.octets; };
    std::sort(all.begin(), all.end(),
              [&](const auto& a, const auto& b) { return weight(a.second) > weight(b.second); });
    if (all.size() > n) all.resize(n);
    json out = json::array();
    for (const auto& [w, f] : all) {
        const auto& t = f.tuple;
        const bool icmp = t.proto == 1 || t.proto == 58;
        out.push_back({{"src", addr_str(t, t.src)},
                       {"dst", addr_str(t, t.dst)},
                       {"sport", icmp ? 0 : t.sport},
                       {"dport", icmp ? 0 : t.dport},
                       {"icmp_type_code", icmp ? t.dport : 0},
                       {"proto", t.proto},
                       {"vlan", t.vlan},
                       {"cvlan", f.cvlan},
                       {"tunnel_type", packet::tunnel_name(static_cast<packet::TunnelType>(f.tunnel_type))},
                       {"tunnel_id", f.tunnel_id},
                       {"outer_copy", f.outer_copy},
                       {"application", inspect::Registry::instance().app_name(f.app)},
                       {"packets", f.packets},
                       {"bytes", f.octets},
                       {"first_ms", f.first_ns / 1000000},
                       {"last_ms", f.last_ns / 1000000},
                       {"worker", w}});
    }
    return out;
}

ipfix::MeteringStats metering(const Runtime& rt, uint32_t domain) {
    ipfix::MeteringStats m;
    for (const auto& w : rt.workers) {
        if (w->domain() != domain) continue;
        const auto& s = w->stats();
        m.packets = s.rx_packets.get();
        for (size_t d = 1; d < packet::kDropCount; ++d) m.ignored_packets += s.drops[d].get();
        m.flows = w->table_stats().created.get();
        m.lost_flows = s.dropped_records.get();
        m.lost_packets = s.dropped_packets.get();
    }
    return m;
}

}  // namespace weir
