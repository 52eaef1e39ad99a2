// SPDX-License-Identifier: BSD-3-Clause
#include "matrix.h"

#include "common/log.h"
#include "detection.h"

namespace weir {

void FlowMatrix::count(const flow::FlowRecord* r, unsigned n) {
    std::lock_guard<std::mutex> lock(mu);
    matrix->count(r, n, violations);
}

void FlowMatrix::hand_over(Detection* d) {
    std::vector<zones::Violation> v;
    {
        std::lock_guard<std::mutex> lock(mu);
        if (violations.empty()) return;
        v.swap(violations);
    }
    if (d) d->violations(v);
}

std::unique_ptr<FlowMatrix> start_matrix(const config::Config& c) {
    if (c.zones.empty() && !c.policy.on) return nullptr;
    auto m = std::make_unique<FlowMatrix>();
    m->matrix = std::make_unique<zones::Matrix>(c.zones, c.policy, c.matrix_cells);
    size_t prefixes = 0;
    for (const auto& z : c.zones) prefixes += z.prefixes.size();
    log::say(log::Level::kInfo, "weir: flow matrix: %zu zones (%zu prefixes), up to %u cells%s\n", c.zones.size(),
             prefixes, c.matrix_cells,
             c.policy.on ? (", policy of " + std::to_string(c.policy.allow.size()) + " allowed services").c_str() : "");
    return m;
}

std::vector<std::string> matrix_restart_keys(const config::Config& old, const config::Config& now) {
    std::vector<std::string> keys;
    if (old.zones != now.zones) keys.push_back("zones");
    if (old.policy != now.policy) keys.push_back("policy");
    if (old.matrix_cells != now.matrix_cells) keys.push_back("matrix.max_cells");
    return keys;
}

nlohmann::json matrix_json(FlowMatrix& m, size_t n) {
    std::lock_guard<std::mutex> lock(m.mu);
    return m.matrix->to_json(n);
}

nlohmann::json matrix_status(FlowMatrix& m) {
    std::lock_guard<std::mutex> lock(m.mu);
    const auto& st = m.matrix->stats();
    return {{"zones", m.matrix->zones().size() - 1},
            {"policy", m.matrix->policy()},
            {"cells", m.matrix->cells()},
            {"max_cells", m.matrix->max_cells()},
            {"records", st.records},
            {"overflow_records", st.overflow_records},
            {"violations", st.violations}};
}

void matrix_metrics(FlowMatrix& m, metrics::Snapshot& s) {
    std::lock_guard<std::mutex> lock(m.mu);
    const auto& st = m.matrix->stats();
    auto& o = s.flow_matrix;
    s.matrix = true;
    o.cells = m.matrix->cells();
    o.max_cells = m.matrix->max_cells();
    o.records = st.records;
    o.overflow_records = st.overflow_records;
    o.violations = st.violations;
    for (const auto& p : m.matrix->pair_totals())
        o.pairs.push_back({m.matrix->zones().name(p.from), m.matrix->zones().name(p.to), p.flows, p.packets, p.bytes});
}

}  // namespace weir
