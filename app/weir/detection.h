// SPDX-License-Identifier: BSD-3-Clause
// Detection on the control side: the detector over every worker's observer, and where its
// events go (the log, a JSON-lines transport, /events, /status, /metrics).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "detect/detector.h"
#include "export/transport.h"
#include "metrics/metrics.h"
#include "zones/zones.h"

namespace weir {

class Worker;

struct Detection {
    std::unique_ptr<detect::Detector> detector;
    std::unique_ptr<exporter::Transport> out;  // events as JSON lines; nullptr when not configured
    std::string out_url;
    std::mutex mu;  // the detector, for the management threads
    std::atomic<uint64_t> written{0}, send_errors{0};
    std::vector<detect::Observer*> observers;

    // Control thread: takes what the workers published, decides, writes the events.
    void poll();
    // Every worker is done: decides the rest and ends every event.
    void finish();
    // Conversations outside the zone policy (the flow matrix found them): out_of_policy events.
    void violations(const std::vector<zones::Violation>& v);

private:
    void emit(std::vector<nlohmann::json>& events);
};

detect::ObserverConfig observer_config(const config::Detect& d);
detect::Thresholds thresholds(const config::Detect& d);

// After the workers exist (before they run). Throws when the events transport cannot open.
std::unique_ptr<Detection> start_detection(const config::Config& c,
                                           const std::vector<std::unique_ptr<Worker>>& workers);

// A reload: what cannot change while weir runs (the workers' tables, the events transport)...
std::vector<std::string> detection_restart_keys(const config::Detect& old, const config::Detect& now);
// ... and new thresholds, window and hold-down, from the next interval decided. True if changed.
bool reload_detection(Detection& d, const config::Detect& old, const config::Detect& now);

void detection_metrics(Detection& d, const std::vector<std::unique_ptr<Worker>>& workers, metrics::Snapshot& s);
nlohmann::json detection_status(Detection& d, const std::vector<std::unique_ptr<Worker>>& workers);
nlohmann::json detection_events(Detection& d, size_t n);

}  // namespace weir
