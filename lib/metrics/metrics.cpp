// SPDX-License-Identifier: BSD-3-Clause
#include "metrics/metrics.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <sys/resource.h>
#include <unistd.h>

#include <dirent.h>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <sstream>

namespace weir::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

class Builder {
public:
    MetricFamily& family(const std::string& name, const std::string& help, MetricType type) {
        fams_.push_back(MetricFamily{name, help, type, {}});
        return fams_.back();
    }
    void counter(const std::string& name, const std::string& help, const Labels& l, double v) {
        add(name, help, MetricType::Counter, l, v);
    }
    void gauge(const std::string& name, const std::string& help, const Labels& l, double v) {
        add(name, help, MetricType::Gauge, l, v);
    }
    std::vector<MetricFamily>& families() { return fams_; }

private:
    void add(const std::string& name, const std::string& help, MetricType type, const Labels& l, double v) {
        MetricFamily* f = nullptr;
        for (auto& x : fams_)
            if (x.name == name) f = &x;
        if (!f) f = &family(name, help, type);
        ClientMetric m;
        m.label = l;
        if (type == MetricType::Counter)
            m.counter.value = v;
        else
            m.gauge.value = v;
        f->metric.push_back(m);
    }
    std::vector<MetricFamily> fams_;
};

}  // namespace

ProcessSnapshot read_process() {
    ProcessSnapshot p;
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    if (std::FILE* f = std::fopen("/proc/self/stat", "r")) {
        char buf[1024];
        const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
        std::fclose(f);
        buf[n] = '\0';
        // Fields after the command name, which is in parentheses and may hold spaces: state is
        // field 3, utime 14, stime 15, starttime 22, vsize 23, rss 24 (proc(5)).
        if (const char* r = std::strrchr(buf, ')')) {
            unsigned long utime = 0, stime = 0, vsize = 0;
            unsigned long long start = 0;
            long rss = 0;
            if (std::sscanf(r + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %llu %lu %ld",
                            &utime, &stime, &start, &vsize, &rss) == 5) {
                p.cpu_s = (utime + stime) / tick;
                p.virtual_bytes = vsize;
                p.resident_bytes = static_cast<uint64_t>(rss) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
                // starttime is in ticks since boot; boot time is btime in /proc/stat.
                if (std::FILE* st = std::fopen("/proc/stat", "r")) {
                    char line[256];
                    while (std::fgets(line, sizeof(line), st))
                        if (unsigned long long btime; std::sscanf(line, "btime %llu", &btime) == 1) {
                            p.start_time_s = static_cast<double>(btime) + start / tick;
                            break;
                        }
                    std::fclose(st);
                }
            }
        }
    }
    if (DIR* d = opendir("/proc/self/fd")) {
        while (const dirent* e = readdir(d))
            if (e->d_name[0] != '.') ++p.open_fds;
        closedir(d);
        if (p.open_fds) --p.open_fds;  // the descriptor of this listing
    }
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) p.max_fds = rl.rlim_cur;
    return p;
}

