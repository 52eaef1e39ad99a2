// SPDX-License-Identifier: BSD-3-Clause
// The flow matrix on the control side: every record the workers hand over is counted in its
// zone x zone x service cell (zones/zones.h), and the conversations the policy does not allow
// go to detection as out_of_policy events. Served at /matrix, in /status and /metrics.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "metrics/metrics.h"
#include "zones/zones.h"

namespace weir {

struct Detection;

struct FlowMatrix {
    std::unique_ptr<zones::Matrix> matrix;
    std::mutex mu;                             // the matrix, for the management threads
    std::vector<zones::Violation> violations;  // found while draining, not yet handed to detection

    // Control thread, for each batch of records.
    void count(const flow::FlowRecord* r, unsigned n);
    // Control thread, outside the export lock: the violations found go to detection.
    void hand_over(Detection* d);
};

// With zones or a policy configured; nullptr otherwise. Throws std::invalid_argument.
std::unique_ptr<FlowMatrix> start_matrix(const config::Config& c);
// What a reload may change: nothing (zones, policy and size are read at start).
std::vector<std::string> matrix_restart_keys(const config::Config& old, const config::Config& now);
nlohmann::json matrix_json(FlowMatrix& m, size_t n);
nlohmann::json matrix_status(FlowMatrix& m);
void matrix_metrics(FlowMatrix& m, metrics::Snapshot& s);

}  // namespace weir
