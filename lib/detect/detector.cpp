// SPDX-License-Identifier: BSD-3-Clause
#include "detect/detector.h"

#include <arpa/inet.h>

#include "detect/keymap.h"

#include <algorithm>
#include <cstring>
#include <ctime>

namespace weir::detect {

const char* kind_name(Kind k) noexcept {
    switch (k) {
        case Kind::kVerticalScan: return "vertical_scan";
        case Kind::kHorizontalScan: return "horizontal_scan";
        case Kind::kIcmpSweep: return "icmp_sweep";
        case Kind::kAckSweep: return "ack_sweep";
        case Kind::kSynFlood: return "syn_flood";
        case Kind::kFlood: return "flood";
        case Kind::kAmplification: return "amplification";
        case Kind::kDnsTunnel: return "dns_tunnel";
        case Kind::kOutOfPolicy: return "out_of_policy";
    }
    return "?";
}

std::string addr_text(const uint8_t* a, uint8_t version) {
    char buf[INET6_ADDRSTRLEN] = "?";
    inet_ntop(version == 6 ? AF_INET6 : AF_INET, a, buf, sizeof buf);
    return buf;
}

namespace {

const char* proto_text(uint8_t p) {
    switch (p) {
        case 1: return "icmp";
        case 6: return "tcp";
        case 17: return "udp";
        case 58: return "ipv6-icmp";
        default: return nullptr;
    }
}

std::string iso_time(uint64_t ns) {
    const time_t s = static_cast<time_t>(ns / 1'000'000'000ull);
    struct tm tm {};
    gmtime_r(&s, &tm);
    char buf[80];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<unsigned>(ns / 1'000'000ull % 1000));
    return buf;
}

// An address as keys hold it: its bytes (4 or 16), then its version.
void key_addr(Key& k, const uint8_t* a, uint8_t version) {
    k.append(a, version == 4 ? 4 : 16);
    k.push(version);
}

// The first 16 distinct ports, in the order seen.
struct Ports {
    uint16_t p[16];
    uint8_t n = 0;
    void add(uint16_t port) {
        if (n < 16 && std::find(p, p + n, port) == p + n) p[n++] = port;
    }
    nlohmann::json json() const { return nlohmann::json(std::vector<uint16_t>(p, p + n)); }
    bool empty() const { return n == 0; }
    uint16_t front() const { return p[0]; }
};

uint64_t est(const Hll& h) { return static_cast<uint64_t>(h.estimate() + 0.5); }

}  // namespace

nlohmann::json Event::to_json(const char* phase) const {
    nlohmann::json j = {{"phase", phase},
                        {"id", id},
                        {"kind", kind_name(kind)},
                        {"active", active},
                        {"start", iso_time(start_ns)},
                        {"end", iso_time(last_ns)},
                        {"start_ns", start_ns},
                        {"end_ns", last_ns},
                        {"attacker", attacker},
                        {"victim", victim}};
    if (proto) {
        const char* p = proto_text(proto);
        j["protocol"] = p ? nlohmann::json(p) : nlohmann::json(proto);
    }
    if (port) j["port"] = port;
    j["counts"] = counts;
    j["evidence"] = evidence;
    return j;
}

struct Detector::SrcAgg {
    uint8_t src[16] = {};
    uint8_t version = 0, kind = 0;
    uint64_t probes = 0, answered = 0, long_queries = 0, first = UINT64_MAX, last = 0;
    Hll dsts{}, dports{};
    Ports ports;
    void add(const SrcAgg& o) {
        std::memcpy(src, o.src, 16);
        version = o.version;
        kind = o.kind;
        probes += o.probes;
        answered += o.answered;
        long_queries += o.long_queries;
        if (o.probes) first = std::min(first, o.first), last = std::max(last, o.last);
        dsts.merge(o.dsts);
        dports.merge(o.dports);
        for (unsigned i = 0; i < o.ports.n; ++i) ports.add(o.ports.p[i]);
    }
    void add(const SourceEntry& e) {
        std::memcpy(src, e.src, 16);
        version = e.version;
        kind = e.kind;
        probes += e.probes;
        answered += e.answered;
        long_queries += e.long_queries;
        if (e.probes) first = std::min(first, e.first_ns), last = std::max(last, e.last_ns);
        dsts.merge(e.dsts);
        dports.merge(e.dports);
        for (uint16_t i = 0; i < e.nports; ++i) ports.add(e.ports[i]);
    }
};

struct Detector::PairAgg {
    uint8_t src[16] = {}, dst[16] = {};
    uint8_t version = 0, proto = 0;
    uint64_t probes = 0, answered = 0, first = UINT64_MAX, last = 0;
    Hll dports{};
    Ports ports;
    void add(const PairAgg& o) {
        std::memcpy(src, o.src, 16);
        std::memcpy(dst, o.dst, 16);
        version = o.version;
        if (o.probes) proto = o.proto;
        probes += o.probes;
        answered += o.answered;
        if (o.probes) first = std::min(first, o.first), last = std::max(last, o.last);
        dports.merge(o.dports);
        for (unsigned i = 0; i < o.ports.n; ++i) ports.add(o.ports.p[i]);
    }
    void add(const PairEntry& e) {
        std::memcpy(src, e.src, 16);
        std::memcpy(dst, e.dst, 16);
        version = e.version;
        if (e.probes) proto = e.proto;
        probes += e.probes;
        answered += e.answered;
        if (e.probes) first = std::min(first, e.first_ns), last = std::max(last, e.last_ns);
        dports.merge(e.dports);
        for (uint16_t i = 0; i < e.nports; ++i) ports.add(e.ports[i]);
    }
};

struct Detector::DestAgg {
    uint8_t dst[16] = {};
    uint8_t version = 0;
    uint64_t packets[kProtoClasses] = {}, bytes[kProtoClasses] = {};
    uint64_t syns = 0, completions = 0, amp_packets = 0, amp_bytes = 0, first = UINT64_MAX, last = 0;
    Hll sources{}, amplifiers{}, syn_ports{};
    uint8_t samples[4][16];  // the first distinct sources (of the destination's version)
    uint8_t nsamples = 0;
    bool more_sources = false;
    std::map<uint16_t, uint64_t> amp_ports;
    void sample(const uint8_t* a) {
        const unsigned n = version == 4 ? 4 : 16;
        for (unsigned i = 0; i < nsamples; ++i)
            if (std::memcmp(samples[i], a, n) == 0) return;
        if (nsamples < 4) {
            std::memset(samples[nsamples], 0, 16);
            std::memcpy(samples[nsamples++], a, n);
        } else {
            more_sources = true;
        }
    }
    nlohmann::json sample_texts() const {
        nlohmann::json a = nlohmann::json::array();
        for (unsigned i = 0; i < nsamples; ++i) a.push_back(addr_text(samples[i], version));
        return a;
    }
    void add(const DestAgg& o) {
        std::memcpy(dst, o.dst, 16);
        version = o.version;
        for (unsigned i = 0; i < kProtoClasses; ++i) packets[i] += o.packets[i], bytes[i] += o.bytes[i];
        syns += o.syns;
        completions += o.completions;
        amp_packets += o.amp_packets;
        amp_bytes += o.amp_bytes;
        first = std::min(first, o.first);
        last = std::max(last, o.last);
        sources.merge(o.sources);
        amplifiers.merge(o.amplifiers);
        syn_ports.merge(o.syn_ports);
        for (unsigned i = 0; i < o.nsamples; ++i) sample(o.samples[i]);
        more_sources = more_sources || o.more_sources;
        for (const auto& [p, n] : o.amp_ports) amp_ports[p] += n;
    }
    void add(const DestEntry& e) {
        std::memcpy(dst, e.dst, 16);
        version = e.version;
        for (unsigned i = 0; i < kProtoClasses; ++i) packets[i] += e.packets[i], bytes[i] += e.bytes[i];
        syns += e.syns;
        completions += e.completions;
        amp_packets += e.amp_packets;
        amp_bytes += e.amp_bytes;
        first = std::min(first, e.first_ns);
        last = std::max(last, e.last_ns);
        sources.merge(e.sources);
        amplifiers.merge(e.amplifiers);
        syn_ports.merge(e.syn_ports);
        for (unsigned i = 0; i < std::min<unsigned>(e.nsamples, 4); ++i) sample(e.samples[i]);
        more_sources = more_sources || e.nsamples > 4;
        for (unsigned i = 0; i < e.namp_ports; ++i) amp_ports[e.amp_ports[i]] += e.amp_port_packets[i];
    }
    // The sources when they are few and all known, else "many".
    std::string attackers() const {
        if (more_sources || nsamples == 0) return "many";
        std::string s;
        for (unsigned i = 0; i < nsamples; ++i) {
            if (i) s += ',';
            s += addr_text(samples[i], version);
        }
        return s;
    }
};

struct Detector::Acc {
    KeyMap<SrcAgg> src;
    KeyMap<PairAgg> pair;
    KeyMap<DestAgg> dst;
};

template <class A>
struct Windowed {
    A agg;
    uint64_t start = 0;  // interval the window began in
    uint64_t last = 0;   // interval of the latest activity
};

struct Detector::Window {
    KeyMap<Windowed<SrcAgg>> src;
    KeyMap<Windowed<PairAgg>> pair;
    KeyMap<Windowed<DestAgg>> amp;
    size_t size() const { return src.size() + pair.size() + amp.size(); }
};

Detector::Detector(const Thresholds& t, std::vector<Observer*> observers)
    : th_(t),
      obs_(std::move(observers)),
      interval_ns_(obs_.empty() ? 1'000'000'000ull : obs_[0]->config().interval_ns),
      win_(std::make_unique<Window>()) {}

Detector::~Detector() = default;

void Detector::merge(const Bank& b) {
    // A bank normally holds one interval; one the control side was late for holds more, counted
    // in its first (a rate then looks higher than it was, never lower).
    uint64_t k = b.first_interval;
    if (k < decided_) k = decided_;  // a worker far behind: the earliest open interval
    auto [slot, fresh] = pending_.try_emplace(k);
    Acc& a = slot->second;
    if (fresh && spare_) {  // the tables of an interval decided before, emptied: no new memory
        a = std::move(*spare_);
        spare_.reset();
    }
    b.sources.each([&](const SourceEntry& e) {
        Key key;
        key_addr(key, e.src, e.version);
        key.push(e.kind);
        a.src[key].add(e);
    });
    b.pairs.each([&](const PairEntry& e) {
        Key key;
        key_addr(key, e.src, e.version);
        key_addr(key, e.dst, e.version);
        a.pair[key].add(e);
    });
    b.dests.each([&](const DestEntry& e) {
        Key key;
        key_addr(key, e.dst, e.version);
        a.dst[key].add(e);
    });
    ++stats_.banks_merged;
}

unsigned Detector::poll(std::vector<nlohmann::json>& out) {
    unsigned n = 0;
    uint64_t through = UINT64_MAX;
    for (Observer* o : obs_) {
        // Read the watermark first: a bank published after it covers only later intervals.
        through = std::min(through, o->through());
        if (const Bank* b = o->take()) {
            merge(*b);
            o->give();
            ++n;
        }
    }
    // Decide every interval all workers have passed; a worker far behind (a replay whose packets
    // went mostly elsewhere) does not hold the others' intervals for long.
    while (!pending_.empty()) {
        auto it = pending_.begin();
        const bool complete = it->first < through;
        if (!complete && pending_.size() <= 16) break;
        if (!complete) ++stats_.intervals_forced;
        const uint64_t k = it->first;
        Acc a = std::move(it->second);
        pending_.erase(it);
        decide(k, a, out);
        decided_ = k + 1;
        a.src.clear();
        a.pair.clear();
        a.dst.clear();
        spare_ = std::make_unique<Acc>(std::move(a));
    }
    // Time moved on without observations (quiet workers still pass intervals): events end.
    if (through != UINT64_MAX && through > decided_) {
        decided_ = through;
        expire(decided_ - 1, out);
    }
    return n;
}

void Detector::finish(std::vector<nlohmann::json>& out) {
    poll(out);
    while (!pending_.empty()) {
        auto it = pending_.begin();
        Acc a = std::move(it->second);
        const uint64_t k = it->first;
        pending_.erase(it);
        decide(k, a, out);
    }
    for (auto& [key, e] : active_) {
        e.active = false;
        out.push_back(e.to_json("end"));
        ended_.push_back(e);
    }
    active_.clear();
    while (ended_.size() > 1000) ended_.pop_front();
    for (auto& n : stats_.active) n = 0;
}

Event& Detector::hold(Kind kind, const std::string& key, uint64_t k, uint64_t first_ns, uint64_t last_ns,
                      std::vector<nlohmann::json>& out, bool& started) {
    std::string full(1, static_cast<char>(kind));
    full += key;
    auto [it, fresh] = active_.try_emplace(full);
    Event& e = it->second;
    started = fresh;
    if (fresh) {
        e.id = next_id_++;
        e.kind = kind;
        e.start_ns = first_ns;
        e.counts = nlohmann::json::object();
        e.evidence = nlohmann::json::object();
        ++stats_.events[static_cast<unsigned>(kind)];
        ++stats_.active[static_cast<unsigned>(kind)];
    }
    e.start_ns = std::min(e.start_ns, first_ns);
    e.last_ns = std::max(e.last_ns, last_ns);
    e.held_interval = k;
    (void)out;
    return e;
}

void Detector::violation(const PolicyViolation& v, std::vector<nlohmann::json>& out) {
    // Records arrive when conversations end, after the intervals they fell in may have been
    // decided: the event is held from the later of the two.
    const uint64_t k = std::max<uint64_t>(v.last_ns / interval_ns_, decided_ ? decided_ - 1 : 0);
    // One event per client and zone pair, whatever services it tries: a scan across forbidden
    // ports is one event with sample services, not one per port.
    std::string key(reinterpret_cast<const char*>(v.client), 16);
    key += static_cast<char>(v.version);
    key += v.from;
    key += '\0';
    key += v.to;
    bool started;
    Event& e = hold(Kind::kOutOfPolicy, key, k, v.first_ns, v.last_ns, out, started);
    if (started) {
        e.attacker = addr_text(v.client, v.version);
        e.victim = addr_text(v.server, v.version);
        e.proto = v.proto;
        e.port = v.port;
        e.counts = {{"flows", 0}, {"packets", 0}, {"bytes", 0}};
        e.evidence = {{"from_zone", v.from},
                      {"to_zone", v.to},
                      {"sample_servers", nlohmann::json::array()},
                      {"sample_services", nlohmann::json::array()}};
    }
    // The service, as "udp/161" (ICMP: the type); `port` and `protocol` stay only while there is one.
    const char* pn = proto_text(v.proto);
    const std::string service = (pn ? std::string(pn) : std::to_string(v.proto)) + "/" + std::to_string(v.port);
    auto& services = e.evidence["sample_services"];
    if (services.size() < 8 && std::find(services.begin(), services.end(), service) == services.end())
        services.push_back(service);
    if (v.port != e.port) e.port = 0;
    if (v.proto != e.proto) e.proto = 0, e.port = 0;
    e.counts["flows"] = e.counts["flows"].get<uint64_t>() + 1;
    e.counts["packets"] = e.counts["packets"].get<uint64_t>() + v.packets;
    e.counts["bytes"] = e.counts["bytes"].get<uint64_t>() + v.bytes;
    const std::string server = addr_text(v.server, v.version);
    auto& sample = e.evidence["sample_servers"];
    if (sample.size() < 4 && std::find(sample.begin(), sample.end(), server) == sample.end()) sample.push_back(server);
    if (sample.size() > 1) e.victim = "many";
    if (started) out.push_back(e.to_json("start"));
}

bool Detector::refresh(Kind kind, const Key& key, uint64_t k, uint64_t last_ns) {
    if (!stats_.active[static_cast<unsigned>(kind)]) return false;  // the common case: no event of the kind
    std::string full(1, static_cast<char>(kind));
    full += key.str();
    auto it = active_.find(full);
    if (it == active_.end()) return false;
    it->second.held_interval = k;
    it->second.last_ns = std::max(it->second.last_ns, last_ns);
    return true;
}

void Detector::decide(uint64_t k, Acc& a, std::vector<nlohmann::json>& out) {
    ++stats_.intervals_decided;
    const double secs = static_cast<double>(interval_ns_) / 1e9;
    const auto win_intervals = static_cast<uint64_t>(th_.window_s / secs + 0.5);
    std::vector<Event*> started;
    auto mark = [&](Event& e, bool s) {
        if (s) started.push_back(&e);
    };
    auto peak = [](nlohmann::json& c, const char* name, double v) {
        if (!c.contains(name) || c[name].get<double>() < v) c[name] = v;
    };
    auto sum = [](nlohmann::json& c, const char* name, uint64_t v) {
        c[name] = (c.contains(name) ? c[name].get<uint64_t>() : 0) + v;
    };
    // The window's entry of a key, active in interval k: a new one (or one whose window ran out)
    // starts at k; nullptr when the window holds max_keys keys already (counted).
    auto windowed = [&](auto& map, const Key& key) {
        auto* w = map.find(key);
        if (!w) {
            if (win_->size() >= th_.max_keys) {
                ++stats_.keys_dropped;
                return w;
            }
            w = &map[key];
            w->start = k;
        } else if (k - w->start >= win_intervals) {
            w->agg = {};
            w->start = k;
        }
        w->last = k;
        return w;
    };

    // Rates to one destination, this interval.
    a.dst.each([&](const Key& key, DestAgg& d) {
        bool syn_flood = false;
        // One source's SYNs to many ports of the destination are a scan (below), not a flood.
        const bool scan_like = d.nsamples == 1 && !d.more_sources && est(d.syn_ports) >= th_.vertical_ports;
        if (d.syns >= th_.syn_rate * secs && static_cast<double>(d.completions) <= th_.max_completed * d.syns &&
            !scan_like) {
            syn_flood = true;
            bool s;
            Event& e = hold(Kind::kSynFlood, key.str(), k, d.first, d.last, out, s);
            e.victim = addr_text(d.dst, d.version);
            e.proto = 6;
            const std::string att = d.attackers();
            if (s)
                e.attacker = att;
            else if (e.attacker != att)
                e.attacker = "many";
            sum(e.counts, "syns", d.syns);
            sum(e.counts, "completed", d.completions);
            peak(e.counts, "peak_syns_per_s", d.syns / secs);
            peak(e.counts, "sources_estimate", static_cast<double>(est(d.sources)));
            e.evidence["sample_sources"] = d.sample_texts();
            mark(e, s);
        }
        for (unsigned p = 0; p < kProtoClasses; ++p) {
            if (p == kTcp && syn_flood) continue;
            const double pps = d.packets[p] / secs, bps = d.bytes[p] * 8.0 / secs;
            if (pps < th_.flood_pps && bps < th_.flood_bps) continue;
            static constexpr uint8_t kProtoNum[kProtoClasses] = {6, 17, 1, 0};
            bool s;
            Event& e = hold(Kind::kFlood, key.str() + static_cast<char>(p), k, d.first, d.last, out, s);
            e.victim = addr_text(d.dst, d.version);
            e.proto = kProtoNum[p] == 1 && d.version == 6 ? 58 : kProtoNum[p];
            e.attacker = d.attackers();
            sum(e.counts, "packets", d.packets[p]);
            sum(e.counts, "bytes", d.bytes[p]);
            peak(e.counts, "peak_pps", pps);
            peak(e.counts, "peak_bps", bps);
            peak(e.counts, "sources_estimate", static_cast<double>(est(d.sources)));
            e.evidence["sample_sources"] = d.sample_texts();
            mark(e, s);
        }
    });

    // Per source and probe kind, over the window.
    a.src.each([&](const Key& key, SrcAgg& s) {
        Windowed<SrcAgg>* win = windowed(win_->src, key);
        if (!win) return;
        SrcAgg& w = win->agg;
        w.add(s);
        if (!s.probes) return;  // only answers this interval
        const auto kind = static_cast<Probe>(w.kind);
        const std::string attacker = addr_text(w.src, w.version);
        const uint64_t hosts = est(w.dsts);
        const bool quiet = static_cast<double>(w.answered) <= th_.max_answered * static_cast<double>(w.probes);
        Kind ek;
        // A horizontal scan tries few ports on many hosts; a peer-to-peer client's probes to its
        // peers go to as many ports as hosts.
        const bool few_ports = est(w.dports) * 4 <= hosts;
        if ((kind == Probe::kTcpSyn || kind == Probe::kUdp) && hosts >= th_.horizontal_hosts && quiet && few_ports)
            ek = Kind::kHorizontalScan;
        else if (kind == Probe::kIcmpEcho && hosts >= th_.sweep_hosts)
            ek = Kind::kIcmpSweep;
        else if (kind == Probe::kTcpAck && hosts >= th_.sweep_hosts && quiet)
            ek = Kind::kAckSweep;
        else if (kind == Probe::kDns && w.probes >= th_.dns_queries &&
                 static_cast<double>(w.long_queries) >= th_.dns_long_share * static_cast<double>(w.probes))
            ek = Kind::kDnsTunnel;
        else {
            // A window that started again has not reached the threshold yet: an event going on
            // goes on while the source keeps probing.
            static constexpr Kind kOf[kProbeKinds] = {Kind::kHorizontalScan, Kind::kAckSweep,  Kind::kHorizontalScan,
                                                      Kind::kIcmpSweep,      Kind::kDnsTunnel, Kind::kHorizontalScan};
            refresh(kOf[w.kind < kProbeKinds ? w.kind : 0], key, k, w.last);
            return;
        }
        bool st;
        Event& e = hold(ek, key.str(), k, w.first, w.last, out, st);
        e.attacker = attacker;
        e.victim = ek == Kind::kDnsTunnel ? (w.ports.empty() ? "many" : "dns") : "many";
        e.proto = kind == Probe::kUdp || kind == Probe::kDns ? 17
            : kind == Probe::kIcmpEcho                       ? (w.version == 6 ? 58 : 1)
                                                             : 6;
        const uint64_t nports = est(w.dports);
        e.port = nports <= 1 && !w.ports.empty() && kind != Probe::kIcmpEcho ? w.ports.front() : 0;
        peak(e.counts, "probes", static_cast<double>(w.probes));
        peak(e.counts, "answered", static_cast<double>(w.answered));
        peak(e.counts, "hosts_estimate", static_cast<double>(hosts));
        peak(e.counts, "ports_estimate", static_cast<double>(nports));
        if (ek == Kind::kDnsTunnel) {
            e.victim = "many";
            e.port = 53;
            peak(e.counts, "long_queries", static_cast<double>(w.long_queries));
        }
        e.evidence["probe"] = probe_name(kind);
        e.evidence["sample_ports"] = w.ports.json();
        mark(e, st);
    });

    // Per (source, destination), over the window: vertical scans.
    a.pair.each([&](const Key& key, PairAgg& p) {
        Windowed<PairAgg>* win = windowed(win_->pair, key);
        if (!win) return;
        PairAgg& w = win->agg;
        w.add(p);
        if (!p.probes) return;
        const uint64_t ports = est(w.dports);
        if (ports < th_.vertical_ports ||
            static_cast<double>(w.answered) > th_.max_answered * static_cast<double>(w.probes)) {
            refresh(Kind::kVerticalScan, key, k, w.last);
            return;
        }
        bool st;
        Event& e = hold(Kind::kVerticalScan, key.str(), k, w.first, w.last, out, st);
        e.attacker = addr_text(w.src, w.version);
        e.victim = addr_text(w.dst, w.version);
        e.proto = w.proto;
        peak(e.counts, "probes", static_cast<double>(w.probes));
        peak(e.counts, "answered", static_cast<double>(w.answered));
        peak(e.counts, "ports_estimate", static_cast<double>(ports));
        e.evidence["sample_ports"] = w.ports.json();
        mark(e, st);
    });

    // Unsolicited responses converging on one destination, over the window.
    a.dst.each([&](const Key& key, DestAgg& d) {
        if (!d.amp_packets) return;
        Windowed<DestAgg>* win = windowed(win_->amp, key);
        if (!win) return;
        DestAgg& w = win->agg;
        w.add(d);
        const uint64_t reflectors = est(w.amplifiers);
        if (w.amp_packets < th_.amp_responses || reflectors < th_.amp_sources) {
            refresh(Kind::kAmplification, key, k, w.last);
            return;
        }
        bool st;
        Event& e = hold(Kind::kAmplification, key.str(), k, w.first, w.last, out, st);
        e.victim = addr_text(w.dst, w.version);
        e.attacker = "many";
        uint16_t top_port = 0;
        uint64_t top = 0;
        nlohmann::json ports = nlohmann::json::object();
        for (const auto& [port, n] : w.amp_ports) {
            ports[port ? std::to_string(port) : std::string("tcp-syn-ack")] = n;
            if (n > top) top = n, top_port = port;
        }
        e.proto = top_port ? 17 : 6;
        e.port = top_port;
        peak(e.counts, "responses", static_cast<double>(w.amp_packets));
        peak(e.counts, "bytes", static_cast<double>(w.amp_bytes));
        peak(e.counts, "reflectors_estimate", static_cast<double>(reflectors));
        e.evidence["amplifier_ports"] = ports;
        e.evidence["sample_sources"] = w.sample_texts();
        mark(e, st);
    });

    for (Event* e : started) out.push_back(e->to_json("start"));
    expire(k, out);
}

void Detector::expire(uint64_t k, std::vector<nlohmann::json>& out) {
    const double secs = static_cast<double>(interval_ns_) / 1e9;
    const auto hold_intervals = static_cast<uint64_t>(th_.hold_down_s / secs + 0.5);
    const auto win_intervals = static_cast<uint64_t>(th_.window_s / secs + 0.5);
    for (auto it = active_.begin(); it != active_.end();) {
        if (k >= it->second.held_interval + hold_intervals + 1) {
            Event& e = it->second;
            e.active = false;
            out.push_back(e.to_json("end"));
            --stats_.active[static_cast<unsigned>(e.kind)];
            ended_.push_back(std::move(e));
            if (ended_.size() > 1000) ended_.pop_front();
            it = active_.erase(it);
        } else {
            ++it;
        }
    }
    auto prune = [&](auto& map) {
        map.erase_if([&](const Key&, const auto& w) { return k >= w.last + win_intervals; });
    };
    prune(win_->src);
    prune(win_->pair);
    prune(win_->amp);
}

nlohmann::json Detector::events_json(size_t n) const {
    nlohmann::json a = nlohmann::json::array();
    std::vector<const Event*> act;
    for (const auto& [k, e] : active_) act.push_back(&e);
    std::sort(act.begin(), act.end(), [](const Event* x, const Event* y) { return x->id < y->id; });
    for (const Event* e : act) {
        if (a.size() >= n) return a;
        a.push_back(e->to_json("active"));
    }
    for (auto it = ended_.rbegin(); it != ended_.rend() && a.size() < n; ++it) a.push_back(it->to_json("end"));
    return a;
}

}  // namespace weir::detect