std::string render(const Snapshot& s) {
    Builder b;
    b.gauge("weir_build_info", "Version of the running weir (value is always 1).", {{"version", s.version}}, 1);
    b.gauge("weir_start_time_seconds", "Unix time weir started capturing.", {}, s.start_time_s);
    b.counter("weir_reloads_total", "Configuration reloads applied.", {}, static_cast<double>(s.reloads));
    b.counter("weir_reload_failures_total", "Configuration reloads refused.", {},
              static_cast<double>(s.reload_failures));
    b.gauge("weir_last_reload_successful", "1 if the last reload was applied (or none was asked for), 0 if refused.",
            {}, s.last_reload_ok ? 1 : 0);
    b.gauge("weir_last_reload_success_timestamp_seconds", "Unix time of the last applied reload (or of the start).", {},
            s.last_reload_ok_time_s);
    b.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", {}, s.process.cpu_s);
    b.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", {},
            static_cast<double>(s.process.resident_bytes));
    b.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {},
            static_cast<double>(s.process.virtual_bytes));
    b.gauge("process_open_fds", "Number of open file descriptors.", {}, static_cast<double>(s.process.open_fds));
    b.gauge("process_max_fds", "Maximum number of open file descriptors.", {}, static_cast<double>(s.process.max_fds));
    b.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", {},
            s.process.start_time_s);
    for (const auto& p : s.ports) {
        const Labels l = {{"port", p.name}, {"driver", p.driver}};
        b.counter("weir_port_rx_packets_total", "Packets received by the port (NIC counter).", l, p.ipackets);
        b.counter("weir_port_rx_bytes_total", "Bytes received by the port (NIC counter).", l, p.ibytes);
        b.counter("weir_port_rx_missed_total", "Packets the NIC dropped because an RX ring was full (imissed).", l,
                  p.imissed);
        b.counter("weir_port_rx_nombuf_total", "Packets lost for want of an mbuf (rx_nombuf).", l, p.rx_nombuf);
        b.counter("weir_port_rx_errors_total", "Erroneous packets received (ierrors).", l, p.ierrors);
    }
    for (const auto& q : s.queues) {
        const Labels l = {{"port", q.port}, {"queue", std::to_string(q.queue)}, {"worker", std::to_string(q.worker)}};
        b.counter("weir_queue_rx_packets_total", "Packets a worker took from an RX queue.", l, q.packets);
        b.counter("weir_queue_rx_bytes_total", "Bytes a worker took from an RX queue.", l, q.bytes);
    }
    for (const auto& w : s.workers) {
        const std::string wi = std::to_string(w.index);
        const Labels l = {{"worker", wi}};
        b.counter("weir_worker_packets_total", "Packets processed by the worker.", l, w.rx_packets);
        b.counter("weir_worker_busy_seconds_total", "Seconds in loop iterations that received packets.", l, w.busy_s);
        b.counter("weir_worker_seconds_total", "Seconds in the worker loop.", l, w.total_s);
        b.gauge("weir_worker_busy_ratio", "Busy time / all time over the last control interval.", l, w.busy_ratio);
        for (const auto& [reason, v] : w.decode_drops)
            b.counter("weir_decode_drops_total", "Packets not accounted to a flow, by reason.",
                      {{"worker", wi}, {"reason", reason}}, v);
        b.counter("weir_sampled_out_packets_total", "Packets received but not selected by packet sampling.", l,
                  w.sampled_out);
        b.counter("weir_l4_truncated_total", "Packets whose ports or TCP flags were not captured (still accounted).", l,
                  w.l4_truncated);
        b.gauge("weir_flow_table_entries", "Active flows (conversations) in the worker's table.", l, w.flows_active);
        b.gauge("weir_flow_table_capacity", "Flow table capacity of the worker.", l, w.flows_capacity);
        b.counter("weir_flows_created_total", "Flows created.", l, w.flows_created);
        for (const auto& [reason, v] : w.flows_expired)
            b.counter("weir_flows_expired_total", "Flows ended, by reason (evicted = table full).",
                      {{"worker", wi}, {"reason", reason}}, v);
        b.counter("weir_flows_evicted_total", "Flows ended early to make room.",
                  {{"worker", wi}, {"cause", "table_full"}}, w.evicted_table_full);
        b.counter("weir_flows_evicted_total", "Flows ended early to make room.",
                  {{"worker", wi}, {"cause", "bucket_full"}}, w.evicted_bucket_full);
        b.counter("weir_flow_records_total", "Ended conversations handed to the exporters.", l, w.records);
        b.counter("weir_export_ring_batches_total", "Record batches handed from the worker to the control thread.", l,
                  w.batches);
        b.counter("weir_export_ring_dropped_records_total", "Records lost because the export ring was full.", l,
                  w.ring_dropped_records);
        b.counter("weir_export_ring_dropped_packets_total", "Packets in records lost at the export ring.", l,
                  w.ring_dropped_packets);
        b.gauge("weir_export_ring_occupancy", "Batches waiting in the worker's export ring.", l, w.ring_occupancy);
        b.gauge("weir_export_ring_capacity", "Record batches in the worker's pool.", l, w.ring_capacity);
        b.counter("weir_multi_segment_packets_total", "Packets that arrived in more than one buffer (jumbo frames).", l,
                  w.multi_segment);
        b.counter("weir_linearized_packets_total", "Packets whose headers crossed buffers and were copied to decode.",
                  l, w.linearized);
        b.counter("weir_ipv6_ext_limit_total", "IPv6 packets with more extension headers than followed (accounted).", l,
                  w.ipv6_ext_limit);
        for (const auto& [type, v] : w.tunneled)
            b.counter("weir_tunnel_packets_total", "Packets decapsulated, by the type of the innermost tunnel opened.",
                      {{"worker", wi}, {"type", type}}, v);
        for (const auto& [reason, v] : w.tunnel_stops)
            b.counter("weir_tunnel_not_followed_total",
                      "Tunnels not opened further, by reason (the packet is accounted at the last layer decoded).",
                      {{"worker", wi}, {"reason", reason}}, v);
        b.counter("weir_tunnel_outer_copies_total", "Packets also accounted in their tunnel's own flow (mode both).", l,
                  w.outer_copies);
        b.counter("weir_handoff_packets_total",
                  "Tunneled packets passed to the worker owning their inner conversation.",
                  {{"worker", wi}, {"direction", "out"}}, w.handed_out);
        b.counter("weir_handoff_packets_total",
                  "Tunneled packets passed to the worker owning their inner conversation.",
                  {{"worker", wi}, {"direction", "in"}}, w.handed_in);
        b.counter("weir_handoff_dropped_total",
                  "Tunneled packets lost because the hand-off ring to their worker was full.", l, w.handoff_dropped);
        b.gauge("weir_tunnel_contexts", "Distinct tunnels the worker's flows ride in.", l, w.tunnel_contexts);
        b.gauge("weir_tunnel_contexts_capacity", "Tunnel contexts the worker can hold.", l, w.tunnel_contexts_capacity);
        b.counter("weir_tunnel_contexts_full_total",
                  "Tunneled packets keyed on their outer headers because no tunnel context was free.", l,
                  w.tunnel_contexts_full);
        if (w.capture) {
            b.counter("weir_capture_packets_total",
                      "Packets of flows a capture rule chose, copied for the capture writer.", l, w.captured);
            b.counter("weir_capture_dropped_total",
                      "Packets chosen for capture but lost: no capture slot free (the writer is behind).", l,
                      w.capture_dropped);
        }
        if (w.detect) {
            b.counter("weir_detect_intervals_total", "Intervals of observations the worker handed to detection.", l,
                      w.detect_intervals);
            b.counter("weir_detect_late_total",
                      "Interval ends when detection had not yet taken the worker's previous interval (merged into "
                      "the next).",
                      l, w.detect_late);
            b.counter("weir_detect_overflow_total", "Observations dropped because a detection table group was full.",
                      {{"worker", wi}, {"table", "sources"}}, w.detect_overflow_sources);
            b.counter("weir_detect_overflow_total", "Observations dropped because a detection table group was full.",
                      {{"worker", wi}, {"table", "pairs"}}, w.detect_overflow_pairs);
            b.counter("weir_detect_overflow_total", "Observations dropped because a detection table group was full.",
                      {{"worker", wi}, {"table", "destinations"}}, w.detect_overflow_destinations);
        }
        if (!w.inspect) continue;
        b.counter("weir_inspect_packets_total", "Payload packets scanned by the rules.", l, w.inspect_packets);
        b.counter("weir_inspect_bytes_total", "Payload bytes scanned by the rules.", l, w.inspect_bytes);
        b.counter("weir_inspect_flows_total", "Flows whose payload was inspected (given a stream context).", l,
                  w.inspect_flows);
        b.counter("weir_inspect_skipped_flows_total", "Flows not inspected because no stream context was free.", l,
                  w.inspect_skipped);
        b.counter("weir_inspect_finished_flows_total",
                  "Flows whose inspection ended before the flow did (depth or packet limit reached).", l,
                  w.inspect_finished);
        b.counter("weir_inspect_cut_flows_total", "Flows whose inspection a rules reload ended.", l, w.inspect_cut);
        b.counter("weir_inspect_scan_errors_total", "Scans the engine failed (the flow's inspection ended).", l,
                  w.inspect_scan_errors);
        b.counter("weir_inspect_names_total", "Server names found in clients' first bytes, by kind.",
                  {{"worker", wi}, {"kind", "tls_sni"}}, w.names_sni);
        b.counter("weir_inspect_names_total", "Server names found in clients' first bytes, by kind.",
                  {{"worker", wi}, {"kind", "http_host"}}, w.names_host);
        b.counter("weir_inspect_names_dropped_total", "Server names lost because no name slot was free.", l,
                  w.names_dropped);
        b.counter("weir_inspect_names_truncated_total", "Server names longer than a record holds (kept cut).", l,
                  w.names_truncated);
        b.counter("weir_inspect_carried_total",
                  "Conversations split by the active timeout whose next record took over the findings.", l, w.carried);
        b.gauge("weir_inspect_streams", "Stream contexts in use (flows being inspected).", l, w.streams_in_use);
        b.gauge("weir_inspect_streams_capacity", "Stream contexts of the worker.", l, w.streams_capacity);
    }
    if (s.capture) {
        const auto& c = s.capture_files;
        b.counter("weir_capture_written_packets_total", "Packets written to the capture files.", {}, c.packets);
        b.counter("weir_capture_written_bytes_total", "Bytes written to the capture files.", {}, c.bytes);
        b.counter("weir_capture_files_total", "Capture files opened.", {}, c.files);
        b.counter("weir_capture_files_deleted_total", "Capture files deleted to stay within the disk budget.", {},
                  c.deleted);
        b.counter("weir_capture_budget_drops_total", "Packets not written: the disk budget could not hold them.", {},
                  c.budget_drops);
        b.counter("weir_capture_write_errors_total", "Failed opens and writes of capture files.", {}, c.write_errors);
        b.gauge("weir_capture_disk_bytes", "Bytes in weir's capture files now.", {}, c.on_disk);
    }
    if (s.detect) {
        const auto& d = s.detection;
        for (const auto& k : d.kinds) {
            b.counter("weir_detections_total", "Events raised (started), by kind.", {{"kind", k.name}}, k.events);
            b.gauge("weir_detect_active_events", "Events going on now, by kind.", {{"kind", k.name}}, k.active);
        }
        b.counter("weir_detect_decided_intervals_total", "Intervals of packet time detection decided.", {},
                  d.intervals);
        b.counter("weir_detect_forced_intervals_total",
                  "Intervals decided before every worker had passed them (one worker far behind).", {},
                  d.intervals_forced);
        b.counter("weir_detect_keys_dropped_total", "Windowed keys (sources, pairs, victims) not held: too many.", {},
                  d.keys_dropped);
        b.counter("weir_detect_events_written_total", "Event lines written to detect.events.", {}, d.events_written);
        b.counter("weir_detect_events_send_errors_total", "Event lines detect.events could not take.", {},
                  d.events_send_errors);
    }
    if (s.matrix) {
        const auto& m = s.flow_matrix;
        b.gauge("weir_matrix_cells", "Zone x zone x service cells of the flow matrix in use.", {}, m.cells);
        b.gauge("weir_matrix_cells_capacity", "Cells the flow matrix holds at most (matrix.max_cells).", {},
                m.max_cells);
        b.counter("weir_matrix_records_total", "Records counted in the flow matrix.", {}, m.records);
        b.counter("weir_matrix_overflow_records_total", "Records not counted in the flow matrix: every cell taken.", {},
                  m.overflow_records);
        b.counter("weir_policy_violations_total", "Records of conversations the zone policy does not allow.", {},
                  m.violations);
        for (const auto& p : m.pairs) {
            const Labels l = {{"from", p.from}, {"to", p.to}};
            b.counter("weir_zone_flows_total", "Records from zone to zone (client to server).", l, p.flows);
            b.counter("weir_zone_packets_total", "Packets of conversations from zone to zone, both directions.", l,
                      p.packets);
            b.counter("weir_zone_bytes_total", "IP bytes of conversations from zone to zone, both directions.", l,
                      p.bytes);
        }
    }
    if (s.inspect) {
        b.gauge("weir_rules_loaded", "Payload rules in the database in use.", {}, s.rules_loaded);
        b.gauge("weir_rules_database_bytes", "Size of the compiled rules database.", {}, s.rules_database_bytes);
        b.gauge("weir_rules_stream_bytes", "Stream state per direction of an inspected flow.", {},
                s.rules_stream_bytes);
        for (const auto& r : s.rules)
            b.counter("weir_rule_matches_total", "Matches of a payload rule (each direction of a flow counts once).",
                      {{"rule", std::to_string(r.id)}, {"name", r.name}, {"tag", r.tag}, {"app", r.app}}, r.matches);
        for (const auto& a : s.apps) {
            const Labels l = {{"app", a.app.empty() ? "unknown" : a.app}};
            b.counter("weir_app_flows_total", "Ended conversations by the application payload rules named.", l,
                      a.flows);
            b.counter("weir_app_bytes_total", "IP bytes of ended conversations by application.", l, a.bytes);
        }
    }
    for (const auto& e : s.exporters) {
        const Labels l = {{"exporter", e.url}, {"format", e.format}};
        b.counter("weir_exporter_records_total", "Records sent to the collector.", l, e.records);
        b.counter("weir_exporter_packets_total", "Packets in the records sent.", l, e.packets);
        b.counter("weir_exporter_messages_total", "Data messages sent.", l, e.messages);
        b.counter("weir_exporter_template_messages_total", "Template messages sent.", l, e.template_messages);
        b.counter("weir_exporter_bytes_total", "Bytes sent (IPFIX messages, without IP/UDP headers).", l, e.bytes);
        b.counter("weir_exporter_send_errors_total", "Sends that failed (collector unreachable, buffer full).", l,
                  e.send_errors);
        b.counter("weir_exporter_dropped_records_total", "Records lost in messages that could not be sent.", l,
                  e.lost_records);
        b.counter("weir_exporter_dropped_packets_total", "Packets in records lost in failed sends.", l, e.lost_packets);
        b.counter("weir_exporter_skipped_records_total", "Records the format cannot carry (IPv6 in NetFlow v5).", l,
                  e.skipped_records);
        b.counter("weir_exporter_skipped_packets_total", "Packets in skipped records.", l, e.skipped_packets);
        b.counter("weir_exporter_reconnects_total", "Reconnections to the collector (connection transports).", l,
                  e.reconnects);
        b.counter("weir_exporter_retries_total", "Deliveries tried again (Kafka produce requests, ClickHouse inserts).",
                  l, e.retries);
        b.counter("weir_exporter_queue_full_total",
                  "Messages refused because the exporter's local queue was full (their records are dropped).", l,
                  e.queue_full);
        b.gauge("weir_exporter_queued_messages", "Messages accepted but not yet delivered (Kafka, ClickHouse).", l,
                static_cast<double>(e.queued));
    }
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, b.families());
    return out.str();
}

}  // namespace weir::metrics
