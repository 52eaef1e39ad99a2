// SPDX-License-Identifier: BSD-3-Clause
// The worker's half of detection: what each packet tells about scans, sweeps, floods and
// reflection, kept in bounded tables for one interval of packet time (1 s by default), then
// published to the control side, which merges every worker's tables and decides (detector.h).
//
// Two banks per worker: the worker writes one while the control thread reads the other. At the
// end of an interval the worker publishes its bank and takes the other, if the control side has
// given it back; otherwise it keeps writing the one it has (the interval grows, counted). No
// locks, no allocation after start, one atomic store per interval.
//
// Per packet: a hash of the destination and two count-min counters (and two more for a SYN; 32 KB
// in all, stays in cache). Only a destination that stands out gets an entry: at least
// `promote_packets` packets (or SYNs) in the interval and 1/256 of the worker's packets (or
// 1/1024 of its SYNs), so a link's ordinary spread of destinations promotes few however fast it
// runs: at most 256 by packets. A flood must therefore be 1/256 of the link's packet rate to be
// measured (at 40 Mpps: 156 kpps, under the default flood threshold). The entry has packets and
// bytes by protocol, SYNs and completed handshakes, distinct sources and unsolicited responses
// from amplifier ports (the reflector spoke first). SYNs, completions, new flows and responses
// count one by one; a tracked destination's ordinary packets are sampled one in eight and
// counted eight times.
//
// Per new flow: its source's entry by probe kind (distinct destinations and ports) and its
// (source, destination) entry (distinct ports). Per first answer of a flow: the same two
// entries, if the probe fell in this interval, learn that it was answered. A table group that is
// full drops the observation, counted.
#pragma once

#include <atomic>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "detect/hll.h"
#include "packet/decode.h"

