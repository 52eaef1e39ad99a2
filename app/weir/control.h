// SPDX-License-Identifier: BSD-3-Clause
// The control thread (main lcore): drains worker rings into the exporters, watches for the
// end of a replayed capture and for signals, prints counters, and at the end the summary.
#pragma once

#include <rte_ethdev.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "dpdk/port.h"
#include "dpdk/replay.h"
#include "export/exporter.h"
#include "capture.h"
#include "detection.h"
#include "inspection.h"
#include "matrix.h"
#include "metrics/history.h"
#include "metrics/metrics.h"
#include "worker/worker.h"

namespace weir {

struct Runtime {
    config::Config cfg;
    std::vector<dpdk::PortInfo> ports;
    std::vector<uint64_t> expected_packets;              // per port, replay only: what the capture files hold
    std::vector<std::unique_ptr<dpdk::Replay>> replays;  // per port: its capture reader, or null
    std::vector<config::Port> configured_ports;  // as configured (a replay of several link types has a port each)
    std::vector<std::string> captures;           // replay only, for the summary
    packet::DecodeOptions decode;                // shared read-only by the workers
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<rte_ring*> handoff_rings;  // between workers; freed after them
    std::atomic<uint32_t> rx_stopped{0};   // workers that stopped receiving
    std::vector<std::unique_ptr<exporter::Exporter>> exporters;
    std::shared_ptr<const exporter::ExportContext> export_context;
    std::atomic<uint64_t> handed_records{0};  // records the control thread took from workers
    std::atomic<uint64_t> handed_packets{0};
    std::atomic<uint64_t> handed_batches{0};
    std::atomic<uint64_t> handed_copy_packets{0};  // in outer-copy records (both mode)
    double started_s = 0;                          // monotonic clock
    double started_unix_s = 0;                     // the same moment, Unix time
    std::string version;

    // Shared with the management server's threads: exporters (replaced on reload) and the port
    // counters the control thread reads from DPDK every 250 ms.
    std::mutex mu;
    std::vector<rte_eth_stats> port_stats;
    std::vector<double> busy_ratio;  // per worker, last interval
    std::atomic<bool> replay_finished{false};
    std::atomic<bool> stopping{false};
    std::atomic<uint64_t> reloads{0}, reload_failures{0};
    std::atomic<bool> last_reload_ok{true};
    std::atomic<double> last_reload_ok_unix_s{0};

    // Reload: where the configuration comes from (file + command line; `pinned` receives the
    // settings where a command-line option overrides a different value in the file), and the
    // hand-over of API reload requests to the control thread, which alone applies them.
    std::function<nlohmann::json(nlohmann::json& pinned)> config_source;
    std::mutex reload_mu;
    std::condition_variable reload_cv;
    uint64_t reload_requested = 0, reload_done = 0;
    nlohmann::json reload_result;
    std::mutex top_mu;                       // one top-flows walk at a time
    std::unique_ptr<Inspection> inspection;  // payload inspection; nullptr when off
    std::unique_ptr<CaptureWriter> capture;  // selective capture's writer; nullptr when off
    std::unique_ptr<Detection> detection;    // scans, floods, reflection; nullptr when off
    std::unique_ptr<FlowMatrix> matrix;      // zone x zone x service counts, policy; nullptr without zones
    metrics::History history;                // a day of samples for the page at / (control thread writes)
};

// Reload from the API: asks the control thread and waits for its answer.
nlohmann::json request_reload(Runtime& rt);
// The heaviest active flows across workers, without stopping them.
nlohmann::json top_flows(Runtime& rt, bool by_packets, uint32_t n);
// Everything /metrics exposes.
metrics::Snapshot snapshot(Runtime& rt);
// The IPFIX metering statistics of one observation domain (one worker).
ipfix::MeteringStats metering(const Runtime& rt, uint32_t domain);
// What /status shows.
nlohmann::json status(Runtime& rt);

// Runs until a signal, or the end of every replayed capture, then stops the workers and drains
// what they flushed. Returns when every worker is done and every message is sent.
void control_loop(Runtime& rt);

// Prints the summary to stdout and, if configured, writes it as JSON. Returns true when the
// packet accounting balances (received = in records + counted drops).
bool report(Runtime& rt);

void install_signal_handlers();

}  // namespace weir
