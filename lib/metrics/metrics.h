// SPDX-License-Identifier: BSD-3-Clause
// Prometheus metrics for weir: a plain snapshot of every counter (filled by the control side
// from relaxed reads of per-worker counters, so workers never lock or share a cache line for
// this) rendered in the Prometheus text format with prometheus-cpp's serializer.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace weir::metrics {

struct PortSnapshot {
    std::string name, driver;
    uint64_t ipackets = 0, ibytes = 0, imissed = 0, ierrors = 0, rx_nombuf = 0;
};
struct QueueSnapshot {
    std::string port;
    uint32_t queue = 0, worker = 0;
    uint64_t packets = 0, bytes = 0;
};
struct WorkerSnapshot {
    uint32_t index = 0;
    uint64_t rx_packets = 0, rx_bytes = 0;
    double busy_s = 0, total_s = 0;  // time in loop iterations that received packets / in the loop
    double busy_ratio = 0;           // over the last control interval
    std::vector<std::pair<std::string, uint64_t>> decode_drops;  // reason -> count
    uint64_t l4_truncated = 0;
    uint64_t sampled_out = 0;
    uint64_t flows_active = 0, flows_capacity = 0, flows_created = 0;
    std::vector<std::pair<std::string, uint64_t>> flows_expired;  // reason -> count
    uint64_t evicted_table_full = 0, evicted_bucket_full = 0;
    uint64_t records = 0, batches = 0, ring_dropped_records = 0, ring_dropped_packets = 0;
    uint64_t ring_occupancy = 0, ring_capacity = 0;
    uint64_t multi_segment = 0, linearized = 0, ipv6_ext_limit = 0;
    std::vector<std::pair<std::string, uint64_t>> tunneled;      // tunnel type -> packets opened
    std::vector<std::pair<std::string, uint64_t>> tunnel_stops;  // reason -> packets
    uint64_t outer_copies = 0, handed_out = 0, handed_in = 0, handoff_dropped = 0;
    uint64_t tunnel_contexts = 0, tunnel_contexts_capacity = 0, tunnel_contexts_full = 0;
    // Payload inspection (when on).
    bool inspect = false;
    uint64_t inspect_packets = 0, inspect_bytes = 0, inspect_flows = 0, inspect_skipped = 0, inspect_finished = 0;
    uint64_t inspect_cut = 0, inspect_scan_errors = 0, names_sni = 0, names_host = 0, names_dropped = 0;
    uint64_t names_truncated = 0, streams_in_use = 0, streams_capacity = 0, carried = 0;
    bool capture = false;
    uint64_t captured = 0, capture_dropped = 0;
    bool detect = false;
    uint64_t detect_intervals = 0, detect_late = 0;
    uint64_t detect_overflow_sources = 0, detect_overflow_pairs = 0, detect_overflow_destinations = 0;
};
struct DetectSnapshot {
    struct Kind {
        std::string name;
        uint64_t events = 0, active = 0;
    };
    std::vector<Kind> kinds;
    uint64_t intervals = 0, intervals_forced = 0, keys_dropped = 0, events_written = 0, events_send_errors = 0;
};
struct CaptureSnapshot {
    uint64_t packets = 0, bytes = 0, files = 0, deleted = 0, budget_drops = 0, write_errors = 0, on_disk = 0;
};
struct RuleSnapshot {
    uint32_t id = 0;
    std::string name, tag, app;
    uint64_t matches = 0;
};
struct AppSnapshot {
    std::string app;  // "" for flows no rule named
    uint64_t flows = 0, bytes = 0;
};
struct ExporterSnapshot {
    std::string url, format;
    uint64_t records = 0, packets = 0, messages = 0, template_messages = 0, bytes = 0;
    uint64_t send_errors = 0, lost_records = 0, lost_packets = 0, reconnects = 0;
    uint64_t skipped_records = 0, skipped_packets = 0;
    uint64_t retries = 0, queue_full = 0, queued = 0;
};
struct ZonePairSnapshot {
    std::string from, to;
    uint64_t flows = 0, packets = 0, bytes = 0;
};
struct MatrixSnapshot {
    uint64_t cells = 0, max_cells = 0, records = 0, overflow_records = 0, violations = 0;
    std::vector<ZonePairSnapshot> pairs;
};
// The process as Prometheus' client libraries describe it (process_* metrics), from /proc.
struct ProcessSnapshot {
    double cpu_s = 0, start_time_s = 0;
    uint64_t resident_bytes = 0, virtual_bytes = 0, open_fds = 0, max_fds = 0;
};
ProcessSnapshot read_process();

struct Snapshot {
    std::string version;
    double start_time_s = 0;  // Unix time capture started
    ProcessSnapshot process;
    std::vector<PortSnapshot> ports;
    std::vector<QueueSnapshot> queues;
    std::vector<WorkerSnapshot> workers;
    std::vector<ExporterSnapshot> exporters;
    uint64_t reloads = 0, reload_failures = 0;
    bool last_reload_ok = true;        // true until a reload is refused, and again after one applies
    double last_reload_ok_time_s = 0;  // Unix time of the last applied reload (or of the start)
    bool inspect = false;
    uint64_t rules_loaded = 0, rules_database_bytes = 0, rules_stream_bytes = 0;
    std::vector<RuleSnapshot> rules;
    std::vector<AppSnapshot> apps;
    bool capture = false;
    CaptureSnapshot capture_files;
    bool detect = false;
    DetectSnapshot detection;
    bool matrix = false;
    MatrixSnapshot flow_matrix;
};

// The Prometheus text exposition of a snapshot.
std::string render(const Snapshot& s);

}  // namespace weir::metrics