namespace weir::detect {

// What a new flow's first packet probes for.
enum class Probe : uint8_t {
    kTcpSyn = 0,    // TCP SYN without ACK: a connect/SYN scan or a SYN ping
    kTcpAck = 1,    // TCP without SYN opening a flow: an ACK ping / ACK scan (or a flow seen mid-way)
    kUdp = 2,       // UDP
    kIcmpEcho = 3,  // ICMP/ICMPv6 echo request
    kDns = 4,       // a UDP DNS query (port 53): counted for the DNS volume detector too
    kOther = 5,
};
constexpr unsigned kProbeKinds = 6;
const char* probe_name(Probe p) noexcept;

struct ObserverConfig {
    uint64_t interval_ns = 1'000'000'000ull;
    uint32_t sources = 16384;       // (source, probe kind) entries per interval
    uint32_t pairs = 16384;         // (source, destination) entries per interval
    uint32_t destinations = 4096;   // destinations tracked exactly per interval
    uint32_t promote_packets = 64;  // a destination's packets in an interval before it is tracked
    uint32_t dns_long = 128;        // a DNS query of at least this IP length counts as long
    std::bitset<65536> amplifiers;  // UDP source ports of reflectors (53, 123, 161, 1900, ...)
    bool wait = false;              // a replay: wait for the control side at an interval end instead of merging
};

// The packets of a destination by protocol.
enum ProtoClass : uint8_t { kTcp = 0, kUdpClass = 1, kIcmp = 2, kOtherProto = 3 };
constexpr unsigned kProtoClasses = 4;

struct SourceEntry {  // key: (src, version, kind)
    uint8_t src[16];
    uint8_t version;
    uint8_t kind;     // Probe
    uint16_t nports;  // ports sampled
    uint32_t probes;
    uint32_t answered;
    uint32_t long_queries;  // kDns: queries of at least dns_long bytes
    uint64_t first_ns, last_ns;
    uint16_t ports[4];  // first distinct destination ports seen
    uint8_t pad[4];
    Hll dsts;
    Hll dports;
};
static_assert(sizeof(SourceEntry) == 192);

struct PairEntry {  // key: (src, dst, version)
    uint8_t src[16];
    uint8_t dst[16];
    uint8_t version;
    uint8_t proto;  // of the first probe
    uint16_t nports;
    uint32_t probes;
    uint32_t answered;
    uint16_t ports[2];  // first distinct destination ports seen
    uint64_t first_ns, last_ns;
    Hll dports;  // distinct (protocol, port)
};
static_assert(sizeof(PairEntry) == 128);

struct DestEntry {  // key: (dst, version). What every packet touches is in the first two lines.
    uint8_t dst[16];
    uint8_t version;
    uint8_t nsamples;  // distinct sources in `samples` (5: more than four seen)
    uint8_t namp_ports;
    uint8_t pad0;
    uint32_t syns;         // TCP SYN without ACK
    uint32_t completions;  // handshakes completed (the initiator's ACK after a SYN-ACK)
    uint32_t amp_packets;  // unsolicited responses: a new flow from an amplifier port (UDP) or a SYN-ACK
    uint64_t first_ns, last_ns;
    uint32_t packets[kProtoClasses];  // an interval at 150 Mpps for 16 s still fits
    uint64_t bytes[kProtoClasses];
    uint64_t amp_bytes;
    uint16_t amp_ports[4];  // first amplifier source ports seen (0: TCP SYN-ACK)
    uint32_t amp_port_packets[4];
    uint8_t samples[4][16];  // first distinct sources
    Hll sources;
    Hll amplifiers;
    Hll syn_ports;  // destination ports of the SYNs
};
static_assert(sizeof(DestEntry) == 384);
static_assert(offsetof(DestEntry, bytes) == 64);

// An open-addressing table in groups of eight slots: a 16-bit tag per slot, searched a group at a
// time (16 bytes), then the entry. Fixed capacity; a full group drops the new key.
template <class E>
class GroupTable {
public:
    explicit GroupTable(uint32_t capacity);
    void clear() noexcept;
    // The entry of `hash` that `same` accepts, a new zeroed one (`created` set), or nullptr when
    // its group is full.
    template <class Same>
    E* find_or_add(uint64_t hash, Same&& same, bool& created) noexcept;
    template <class Same>
    E* find(uint64_t hash, Same&& same) noexcept;
    template <class Fn>
    void each(Fn&& fn) const {
        for (uint32_t i = 0; i < capacity_; ++i)
            if (tags_[i]) fn(entries_[i]);
    }
    uint32_t size() const noexcept { return size_; }
    uint32_t capacity() const noexcept { return capacity_; }
    size_t memory_bytes() const noexcept { return capacity_ * (sizeof(E) + sizeof(uint16_t)); }

private:
    uint32_t capacity_, mask_;
    uint32_t size_ = 0;
    std::unique_ptr<uint16_t[]> tags_;
    std::unique_ptr<E[]> entries_;
};

// One interval (or more, when the control side was late) of one worker's observations.
struct Bank {
    explicit Bank(const ObserverConfig& c);
    void reset(uint64_t interval) noexcept;
    uint64_t first_interval = 0;  // interval index (packet time / interval) of its first observation
    uint64_t last_interval = 0;   // ... and of the end it was published at (exclusive)
    bool used = false;
    uint64_t overflow_sources = 0, overflow_pairs = 0, overflow_destinations = 0;
    GroupTable<SourceEntry> sources;
    GroupTable<PairEntry> pairs;
    GroupTable<DestEntry> dests;
    // Count-min sketches by destination, two rows each: every packet, and TCP SYNs.
    static constexpr uint32_t kCmsWidth = 4096;
    static constexpr uint32_t kPacketShare = 16;  // promoted at kPacketShare / kCmsWidth of the packets
    static constexpr uint32_t kSynShare = 4;      // ... and of the SYNs
    std::unique_ptr<uint16_t[]> cms;              // [0, 2w): packets; [2w, 4w): SYNs (saturating at 65535)
    uint64_t packets = 0, syns = 0;               // counted into the sketches
};

struct ObserverStats {
    uint64_t intervals = 0;  // banks published
    uint64_t late = 0;       // interval ends when the control side still held the other bank
    uint64_t overflow_sources = 0, overflow_pairs = 0, overflow_destinations = 0;
};

// What a packet is to its flow, as the worker's flow table says.
struct Seen {
    bool initiator;     // from the side that sent the flow's first packet
    bool new_flow;      // the flow's first packet
    bool first_answer;  // the responder's first packet
    bool completion;    // the initiator's ACK that completes a TCP handshake
};

class Observer {
public:
    explicit Observer(const ObserverConfig& c);
    Observer(const Observer&) = delete;
    Observer& operator=(const Observer&) = delete;

