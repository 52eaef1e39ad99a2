// SPDX-License-Identifier: BSD-3-Clause
// Detection on the control side (see detection.h).
#include "detection.h"

#include <cstring>
#include <ctime>

#include "common/log.h"
#include "worker/worker.h"

namespace weir {

detect::ObserverConfig observer_config(const config::Detect& d) {
    detect::ObserverConfig o;
    o.interval_ns = static_cast<uint64_t>(d.interval_s * 1e9);
    o.sources = d.sources_per_worker;
    o.pairs = d.pairs_per_worker;
    o.destinations = d.destinations_per_worker;
    o.promote_packets = d.promote_packets;
    o.dns_long = d.dns_long_bytes;
    for (uint16_t p : d.amplifier_ports) o.amplifiers.set(p);
    return o;
}

detect::Thresholds thresholds(const config::Detect& d) {
    detect::Thresholds t;
    t.window_s = d.window_s;
    t.hold_down_s = d.hold_down_s;
    t.vertical_ports = d.vertical_ports;
    t.horizontal_hosts = d.horizontal_hosts;
    t.sweep_hosts = d.sweep_hosts;
    t.max_answered = d.max_answered;
    t.syn_rate = d.syn_per_s;
    t.max_completed = d.max_completed;
    t.flood_pps = d.flood_pps;
    t.flood_bps = d.flood_bps;
    t.amp_responses = d.amp_responses;
    t.amp_sources = d.amp_sources;
    t.dns_queries = d.dns_queries;
    t.dns_long_share = d.dns_long_share;
    return t;
}

std::unique_ptr<Detection> start_detection(const config::Config& c,
                                           const std::vector<std::unique_ptr<Worker>>& workers) {
    auto d = std::make_unique<Detection>();
    for (const auto& w : workers)
        if (w->observer()) d->observers.push_back(w->observer());
    d->detector = std::make_unique<detect::Detector>(thresholds(c.detect), d->observers);
    if (!c.detect.events.empty()) {
        config::Exporter ex;
        ex.format = config::Format::kJsonl;
        config::parse_url(c.detect.events, ex);
        d->out = exporter::make_transport(ex, c);
        d->out_url = c.detect.events;
    }
    const size_t mem = d->observers.empty() ? 0 : d->observers[0]->memory_bytes();
    log::say(log::Level::kInfo,
             "weir: detect: scans, sweeps, floods, reflection every %.3g s of packet time (window %.3g s, hold-down "
             "%.3g s; %.1f MiB per worker)%s%s\n",
             c.detect.interval_s, c.detect.window_s, c.detect.hold_down_s, mem / 1048576.0,
             d->out ? "; events to " : "", d->out ? d->out_url.c_str() : "");
    return d;
}

void Detection::emit(std::vector<nlohmann::json>& events) {
    if (events.empty()) return;
    std::string lines;
    for (const auto& e : events) {
        const bool start = e["phase"] == "start";
        log::say(start ? log::Level::kNotice : log::Level::kInfo, "weir: event %s #%lu %s: attacker %s victim %s%s%s\n",
                 start ? "start" : "end", static_cast<unsigned long>(e["id"].get<uint64_t>()),
                 e["kind"].get<std::string>().c_str(), e["attacker"].get<std::string>().c_str(),
                 e["victim"].get<std::string>().c_str(), e.contains("port") ? " port " : "",
                 e.contains("port") ? std::to_string(e["port"].get<int>()).c_str() : "");
        lines += e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        lines += '\n';
    }
    if (out) {
        const auto now = static_cast<uint32_t>(std::time(nullptr));
        // One message per event on UDP (a datagram each); one write for all on streams.
        if (out->max_message() < lines.size()) {
            size_t pos = 0;
            while (pos < lines.size()) {
                const size_t end = lines.find('\n', pos) + 1;
                out->prepare(end - pos, now);
                if (out->send(reinterpret_cast<const uint8_t*>(lines.data() + pos), end - pos, now))
                    written.fetch_add(1, std::memory_order_relaxed);
                else
                    send_errors.fetch_add(1, std::memory_order_relaxed);
                pos = end;
            }
        } else {
            out->prepare(lines.size(), now);
            if (out->send(reinterpret_cast<const uint8_t*>(lines.data()), lines.size(), now))
                written.fetch_add(events.size(), std::memory_order_relaxed);
            else
                send_errors.fetch_add(events.size(), std::memory_order_relaxed);
        }
    }
    events.clear();
}

void Detection::poll() {
    std::vector<nlohmann::json> events;
    {
        std::lock_guard<std::mutex> lock(mu);
        detector->poll(events);
    }
    emit(events);
}

void Detection::finish() {
    std::vector<nlohmann::json> events;
    {
        std::lock_guard<std::mutex> lock(mu);
        detector->finish(events);
    }
    emit(events);
}

void Detection::violations(const std::vector<zones::Violation>& v) {
    std::vector<nlohmann::json> events;
    {
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& z : v) {
            detect::PolicyViolation pv{};
            std::memcpy(pv.client, z.tuple.src, 16);
            std::memcpy(pv.server, z.tuple.dst, 16);
            pv.version = z.tuple.ip_version;
            pv.proto = z.tuple.proto;
            pv.port = z.port;
            pv.from = z.from;
            pv.to = z.to;
            pv.first_ns = z.first_ns;
            pv.last_ns = z.last_ns;
            pv.packets = z.packets;
            pv.bytes = z.bytes;
            detector->violation(pv, events);
        }
    }
    emit(events);
}

