// SPDX-License-Identifier: BSD-3-Clause
// Payload inspection on the control side (see inspection.h).
#include "inspection.h"

#include <chrono>
#include <stdexcept>
#include <thread>

#include "common/log.h"
#include "worker/worker.h"

namespace weir {

inspect::InspectConfig inspect_config(const config::Inspect& c, const config::Capture& cap) {
    inspect::InspectConfig ic;
    ic.capture_packets = cap.on() ? cap.packets_per_flow : 0;
    ic.depth = c.depth;
    ic.packets = c.packets;
    ic.streams = c.streams_per_worker;
    ic.names = c.names_per_worker;
    ic.carry = c.carry;
    return ic;
}

std::shared_ptr<const inspect::Ruleset> compile_rules(const config::Inspect& c) {
    return inspect::Ruleset::compile(inspect::load_rules_file(c.rules), c.depth, c.rules);
}

std::vector<std::string> capture_problems(const inspect::Ruleset& rules, const config::Capture& cap) {
    std::vector<std::string> out;
    if (cap.on()) return out;
    for (const auto& r : rules.specs())
        if (r.capture)
            out.push_back(rules.source() + ": rule " + std::to_string(r.id) + " (" + r.name +
                          ") asks for capture: set capture.dir");
    return out;
}

std::unique_ptr<Inspection> start_inspection(const config::Config& cfg, std::shared_ptr<const inspect::Ruleset> rules,
                                             const std::vector<std::unique_ptr<Worker>>& workers) {
    const config::Inspect& c = cfg.inspect;
    auto in = std::make_unique<Inspection>();
    in->cfg = inspect_config(c, cfg.capture);
    in->rules = std::move(rules);
    in->app_flows = std::make_unique<std::atomic<uint64_t>[]>(65536);
    in->app_bytes = std::make_unique<std::atomic<uint64_t>[]>(65536);
    for (const auto& w : workers) {
        in->engines.push_back(std::make_unique<inspect::Engine>(in->rules, in->cfg.streams));
        w->attach_engine(in->engines.back().get());
    }
    const auto& r = *in->rules;
    log::say(log::Level::kInfo,
             "weir: inspect: %zu rules from %s (%s; database %.1f KiB, %zu B of stream state per direction; "
             "%u streams per worker, %.1f MiB each; depth %u B, %u packets per direction)\n",
             r.rules().size(), r.source().c_str(), inspect::engine_version().c_str(), r.database_bytes() / 1024.0,
             r.stream_bytes(), in->cfg.streams, in->engines.empty() ? 0.0 : in->engines[0]->memory_bytes() / 1048576.0,
             in->cfg.depth, in->cfg.packets);
    return in;
}

std::unique_ptr<PreparedRules> prepare_rules(const Inspection& in, const config::Config& cfg, size_t workers) {
    const config::Inspect& c = cfg.inspect;
    auto specs = inspect::load_rules_file(c.rules);
    if (in.rules && specs == in.rules->specs() && c.rules == in.rules->source()) return nullptr;
    auto p = std::make_unique<PreparedRules>();
    p->rules = inspect::Ruleset::compile(std::move(specs), c.depth, c.rules);
    const auto problems = capture_problems(*p->rules, cfg.capture);
    if (!problems.empty()) throw inspect::RuleError(problems.front());
    for (size_t i = 0; i < workers; ++i)
        p->engines.push_back(std::make_unique<inspect::Engine>(p->rules, in.cfg.streams));
    return p;
}

namespace {

// Adds an engine's match counts to the totals of engines gone.
void keep_matches(Inspection& in, const inspect::Engine& e) {
    const auto& rules = e.ruleset().rules();
    for (size_t i = 0; i < rules.size(); ++i) in.retired_matches[rules[i].handle] += e.matches(i).get();
}

}  // namespace

void commit_rules(Inspection& in, PreparedRules&& p, const std::vector<std::unique_ptr<Worker>>& workers) {
    const uint64_t gen = ++in.generation;
    std::vector<std::unique_ptr<inspect::Engine>> old;
    {
        std::lock_guard<std::mutex> g(in.mu);
        old = std::move(in.engines);
        in.engines = std::move(p.engines);
        in.rules = std::move(p.rules);
    }
    for (size_t i = 0; i < workers.size(); ++i)
        while (!workers[i]->set_engine(in.engines[i].get(), gen) && !workers[i]->done())
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // A worker takes its mailbox between bursts: microseconds. Engines of workers that have not
    // let go after 5 s (a worker stuck would be a bug) are kept until exit rather than freed under it.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (size_t i = 0; i < workers.size(); ++i) {
        while (workers[i]->engine_generation() < gen && !workers[i]->done() &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        std::lock_guard<std::mutex> g(in.mu);
        if (i >= old.size() || !old[i]) continue;
        keep_matches(in, *old[i]);
        if (workers[i]->engine_generation() >= gen || workers[i]->done()) {
            old[i].reset();
        } else {
            log::say(log::Level::kWarning, "weir: inspect: worker %zu has not taken the new rules within 5 s\n", i);
            in.retired.push_back(std::move(old[i]));
        }
    }
}

void inspection_metrics(Inspection& in, const std::vector<std::unique_ptr<Worker>>& workers, metrics::Snapshot& s) {
    s.inspect = true;
    for (size_t i = 0; i < workers.size() && i < s.workers.size(); ++i) {
        const inspect::Inspector* x = workers[i]->inspector();
        if (!x) continue;
        const auto& st = x->stats();
        auto& w = s.workers[i];
        w.inspect = true;
        w.inspect_packets = st.packets.get(), w.inspect_bytes = st.bytes.get(), w.inspect_flows = st.flows.get();
        w.inspect_skipped = st.skipped.get(), w.inspect_finished = st.finished.get(), w.inspect_cut = st.cut.get();
        w.inspect_scan_errors = st.scan_errors.get();
        w.names_sni = st.names[static_cast<size_t>(inspect::NameKind::kTlsSni)].get();
        w.names_host = st.names[static_cast<size_t>(inspect::NameKind::kHttpHost)].get();
        w.names_dropped = st.names_dropped.get(), w.names_truncated = st.names_truncated.get();
        w.streams_in_use = st.in_use.get(), w.streams_capacity = x->contexts();
        w.carried = st.carried.get();
    }
    auto& reg = inspect::Registry::instance();
    std::lock_guard<std::mutex> g(in.mu);
    std::map<uint16_t, uint64_t> matches = in.retired_matches;
    if (in.rules) {
        s.rules_loaded = in.rules->rules().size();
        s.rules_database_bytes = in.rules->database_bytes();
        s.rules_stream_bytes = in.rules->stream_bytes();
        const auto& rules = in.rules->rules();
        for (size_t r = 0; r < rules.size(); ++r) {
            uint64_t n = 0;
            for (const auto& e : in.engines) n += e->matches(r).get();
            matches[rules[r].handle] += n;
        }
    }
    for (const auto& [h, n] : matches) {
        const inspect::RuleInfo* ri = reg.rule_info(h);
        if (!ri) continue;
        s.rules.push_back({ri->id, ri->name, ri->tag, ri->app, n});
    }
    const size_t apps = reg.apps();
    for (size_t a = 0; a <= apps && a < 65536; ++a) {
        const uint64_t f = in.app_flows[a].load(std::memory_order_relaxed);
        if (!f && a) continue;
        s.apps.push_back({reg.app_name(static_cast<uint16_t>(a)), f, in.app_bytes[a].load(std::memory_order_relaxed)});
    }
}

nlohmann::json inspection_status(Inspection& in, const std::vector<std::unique_ptr<Worker>>& workers) {
    metrics::Snapshot s;
    for (size_t i = 0; i < workers.size(); ++i) s.workers.emplace_back();
    inspection_metrics(in, workers, s);
    nlohmann::json apps = nlohmann::json::array(), rules = nlohmann::json::array();
    for (const auto& a : s.apps) apps.push_back({{"app", a.app}, {"flows", a.flows}, {"bytes", a.bytes}});
    for (const auto& r : s.rules)
        rules.push_back({{"id", r.id}, {"name", r.name}, {"tag", r.tag}, {"app", r.app}, {"matches", r.matches}});
    uint64_t bytes = 0, flows = 0, skipped = 0, in_use = 0, cap = 0;
    for (const auto& w : s.workers) {
        bytes += w.inspect_bytes, flows += w.inspect_flows, skipped += w.inspect_skipped;
        in_use += w.streams_in_use, cap += w.streams_capacity;
    }
    std::lock_guard<std::mutex> g(in.mu);
    return {{"rules_file", in.rules ? in.rules->source() : ""},
            {"engine", inspect::engine_version()},
            {"rules_loaded", s.rules_loaded},
            {"depth", in.cfg.depth},
            {"bytes_inspected", bytes},
            {"flows_inspected", flows},
            {"flows_skipped", skipped},
            {"streams_in_use", in_use},
            {"streams_capacity", cap},
            {"applications", apps},
            {"rules", rules}};
}

}  // namespace weir
