// SPDX-License-Identifier: BSD-3-Clause
// Payload inspection on the control side: the rules compiled at start and on reload, one engine
// per worker handed over through the workers' mailboxes, and what /metrics and /status show of it.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "flow/flow_record.h"
#include "inspect/inspector.h"
#include "metrics/metrics.h"

namespace weir {

class Worker;

struct Inspection {
    inspect::InspectConfig cfg;                             // what workers size their pools by
    std::shared_ptr<const inspect::Ruleset> rules;          // in use
    std::vector<std::unique_ptr<inspect::Engine>> engines;  // in use, by worker
    std::vector<std::unique_ptr<inspect::Engine>> retired;  // a worker did not let go in time: freed at exit
    uint64_t generation = 0;
    std::mutex mu;                                 // rules, engines and retired_matches, for metrics readers
    std::map<uint16_t, uint64_t> retired_matches;  // by rule handle, of engines already freed
    // Conversations and bytes by application handle, counted as their records are drained.
    std::unique_ptr<std::atomic<uint64_t>[]> app_flows, app_bytes;

    // Counts the applications of a batch of records (control thread).
    void count(const flow::FlowRecord* rs, uint32_t n) noexcept {
        for (uint32_t i = 0; i < n; ++i) {
            const auto& r = rs[i];
            const uint16_t a = r.inspection() ? r.inspection()->app : 0;
            app_flows[a].fetch_add(1, std::memory_order_relaxed);
            app_bytes[a].fetch_add(r.fwd.octets + r.rev.octets, std::memory_order_relaxed);
        }
    }
};

inspect::InspectConfig inspect_config(const config::Inspect& c, const config::Capture& cap);

// Reads and compiles the configuration's rules file; throws inspect::RuleError.
std::shared_ptr<const inspect::Ruleset> compile_rules(const config::Inspect& c);

// Builds an engine per worker for `rules` and attaches it (before the workers run).
std::unique_ptr<Inspection> start_inspection(const config::Config& c, std::shared_ptr<const inspect::Ruleset> rules,
                                             const std::vector<std::unique_ptr<Worker>>& workers);
// The rules that ask for capture when capture is off: one problem each.
std::vector<std::string> capture_problems(const inspect::Ruleset& rules, const config::Capture& cap);

// A reload: engines for the new rules, ready to hand over (nullptr when the rules are the same).
// Throws with the reason when the rules do not compile or engines cannot be built.
struct PreparedRules {
    std::shared_ptr<const inspect::Ruleset> rules;
    std::vector<std::unique_ptr<inspect::Engine>> engines;
};
std::unique_ptr<PreparedRules> prepare_rules(const Inspection& in, const config::Config& c, size_t workers);
// Hands the prepared engines to the workers and frees the old ones once every worker let go.
void commit_rules(Inspection& in, PreparedRules&& p, const std::vector<std::unique_ptr<Worker>>& workers);

// /metrics and /status.
void inspection_metrics(Inspection& in, const std::vector<std::unique_ptr<Worker>>& workers, metrics::Snapshot& s);
nlohmann::json inspection_status(Inspection& in, const std::vector<std::unique_ptr<Worker>>& workers);

}  // namespace weir
