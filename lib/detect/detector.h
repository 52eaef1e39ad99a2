// SPDX-License-Identifier: BSD-3-Clause
// The control side of detection: takes each worker's published interval (observer.h), merges
// the workers' tables (a scanner's or a flood's packets reach every worker: RSS spreads them by
// 5-tuple), and once every worker has passed an interval of packet time, decides it:
//   - rates per interval: SYN floods (SYNs that do not complete) and floods by packet or bit rate
//     to one destination;
//   - counts over a window (60 s by default) per key, for scans slower than an interval: vertical
//     scans (one source, one destination, many ports), horizontal scans (one source, many
//     destinations: TCP SYN or UDP), ICMP echo and TCP ACK sweeps, reflection (unsolicited
//     responses from amplifier ports, or SYN-ACKs, converging on one destination) and DNS query
//     volume with long names (a tunnelling hint).
// A condition that holds makes an event (start); it stays one event while the condition keeps
// holding and ends once it has not for the hold-down (end). Control thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "detect/observer.h"

namespace weir::detect {

struct Key;  // keymap.h

struct Thresholds {
    double window_s = 60;            // scans, sweeps, reflection, DNS: counted over this long per key
    double hold_down_s = 30;         // an event ends when its condition has not held for this long
    uint32_t vertical_ports = 100;   // distinct ports of one destination probed by one source
    uint32_t horizontal_hosts = 64;  // distinct destinations one source probed (TCP SYN, UDP)
    uint32_t sweep_hosts = 64;       // ... with ICMP echo or TCP ACK
    double max_answered = 0.2;       // scans and sweeps: at most this share of probes answered
    double syn_rate = 100;           // SYNs per second to one destination ...
    double max_completed = 0.1;      // ... of which at most this share completed a handshake
    double flood_pps = 250000;       // packets per second to one destination (one protocol)
    double flood_bps = 2e9;          // bits per second to one destination (one protocol)
    uint32_t amp_responses = 1000;   // unsolicited responses to one destination in the window ...
    uint32_t amp_sources = 20;       // ... from at least this many reflectors
    uint32_t dns_queries = 500;      // DNS queries of one client in the window ...
    double dns_long_share = 0.5;     // ... of which at least this share long (ObserverConfig::dns_long)
    uint32_t max_keys = 1u << 20;    // windowed keys held; more are dropped, counted
    bool operator==(const Thresholds&) const = default;
};

enum class Kind : uint8_t {
    kVerticalScan,
    kHorizontalScan,
    kIcmpSweep,
    kAckSweep,
    kSynFlood,
    kFlood,
    kAmplification,
    kDnsTunnel,
    kOutOfPolicy,
};
constexpr unsigned kKinds = 9;
const char* kind_name(Kind k) noexcept;

struct Event {
    uint64_t id = 0;
    Kind kind{};
    bool active = true;
    uint64_t start_ns = 0;       // packet time of the first observation behind it
    uint64_t last_ns = 0;        // ... and of the latest
    uint64_t held_interval = 0;  // last interval the condition held in
    std::string attacker;        // an address, or "many"
    std::string victim;          // an address, or "many"
    uint8_t proto = 0;
    uint16_t port = 0;        // the one port (or ICMP type) it is about, 0 if several
    nlohmann::json counts;    // numbers, peak rates
    nlohmann::json evidence;  // sample ports, sample sources, amplifier ports
    nlohmann::json to_json(const char* phase) const;
};

// A conversation the zone policy does not allow (zones/zones.h finds them in the records).
struct PolicyViolation {
    uint8_t client[16], server[16];
    uint8_t version, proto;
    uint16_t port;         // the server's port, or the ICMP type
    std::string from, to;  // zone names
    uint64_t first_ns, last_ns, packets, bytes;
};

struct DetectorStats {
    uint64_t intervals_decided = 0;
    uint64_t intervals_forced = 0;  // decided before every worker had passed them (one was far behind)
    uint64_t banks_merged = 0;
    uint64_t keys_dropped = 0;     // windowed keys beyond max_keys
    uint64_t events[kKinds] = {};  // started, by kind
    uint64_t active[kKinds] = {};  // now
};

class Detector {
public:
    Detector(const Thresholds& t, std::vector<Observer*> observers);
    ~Detector();
    Detector(const Detector&) = delete;
    Detector& operator=(const Detector&) = delete;

    // Takes what the workers published and decides the intervals every worker has passed.
    // Events that start or end go to `out` (with their phase). Returns banks merged.
    unsigned poll(std::vector<nlohmann::json>& out);
    // A conversation outside the zone policy: one out_of_policy event per client, zones and
    // service while it goes on (the hold-down as for the others); a start goes to `out`.
    void violation(const PolicyViolation& v, std::vector<nlohmann::json>& out);
    // Every worker has finished: decides what is left and ends every event.
    void finish(std::vector<nlohmann::json>& out);

    void set_thresholds(const Thresholds& t) { th_ = t; }
    const Thresholds& thresholds() const { return th_; }
    const DetectorStats& stats() const { return stats_; }
    // Active events, then the most recent ended ones (newest first), at most `n` in all.
    nlohmann::json events_json(size_t n) const;

private:
    struct SrcAgg;
    struct PairAgg;
    struct DestAgg;
    struct Acc;
    struct Window;
    void merge(const Bank& b);
    void decide(uint64_t k, Acc& a, std::vector<nlohmann::json>& out);
    Event& hold(Kind kind, const std::string& key, uint64_t k, uint64_t first_ns, uint64_t last_ns,
                std::vector<nlohmann::json>& out, bool& started);
    void expire(uint64_t k, std::vector<nlohmann::json>& out);
    // The event of (kind, key) goes on, if there is one: its key is still active.
    bool refresh(Kind kind, const Key& key, uint64_t k, uint64_t last_ns);

    Thresholds th_;
    std::vector<Observer*> obs_;
    uint64_t interval_ns_;
    std::map<uint64_t, Acc> pending_;  // by interval
    std::unique_ptr<Acc> spare_;       // an interval's tables once it is decided, for the next
    uint64_t decided_ = 0;             // intervals before this one are decided
    std::unique_ptr<Window> win_;
    std::unordered_map<std::string, Event> active_;  // by kind and key
    std::deque<Event> ended_;                        // the latest, newest last
    uint64_t next_id_ = 1;
    DetectorStats stats_;
};

// Text form of an address as packet::Tuple holds it.
std::string addr_text(const uint8_t* a, uint8_t version);

}  // namespace weir::detect