bool reload_detection(Detection& d, const config::Detect& old, const config::Detect& now) {
    if (thresholds(old) == thresholds(now)) return false;
    std::lock_guard<std::mutex> lock(d.mu);
    d.detector->set_thresholds(thresholds(now));
    return true;
}

std::vector<std::string> detection_restart_keys(const config::Detect& a, const config::Detect& b) {
    std::vector<std::string> restart;
    if (a.enabled != b.enabled) restart.push_back("detect.enabled");
    if (a.interval_s != b.interval_s) restart.push_back("detect.interval_s");
    if (a.events != b.events) restart.push_back("detect.events");
    if (a.sources_per_worker != b.sources_per_worker) restart.push_back("detect.sources_per_worker");
    if (a.pairs_per_worker != b.pairs_per_worker) restart.push_back("detect.pairs_per_worker");
    if (a.destinations_per_worker != b.destinations_per_worker) restart.push_back("detect.destinations_per_worker");
    if (a.promote_packets != b.promote_packets) restart.push_back("detect.promote_packets");
    if (a.amplifier_ports != b.amplifier_ports) restart.push_back("detect.amplifier_ports");
    if (a.dns_long_bytes != b.dns_long_bytes) restart.push_back("detect.thresholds.dns_long_bytes");
    return restart;
}

void detection_metrics(Detection& d, const std::vector<std::unique_ptr<Worker>>& workers, metrics::Snapshot& s) {
    s.detect = true;
    auto& m = s.detection;
    {
        std::lock_guard<std::mutex> lock(d.mu);
        const auto& st = d.detector->stats();
        for (unsigned k = 0; k < detect::kKinds; ++k)
            m.kinds.push_back({detect::kind_name(static_cast<detect::Kind>(k)), st.events[k], st.active[k]});
        m.intervals = st.intervals_decided;
        m.intervals_forced = st.intervals_forced;
        m.keys_dropped = st.keys_dropped;
    }
    m.events_written = d.written.load(std::memory_order_relaxed);
    m.events_send_errors = d.send_errors.load(std::memory_order_relaxed);
    for (auto& w : s.workers) {
        if (w.index >= workers.size() || !workers[w.index]->observer()) continue;
        const auto st = workers[w.index]->observer()->stats();
        w.detect = true;
        w.detect_intervals = st.intervals;
        w.detect_late = st.late;
        w.detect_overflow_sources = st.overflow_sources;
        w.detect_overflow_pairs = st.overflow_pairs;
        w.detect_overflow_destinations = st.overflow_destinations;
    }
}

nlohmann::json detection_status(Detection& d, const std::vector<std::unique_ptr<Worker>>& workers) {
    nlohmann::json j;
    std::lock_guard<std::mutex> lock(d.mu);
    const auto& st = d.detector->stats();
    nlohmann::json active = nlohmann::json::object(), total = nlohmann::json::object();
    for (unsigned k = 0; k < detect::kKinds; ++k) {
        active[detect::kind_name(static_cast<detect::Kind>(k))] = st.active[k];
        total[detect::kind_name(static_cast<detect::Kind>(k))] = st.events[k];
    }
    j["active"] = active;
    j["events"] = total;
    j["intervals_decided"] = st.intervals_decided;
    j["intervals_forced"] = st.intervals_forced;
    j["events_out"] = d.out_url;
    uint64_t ovf = 0, late = 0;
    for (const auto& w : workers)
        if (w->observer()) {
            const auto o = w->observer()->stats();
            ovf += o.overflow_sources + o.overflow_pairs + o.overflow_destinations;
            late += o.late;
        }
    j["table_overflows"] = ovf;
    j["late_intervals"] = late;
    j["recent"] = d.detector->events_json(10);
    return j;
}

nlohmann::json detection_events(Detection& d, size_t n) {
    std::lock_guard<std::mutex> lock(d.mu);
    return d.detector->events_json(n);
}

}  // namespace weir
