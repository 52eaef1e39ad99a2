// SPDX-License-Identifier: BSD-3-Clause
// A day of the probe's own counters in memory, for the page a person looks at on the probe
// itself (GET / of the management server, MRTG-style graphs): one sample every `step_s` seconds
// (default 10 s, 8,640 samples: about 0.6 MiB), rates computed between neighbouring samples
// when served. Written by the control thread, read by the HTTP server's threads. No DPDK.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

namespace weir::metrics {

struct Sample {
    double t = 0;  // Unix time
    // Cumulative counters.
    uint64_t rx_packets = 0, rx_bytes = 0;
    uint64_t missed = 0;        // dropped by the NICs (imissed + rx_nombuf)
    uint64_t decode_drops = 0;  // malformed, truncated, unsupported
    uint64_t flows_created = 0;
    uint64_t records = 0;         // records exported (all exporters' first: the records the workers made)
    uint64_t export_dropped = 0;  // records lost on the way (ring full, exporters' losses)
    uint64_t events = 0;          // detection events started
    // Levels.
    uint64_t flows_active = 0;
    double busy = 0;  // the busiest worker's busy ratio
};

class History {
public:
    explicit History(size_t capacity = 8640, double step_s = 10) : cap_(capacity), step_(step_s) {}
    // A day of samples every step_s seconds; what was kept is dropped. Before the first add().
    void configure(double step_s) {
        std::lock_guard<std::mutex> lock(mu_);
        step_ = step_s;
        cap_ = static_cast<size_t>(86400 / step_s) + 1;
        ring_.clear();
        next_ = 0;
    }
    double step_s() const { return step_; }
    void add(const Sample& s);
    // The samples of the last `seconds` (0: all), at most `points` of them (neighbours merged):
    // {"step_s": S, "t": [...], "pps": [...], "bps": [...], "missed_pps": [...],
    //  "decode_drops_pps": [...], "new_flows_per_s": [...], "records_per_s": [...],
    //  "export_dropped_per_s": [...], "events_per_min": [...], "flows_active": [...], "busy": [...]}
    // Each rate is over the interval that ends at its t; the first sample has none.
    nlohmann::json json(double seconds, size_t points = 720) const;

private:
    size_t cap_;
    double step_;
    mutable std::mutex mu_;
    std::vector<Sample> ring_;
    size_t next_ = 0;  // where the next sample goes once the ring is full
};

}  // namespace weir::metrics
