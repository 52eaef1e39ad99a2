// SPDX-License-Identifier: BSD-3-Clause
// Reload: the configuration read again (file and command line) and applied where that can be
// done live, or refused as a whole. apply_reload runs on the control thread; request_reload is
// how the management API asks it and waits for the answer.
#include "reload.h"

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
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>

#include "clock.h"
#include "common/log.h"

namespace weir {

// Applies a new configuration where that can be done live (exporters, timeouts, template
// refresh, stats interval) and refuses the whole reload, changing nothing, when anything else
// differs. Control thread only.
nlohmann::json apply_reload(Runtime& rt) {
    using nlohmann::json;
    std::vector<std::string> errors, changed;
    json pinned = json::array();
    config::Config c;
    try {
        c = config::from_json(rt.config_source(pinned));
    } catch (const config::ConfigError& e) {
        errors = e.problems();
    } catch (const std::exception& e) {
        errors.push_back(e.what());
    }
    const config::Config& o = rt.cfg;
    if (errors.empty()) {
        auto fixed = [&](bool same, const char* what) {
            if (!same)
                errors.push_back(std::string(what) + ": cannot change while weir runs (restart weir to change it)");
        };
        const std::vector<config::Port>& op = rt.configured_ports;
        bool ports_same = c.ports.size() == op.size();
        for (size_t i = 0; ports_same && i < c.ports.size(); ++i)
            ports_same = c.ports[i].device == op[i].device && c.ports[i].rx_descriptors == op[i].rx_descriptors &&
                c.ports[i].direction == op[i].direction;
        fixed(ports_same, "ports");
        fixed(c.eal == o.eal, "eal");
        fixed(c.workers == o.workers, "workers");
        fixed(c.flow_capacity == o.flow_capacity, "flow_table.capacity_per_worker");
        fixed(c.tunnels == o.tunnels, "tunnels");
        fixed(c.enterprise_number == o.enterprise_number, "ipfix.enterprise_number");
        using Ex = config::Exporter;
        for (const auto& [field, key, what] :
             {std::tuple{&Ex::macs, "macs", "MAC addresses"}, std::tuple{&Ex::mpls, "mpls", "MPLS labels"},
              std::tuple{&Ex::rtt, "rtt", "handshake times"}, std::tuple{&Ex::sizes, "sizes", "size histograms"}})
            if (c.want(field) && !o.want(field)) {
                std::string e = "exporters: ";
                e += what;
                e += " are kept only when an exporter asked for them at start (restart weir to add \"";
                e += key;
                e += "\": true)";
                errors.push_back(e);
            }
        fixed(c.mtu == o.mtu, "ipfix.mtu");
        fixed(c.observation_domain == o.observation_domain, "ipfix.observation_domain");
        fixed(c.probe == o.probe, "probe");
        fixed(c.max_delay_ms == o.max_delay_ms, "ipfix.max_delay_ms");
        fixed(c.export_buffers == o.export_buffers, "ipfix.buffers_per_worker");
        fixed(c.burst == o.burst, "burst");
        fixed(c.sample_interval == o.sample_interval && c.sample_random == o.sample_random, "sampling");
        fixed(c.mbufs_per_queue == o.mbufs_per_queue, "mbufs_per_queue");
        fixed(c.management == o.management, "management.listen");
        fixed(c.metrics_listen == o.metrics_listen, "management.metrics_listen");
        fixed(c.web_config == o.web_config, "management.web_config");
        fixed(c.history_step_s == o.history_step_s, "management.history_step_s");
        fixed(c.drivers_config.empty() || c.drivers_config == o.drivers_config, "drivers_config");
        if (c.inspect.on() != o.inspect.on())
            errors.push_back(std::string("inspect.rules: payload inspection is turned ") +
                             (c.inspect.on() ? "on" : "off") + " only at start (restart weir)");
        config::Inspect ci = c.inspect, oi = o.inspect;
        ci.rules = oi.rules;
        fixed(ci == oi, "inspect (depth, packets, streams_per_worker, names_per_worker, carry)");
        fixed(c.capture == o.capture, "capture");
        for (const auto& key : detection_restart_keys(o.detect, c.detect)) fixed(false, key.c_str());
        for (const auto& key : matrix_restart_keys(o, c)) fixed(false, key.c_str());
    }
    // Payload rules: compiled (and engines built) before anything changes; a bad set refuses the
    // whole reload and the old rules stay.
    std::unique_ptr<PreparedRules> rules;
    if (errors.empty() && c.inspect.on() && rt.inspection) {
        try {
            rules = prepare_rules(*rt.inspection, c, rt.workers.size());
        } catch (const std::exception& e) {
            std::string all = e.what(), line;
            for (size_t pos = 0; pos <= all.size();) {
                const size_t nl = all.find('\n', pos);
                errors.push_back("inspect.rules: " + all.substr(pos, nl == std::string::npos ? nl : nl - pos));
                if (nl == std::string::npos) break;
                pos = nl + 1;
            }
        }
    }
    // Exporters: keep those whose URL stays (their sequence numbers go on), open the new ones.
    std::vector<std::unique_ptr<exporter::Exporter>> next;
    if (errors.empty()) {
        std::lock_guard<std::mutex> lock(rt.mu);
        std::vector<std::unique_ptr<exporter::Exporter>> old = std::move(rt.exporters);
        rt.exporters.clear();
        try {
            for (const auto& ex : c.exporters) {
                const std::string id = exporter::identity_of(ex);
                auto it = std::find_if(old.begin(), old.end(), [&](const auto& p) { return p && p->identity() == id; });
                if (it != old.end() && c.template_refresh_s == o.template_refresh_s &&
                    c.template_refresh_messages == o.template_refresh_messages)
                    next.push_back(std::move(*it));
                else
                    next.push_back(exporter::make_exporter(ex, c, rt.export_context));
            }
        } catch (const std::exception& e) {
            errors.push_back(std::string("exporters: ") + e.what());
        }
        if (!errors.empty()) {
            // Put back what was there: nothing changes on a refused reload.
            for (auto& p : next)
                if (p) {
                    auto it = std::find_if(old.begin(), old.end(), [](const auto& q) { return !q; });
                    if (it != old.end()) *it = std::move(p);
                }
            rt.exporters = std::move(old);
        } else {
            std::vector<std::string> before, after;
            for (const auto& e : o.exporters) before.push_back(exporter::identity_of(e));
            for (const auto& e : c.exporters) after.push_back(exporter::identity_of(e));
            if (before != after) changed.push_back("exporters");
            rt.exporters = std::move(next);
        }
    }
    if (errors.empty()) {
        if (c.idle_timeout_s != o.idle_timeout_s || c.active_timeout_s != o.active_timeout_s ||
            c.tcp_end_timeout_s != o.tcp_end_timeout_s) {
            for (auto& w : rt.workers)
                while (!w->set_timeouts(static_cast<uint64_t>(c.idle_timeout_s * 1e9),
                                        static_cast<uint64_t>(c.active_timeout_s * 1e9),
                                        static_cast<uint64_t>(c.tcp_end_timeout_s * 1e9)) &&
                       !w->done())
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
            changed.push_back("timeouts");
        }
        if (c.template_refresh_s != o.template_refresh_s || c.template_refresh_messages != o.template_refresh_messages)
            changed.push_back("ipfix.template_refresh");
        if (c.stats_interval_s != o.stats_interval_s) changed.push_back("stats_interval_s");
        if (rt.detection && reload_detection(*rt.detection, o.detect, c.detect)) changed.push_back("detect");
        if (rules) {
            commit_rules(*rt.inspection, std::move(*rules), rt.workers);
            changed.push_back("inspect.rules");
        }
        if (c.log_level != o.log_level) {
            log::set_level(c.log_level);
            changed.push_back("log_level");
        }
        const std::string drivers = rt.cfg.drivers_config;
        rt.cfg = c;
        rt.cfg.drivers_config = drivers;
        rt.reloads += 1;
        rt.last_reload_ok = true;
        rt.last_reload_ok_unix_s = unix_s();
        weir::log::say(weir::log::Level::kNotice, "weir: reload applied (%s)\n", changed.empty() ? "nothing changed" : [&] {
            std::string s;
            for (const auto& x : changed) s += (s.empty() ? "" : ", ") + x;
            return s;
        }().c_str());
    } else {
        rt.reload_failures += 1;
        rt.last_reload_ok = false;
        for (const auto& e : errors) weir::log::say(weir::log::Level::kError, "weir: reload refused: %s\n", e.c_str());
    }
    for (const auto& p : pinned)
        weir::log::say(weir::log::Level::kWarning,
                       "weir: reload: %s stays %s, as %s on the command line says (the file says %s)\n",
                       p["key"].get<std::string>().c_str(), p["value"].dump().c_str(),
                       p["option"].get<std::string>().c_str(), p["file"].dump().c_str());
    return json{{"ok", errors.empty()}, {"changed", changed}, {"pinned", pinned}, {"errors", errors}};
}

nlohmann::json request_reload(Runtime& rt) {
    std::unique_lock<std::mutex> lock(rt.reload_mu);
    const uint64_t id = ++rt.reload_requested;
    if (!rt.reload_cv.wait_for(lock, std::chrono::seconds(10), [&] { return rt.reload_done >= id; }))
        return {{"ok", false}, {"errors", {"the control thread did not answer within 10 s"}}};
    return rt.reload_result;
}

}  // namespace weir
