// SPDX-License-Identifier: BSD-3-Clause
// The exit report: the summary on stdout (and as JSON), and the packet accounting that decides
// the exit status.
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

#include <nlohmann/json.hpp>

#include "clock.h"
#include "common/log.h"

namespace weir {

namespace {

// Sums a counter under its name, across workers.
void add_to(nlohmann::json& by_name, const char* name, uint64_t v) {
    by_name[name] = by_name.value(name, uint64_t{0}) + v;
}

}  // namespace

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
        json jp = {{"id", pi.id},           {"name", pi.name},          {"driver", pi.driver}, {"queues", pi.queues},
                   {"rss", pi.rss},         {"ipackets", st.ipackets},  {"ibytes", st.ibytes}, {"imissed", st.imissed},
                   {"ierrors", st.ierrors}, {"rx_nombuf", st.rx_nombuf}};
        if (rt.cfg.replay) jp["capture_packets"] = rt.replays[p] ? rt.replays[p]->packets() : rt.expected_packets[p];
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
            add_to(drops, packet::drop_name(static_cast<packet::Drop>(d)), s.drops[d].get());
            drops_total += s.drops[d].get();
        }
        sampled_out += s.sampled_out.get();
        add_to(drops, "l4_truncated_accounted", s.l4_truncated.get());
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
        for (size_t t = 1; t < packet::kTunnelTypeCount; ++t)
            add_to(tunneled, packet::tunnel_name(static_cast<packet::TunnelType>(t)), s.tunneled[t].get());
        for (size_t r = 1; r < packet::kTunnelStopCount; ++r)
            add_to(stops, packet::tunnel_stop_name(static_cast<packet::TunnelStop>(r)), s.tunnel_stops[r].get());
        records += s.records.get();
        const auto& ts = w->table_stats();
        created += ts.created.get();
        evicted_full += ts.evicted_table_full.get();
        evicted_bucket += ts.evicted_bucket_full.get();
        for (uint8_t r = 1; r < flow::kEndReasonSlots; ++r)
            add_to(expired, flow::end_reason_name(static_cast<flow::EndReason>(r)), ts.expired[r].get());
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
                             {"retries", s.retries.get()},
                             {"queue_full", s.queue_full.get()},
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
    if (rt.inspection) j["inspect"] = inspection_status(*rt.inspection, rt.workers);
    if (rt.detection) j["detect"] = detection_status(*rt.detection, rt.workers);
    if (rt.matrix) j["matrix"] = matrix_status(*rt.matrix);
    if (rt.capture) {
        uint64_t chosen = 0, dropped = 0;
        for (const auto& w : rt.workers)
            chosen += w->stats().captured.get(), dropped += w->stats().capture_dropped.get();
        const capture::WriterStats cs = rt.capture->snapshot();
        j["capture"] = {{"dir", rt.cfg.capture.dir},
                        {"packets_chosen", chosen},
                        {"packets_dropped", dropped},
                        {"packets_written", cs.packets},
                        {"files", cs.files},
                        {"files_deleted", cs.deleted},
                        {"bytes_on_disk", cs.on_disk},
                        {"budget_drops", cs.budget_drops},
                        {"write_errors", cs.write_errors}};
    }
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
    for (auto it = drops.begin(); it != drops.end(); ++it)
        std::printf(" %s %lu", it.key().c_str(), it->get<unsigned long>());
    std::printf("\n  flows: created %lu, expired", static_cast<unsigned long>(created));
    for (auto it = expired.begin(); it != expired.end(); ++it)
        std::printf(" %s %lu", it.key().c_str(), it->get<unsigned long>());
    std::printf(" (evictions: table full %lu, bucket full %lu)\n", static_cast<unsigned long>(evicted_full),
                static_cast<unsigned long>(evicted_bucket));
    std::printf("  flow records: %lu (ended conversations), %lu dropped before export (export ring full)\n",
                static_cast<unsigned long>(records), static_cast<unsigned long>(dropped_records));
    std::printf(
        "  frames: %lu in several buffers (%lu with headers across buffers), %lu with IPv6 extension headers "
        "past the limit\n",
        static_cast<unsigned long>(multi_segment), static_cast<unsigned long>(linearized),
        static_cast<unsigned long>(ipv6_ext_limit));
    std::printf("  tunnels (%s): opened", config::tunnel_mode_name(rt.cfg.tunnels.mode));
    uint64_t opened = 0;
    for (auto it = tunneled.begin(); it != tunneled.end(); ++it)
        if (it->get<uint64_t>())
            std::printf(" %s %lu", it.key().c_str(), it->get<unsigned long>()), opened += it->get<uint64_t>();
    if (!opened) std::printf(" none");
    std::printf("; not followed:");
    for (auto it = stops.begin(); it != stops.end(); ++it)
        std::printf(" %s %lu", it.key().c_str(), it->get<unsigned long>());
    std::printf("; outer copies %lu; between workers %lu (lost %lu); no context %lu\n",
                static_cast<unsigned long>(outer_copies), static_cast<unsigned long>(handed),
                static_cast<unsigned long>(handoff_dropped), static_cast<unsigned long>(contexts_full));
    if (j.contains("inspect")) {
        const auto& in = j["inspect"];
        std::printf("  inspect: %lu rules; %lu flows inspected (%lu skipped: no stream free), %lu payload bytes;",
                    in["rules_loaded"].get<unsigned long>(), in["flows_inspected"].get<unsigned long>(),
                    in["flows_skipped"].get<unsigned long>(), in["bytes_inspected"].get<unsigned long>());
        for (const auto& a : in["applications"])
            std::printf(" %s %lu",
                        a["app"].get<std::string>().empty() ? "unknown" : a["app"].get<std::string>().c_str(),
                        a["flows"].get<unsigned long>());
        std::printf("\n");
    }
    if (j.contains("capture")) {
        const auto& c = j["capture"];
        std::printf(
            "  capture %s: %lu packets chosen, %lu dropped (writer behind), %lu written in %lu files (%lu deleted "
            "for the budget), %lu bytes on disk, %lu budget drops, %lu write errors\n",
            c["dir"].get<std::string>().c_str(), c["packets_chosen"].get<unsigned long>(),
            c["packets_dropped"].get<unsigned long>(), c["packets_written"].get<unsigned long>(),
            c["files"].get<unsigned long>(), c["files_deleted"].get<unsigned long>(),
            c["bytes_on_disk"].get<unsigned long>(), c["budget_drops"].get<unsigned long>(),
            c["write_errors"].get<unsigned long>());
    }
    if (rt.exporters.empty()) std::printf("  export: no exporter configured; records were discarded\n");
    for (const auto& je : j["exporters"])
        std::printf(
            "  export %s %s: %lu records (%lu packets) in %lu messages + %lu template messages, %lu bytes; "
            "send errors %lu, records lost %lu, skipped %lu\n",
            je["format"].get<std::string>().c_str(), je["url"].get<std::string>().c_str(),
            je["records"].get<unsigned long>(), je["packets"].get<unsigned long>(), je["messages"].get<unsigned long>(),
            je["template_messages"].get<unsigned long>(), je["bytes"].get<unsigned long>(),
            je["send_errors"].get<unsigned long>(), je["lost_records"].get<unsigned long>(),
            je["skipped_records"].get<unsigned long>());
    std::printf(
        "  accounting: %lu packets = %lu in records + %lu dropped at export ring + %lu lost between workers + "
        "%lu decode drops + %lu not sampled; %lu outer copies = %lu in records + %lu dropped at export ring: %s\n",
        static_cast<unsigned long>(rx), static_cast<unsigned long>(handed_packets),
        static_cast<unsigned long>(dropped_packets), static_cast<unsigned long>(handoff_dropped),
        static_cast<unsigned long>(drops_total), static_cast<unsigned long>(sampled_out),
        static_cast<unsigned long>(outer_copies), static_cast<unsigned long>(handed_copies),
        static_cast<unsigned long>(dropped_copy), balanced ? "OK" : "MISMATCH");
    std::fflush(stdout);

    if (!rt.cfg.summary_json.empty()) {
        std::ofstream out(rt.cfg.summary_json);
        out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        if (!out) weir::log::say(weir::log::Level::kError, "weir: cannot write %s\n", rt.cfg.summary_json.c_str());
    }
    return balanced;
}

}  // namespace weir