    // Worker: one decoded packet (the layer its flow is keyed on). Constant work, no allocation.
    void packet(const packet::Layer& l, const Seen& s, uint64_t ts_ns) noexcept { packet(l, s, ts_ns, dest_hash(l)); }
    // The same with the destination's hash (dest_hash()) known, after prefetch() of it: a worker
    // hashes a burst's destinations first, so the sketches' lines arrive while it works.
    void packet(const packet::Layer& l, const Seen& s, uint64_t ts_ns, uint64_t dest_hash) noexcept;
    static uint64_t dest_hash(const packet::Layer& l) noexcept { return addr_hash(l.tuple.dst, l.tuple.ip_version); }
    void prefetch(uint64_t dest_hash) const noexcept {
        const uint16_t* c = banks_[cur_].cms.get();
        __builtin_prefetch(c + (dest_hash & (Bank::kCmsWidth - 1)), 1);
        __builtin_prefetch(c + Bank::kCmsWidth + ((dest_hash >> 32) & (Bank::kCmsWidth - 1)), 1);
    }
    // Worker: the interval of packet time `now_ns` ended? Publishes the bank (between bursts).
    void roll(uint64_t now_ns) noexcept;
    // Worker, at its end: publishes what it has and marks itself finished. Waits for the control
    // side to take the previous bank (the final flush waits instead of losing).
    void finish() noexcept;

    // Control side: the bank published and not yet taken, or nullptr; give() hands it back.
    const Bank* take() const noexcept;
    void give() noexcept;
    // Control side: every interval before this one is complete here (UINT64_MAX once finished).
    uint64_t through() const noexcept { return through_.load(std::memory_order_acquire); }
    // Control side: counters (read without synchronisation: monotonic 64-bit, may lag).
    ObserverStats stats() const noexcept;
    const ObserverConfig& config() const noexcept { return cfg_; }
    size_t memory_bytes() const noexcept;

private:
    static constexpr uint32_t kOrdinarySample = 8;
    void touch_dest(Bank& b, const packet::Layer& l, uint64_t h, uint64_t ts, const Seen& s, bool amp,
                    uint16_t amp_port, uint32_t weight) noexcept;
    void probe(Bank& b, const packet::Layer& l, Probe kind, uint64_t ts, uint64_t hs, uint64_t hd) noexcept;
    void answer(Bank& b, const packet::Layer& l) noexcept;
    void overflowed(uint64_t& in_bank, std::atomic<uint64_t>& total) noexcept {
        ++in_bank;
        total.store(total.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    bool publish() noexcept;

    ObserverConfig cfg_;
    Bank banks_[2];
    unsigned cur_ = 0;
    uint64_t end_ns_ = 0;  // of the current interval; 0: nothing seen yet
    unsigned published_bank_ = 0;
    std::atomic<uint64_t> published_{0};
    std::atomic<uint64_t> taken_{0};
    std::atomic<uint64_t> through_{0};
    // Worker-written counters.
    std::atomic<uint64_t> intervals_{0}, late_{0}, ovf_src_{0}, ovf_pair_{0}, ovf_dst_{0};
};

}  // namespace weir::detect
