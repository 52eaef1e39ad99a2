// SPDX-License-Identifier: BSD-3-Clause
// One worker's shard of the flow table: insert/update per packet, expiry by timer wheel,
// eviction when full. Owned and touched by a single worker; the control thread only reads
// the counters in stats(). Capacity is fixed at construction, nothing is allocated after.
//
// Layout: entries[] (one per conversation, both directions, 128 B: a 48-byte key and the
// counters of both directions), a bucket index of
// 8-way buckets (one cache line: 8 signatures + 8 entry indexes), two candidate buckets per
// key, and a timer wheel of intrusive lists. Expiry is lazy: an entry sits in the wheel slot
// of the earliest time it could expire; when that slot comes due its real deadline is checked
// and it is expired or moved on. A packet never touches the wheel (except on TCP FIN/RST).
#pragma once

#include <emmintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/counter.h"
#include "flow/flow_key.h"
#include "packet/decode.h"

namespace weir::flow {

// IPFIX flowEndReason values (RFC 7012 / IANA IE 136).
enum class EndReason : uint8_t {
    kIdle = 1,
    kActive = 2,
    kEndOfFlow = 3,        // TCP FIN in both directions, or RST
    kForced = 4,           // shutdown or end of a replayed capture
    kLackOfResources = 5,  // evicted to make room
};
constexpr size_t kEndReasonSlots = 6;
const char* end_reason_name(EndReason r) noexcept;

// One direction of a conversation, as records carry it.
struct DirStats {
    uint64_t packets;
    uint64_t octets;
    uint64_t first_ns;
    uint64_t last_ns;
    uint8_t tcp_flags;
    uint8_t ttl_min;
    uint8_t ttl_max;
    uint8_t tos;
    // The TCP handshake's round trip on this direction's side of the probe, in microseconds:
    // SYN to SYN-ACK for the responder's direction (the server's side), SYN-ACK to ACK for the
    // initiator's (the client's side). Valid only with FlowRecord::kRttServer / kRttClient.
    uint32_t rtt_us;
};
static_assert(sizeof(DirStats) == 40);

// The same in a table entry, split so that an entry with a 48-byte key stays two cache lines.
struct DirCounters {
    uint64_t packets;
    uint64_t octets;
    uint64_t first_ns;
    uint64_t last_ns;
};
struct DirAttrs {
    uint8_t tcp_flags;
    uint8_t ttl_min;
    uint8_t ttl_max;
    uint8_t tos;
};

// One conversation. Direction 0 is the initiator's (the first packet seen), direction 1 the
// responder's, which may have no packets.
struct alignas(64) FlowEntry {
    FlowKey key;  // canonical
    DirCounters c[2];
    DirAttrs a[2];
    uint32_t where;             // bucket * 8 + way
    uint16_t in_port;           // DPDK port of the first packet
    uint8_t init_reversed : 1;  // the initiator runs key.dst -> key.src
    // The table times handshakes (TableConfig::rtt), this flow began with a SYN and its
    // handshake is not over: only then does a packet look at the handshake kept beside it.
    uint8_t handshake_open : 1;
    uint8_t unused : 6;
    uint8_t state;  // TCP end-of-flow bits, tunnel orientation (FlowTable::kTunnelSrcHi)

    // The directional tuple of direction d, and its counters as a record carries them.
    packet::Tuple tuple(int d) const noexcept;
    DirStats dir(int d) const noexcept {
        return DirStats{c[d].packets, c[d].octets,    c[d].first_ns,
                        c[d].last_ns, a[d].tcp_flags, a[d].ttl_min,
                        a[d].ttl_max, a[d].tos,       0};
    }
    uint64_t packets() const noexcept { return c[0].packets + c[1].packets; }
};
static_assert(sizeof(FlowEntry) == 128);

struct TableConfig {
    uint32_t capacity = 1u << 20;
    uint64_t idle_ns = 15'000'000'000ull;
    uint64_t active_ns = 60'000'000'000ull;
    uint64_t tcp_end_ns = 1'000'000'000ull;  // grace after FIN both ways or RST
    // Allocate only; the owning worker calls initialize() on its own lcore, so the pages land
    // on that worker's NUMA node.
    bool defer_init = false;
    // Touch every page at initialization, so that no page fault waits for a packet on a live
    // link. A replay leaves pages to be taken as flows come: a small capture starts at once.
    bool prefault = true;
    bool macs = false;   // keep the MAC addresses of each flow's first packet (16 B per entry more,
    bool mpls = false;   // shared with its top MPLS label)
    bool rtt = false;    // time the TCP handshake (SYN, SYN-ACK, ACK): 16 B per entry more
    bool sizes = false;  // a packet-size histogram per direction: 64 B per entry more, and a
                         // third cache line touched per packet
};

// The TCP handshake as seen at the probe: when the SYN-ACK and the client's ACK passed (0: not
// yet; synack_ns kNoHandshake: the flow did not begin with a SYN).
struct Handshake {
    uint64_t synack_ns;
    uint64_t ack_ns;
    static constexpr uint64_t kNoHandshake = UINT64_MAX;
};

// Packet-size histogram bins, by IP length (as octetDeltaCount counts it): up to 64, 128, 256,
// 512, 1024, 1500 and 9000 bytes, and above 9000.
constexpr uint32_t kSizeBins = 8;
constexpr uint32_t kSizeBinTop[kSizeBins - 1] = {64, 128, 256, 512, 1024, 1500, 9000};
inline uint32_t size_bin(uint32_t len) noexcept {
    if (len <= 64) return 0;
    if (len <= 1024) return static_cast<uint32_t>(32 - __builtin_clz(len - 1)) - 6;
    return len <= 1500 ? 5 : len <= 9000 ? 6 : 7;
}

// What a table keeps beside an entry, when its configuration asks for it (else nullptr).
struct EntrySide {
    const uint8_t* l2 = nullptr;  // destination MAC, source MAC, top MPLS entry (PacketInfo::macs)
    const Handshake* handshake = nullptr;
    const uint32_t* sizes = nullptr;  // [2][kSizeBins]: initiator's packets, then responder's
};

struct TableStats {
    Counter created;
    Counter expired[kEndReasonSlots];  // by EndReason
    Counter evicted_table_full;        // no free entry: the oldest went
    Counter evicted_bucket_full;       // both candidate buckets full (rare below 50% load)
    Counter active;                    // entries in use (a gauge)
};

class FlowTable {
public:
    explicit FlowTable(const TableConfig& cfg);  // throws std::bad_alloc / std::invalid_argument
    ~FlowTable();
    FlowTable(const FlowTable&) = delete;
    FlowTable& operator=(const FlowTable&) = delete;

    // A burst goes through four passes so memory latency overlaps across packets:
    // prepare (canonical key, hash), fetch (prefetch both candidate buckets), locate (signature
    // match in the buckets, prefetch the candidate entry), update (verify the key and account).
    struct Prepared {
        FlowKey key;
        uint64_t hash;
        uint32_t hint;       // entry whose signature matched in locate(), or kNone
        bool reversed;       // the packet runs key.dst -> key.src
        bool tunnel_src_hi;  // the packet's tunnel source is its TunnelKey's `hi` end
    };
    static_assert(sizeof(Prepared) <= 64);
    static constexpr uint32_t kNone = UINT32_MAX;
    // The key of layer `p` with the given tunnel reference and view.
    void prepare(const packet::Layer& p, uint32_t tunnel, uint8_t view, Prepared& out) const noexcept;
    void prepare(const packet::Layer& p, Prepared& out) const noexcept { prepare(p, 0, kViewPrimary, out); }
    // fetch() runs for a whole burst in one tight loop, apart from decoding. Profiled, a worker
    // that decoded and prefetched each packet in turn spent its time at the prefetches (the
    // address translation of a table larger than the TLB reaches); back to back, the prefetches
    // of a burst overlap: 1.7x at 1M flows and 2.1x at 10M (perf/README.md).
    void fetch(const Prepared& pk) const noexcept {
        __builtin_prefetch(&buckets_[bucket1(pk.hash)]);
        __builtin_prefetch(&buckets_[bucket2(pk.hash)]);
    }
    void locate(Prepared& pk) const noexcept;

    // Last, account the packet (update() also works without locate()). Entries that must
    // go first (timed out on arrival, evicted for room) are handed to sink.on_expired(entry,
    // reason) before they are reused; a new entry is shown to sink.on_created(entry). `macs`
    // (16 bytes as PacketInfo::macs: MAC addresses and top MPLS entry, or nullptr) is kept for a
    // new entry when the table keeps MAC addresses or MPLS labels.
    // Returns what it accounted the packet to: entry index << 2 | 2 if the entry is new | the
    // packet's direction in it (1: the responder's). Capacity is below 2^30.
    template <class Sink>
    uint32_t update(const Prepared& pk, const packet::Layer& p, uint64_t ts_ns, uint16_t port, Sink& sink,
                    const uint8_t* macs = nullptr) noexcept;
    FlowEntry& entry(uint32_t i) noexcept { return entries_[i]; }
    uint32_t index_of(const FlowEntry& e) const noexcept { return static_cast<uint32_t>(&e - entries_); }

    // Expires entries whose deadline is at or before now_ns; at most `budget` entries are
    // examined per call, so a worker's loop iteration stays bounded.
    template <class Sink>
    void expire(uint64_t now_ns, uint32_t budget, Sink& sink) noexcept;

    // Expires every entry (reason kForced): shutdown and end of replay.
    template <class Sink>
    void flush(Sink& sink) noexcept;

    // Zeroes and links the table (done by the constructor unless TableConfig::defer_init).
    void initialize() noexcept;
    bool initialized() const noexcept { return initialized_; }

    // The MAC addresses and top MPLS entry kept for an entry (TableConfig::macs, mpls), of its
    // first packet, as PacketInfo::macs; nullptr when not kept.
    const uint8_t* macs(const FlowEntry& e) const noexcept {
        return macs_ ? macs_ + 16 * static_cast<size_t>(&e - entries_) : nullptr;
    }
    // Everything kept beside an entry.
    EntrySide side(const FlowEntry& e) const noexcept {
        const size_t i = static_cast<size_t>(&e - entries_);
        return {macs(e), handshake_ ? handshake_ + i : nullptr, sizes_ ? sizes_ + 2 * kSizeBins * i : nullptr};
    }

    uint32_t capacity() const noexcept { return capacity_; }
    uint32_t size() const noexcept { return fresh_ - free_top_; }
    size_t memory_bytes() const noexcept { return bytes_; }
    const TableStats& stats() const noexcept { return stats_; }

    // Visits the entries in use among indexes [from, from + count): a bounded slice of the table,
    // so the owning worker can walk it a piece per loop iteration. Returns the next index.
    template <class Fn>
    uint32_t scan(uint32_t from, uint32_t count, Fn&& fn) const {
        // Entries past fresh_ were never used: the walk ends there (capacity() as "done").
        const uint32_t end = count > capacity_ - from ? capacity_ : from + count;
        const uint32_t stop = end < fresh_ ? end : fresh_;
        for (uint32_t i = from; i < stop; ++i)
            if (entries_[i].where != kFreeEntry) fn(entries_[i]);
        return end > fresh_ ? capacity_ : end;
    }

    // New timeouts, applied by the owning worker. Flows already in the wheel are rechecked
    // against them when their slot comes due and on their next packet.
    void set_timeouts(uint64_t idle_ns, uint64_t active_ns, uint64_t tcp_end_ns) noexcept {
        cfg_.idle_ns = idle_ns;
        cfg_.active_ns = active_ns;
        cfg_.tcp_end_ns = tcp_end_ns;
    }
    const TableConfig& config() const noexcept { return cfg_; }

    // Visits every entry in use (tests and status; not for the data plane).
    template <class Fn>
    void for_each(Fn&& fn) const {
        for (uint32_t s = 0; s < kSlots; ++s)
            for (uint32_t i = links_[capacity_ + s].next; i != capacity_ + s; i = links_[i].next) fn(entries_[i]);
    }

    static constexpr uint32_t kWays = 8;
    static constexpr uint32_t kSlots = 4096;    // timer wheel slots
    static constexpr unsigned kTickShift = 26;  // 67.1 ms per slot, 275 s per turn

private:
    static constexpr uint32_t kFreeEntry = UINT32_MAX;  // FlowEntry::where of an unused entry
    struct alignas(64) Bucket {
        uint32_t sig[kWays];
        uint32_t idx[kWays];
    };
    struct Link {
        uint32_t prev, next;
    };
    enum : uint8_t { kFinInit = 1, kFinResp = 2, kClosing = 4 };

public:
    static constexpr uint8_t kTunnelSrcHi = 8;      // FlowEntry::state: the initiator's tunnel source is `hi`
    static constexpr uint8_t kTunnelSrcHiRev = 16;  // ... the responder's (mirrors send both ways alike)
    // Left to the table's user (payload inspection): the entry has a label to collect when it
    // ends, and its payload is still being looked at. Cleared when an entry is reused.
    static constexpr uint8_t kLabeled = 32;
    static constexpr uint8_t kInspecting = 64;
    static constexpr uint8_t kCapturing = 128;  // its packets go to the capture files

private:
    static uint32_t sig_of(uint64_t h) noexcept { return static_cast<uint32_t>(h >> 16) | 1u; }
    // Bit w set where bucket way w holds signature `sig` (SSE2: two 4-lane compares).
    static uint32_t match_mask(const Bucket& b, uint32_t sig) noexcept {
        const __m128i s = _mm_set1_epi32(static_cast<int>(sig));
        const __m128i lo = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(b.sig)), s);
        const __m128i hi = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(b.sig + 4)), s);
        return static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(lo)) |
                                     (_mm_movemask_ps(_mm_castsi128_ps(hi)) << 4));
    }
    uint32_t find(uint32_t bucket, uint32_t sig, const FlowKey& key) const noexcept {
        for (uint32_t m = match_mask(buckets_[bucket], sig); m; m &= m - 1) {
            const uint32_t i = buckets_[bucket].idx[__builtin_ctz(m)];
            if (key_equal(entries_[i].key, key)) return i;
        }
        return kNone;
    }
    uint32_t bucket1(uint64_t h) const noexcept { return static_cast<uint32_t>(h) & bucket_mask_; }
    uint32_t bucket2(uint64_t h) const noexcept {
        return bucket1(h) ^ ((static_cast<uint32_t>(h >> 48) | 1u) & bucket_mask_);
    }

    uint64_t deadline(const FlowEntry& e, EndReason& why) const noexcept;
    void schedule(uint32_t i, uint64_t when_ns) noexcept;
    void unlink(uint32_t i) noexcept {
        const Link l = links_[i];
        links_[l.prev].next = l.next;
        links_[l.next].prev = l.prev;
    }
    template <class Sink>
    void remove(uint32_t i, EndReason why, Sink& sink) noexcept;
    template <class Sink>
    bool evict_oldest(Sink& sink) noexcept;
    static void account(DirCounters& d, DirAttrs& a, const packet::Layer& p, uint64_t ts) noexcept;
    // The handshake kept beside an open one, for a packet of direction `dir` (counters not yet
    // updated). It is closed at the client's ACK; early when it cannot be timed (the server
    // answers without a SYN-ACK, or the client goes on without one seen: one side of an
    // asymmetric path), at a RST, and after 8 packets either way (retransmits), so a flow's
    // packets look at it a few times at most.
    void account_handshake(uint32_t i, FlowEntry& e, int dir, const packet::Layer& p, uint64_t ts) noexcept {
        Handshake& h = handshake_[i];
        const uint8_t f = p.tcp_flags;
        if (dir) {
            if ((f & 0x12) == 0x12) {
                if (!h.synack_ns) h.synack_ns = ts;
            } else if (!h.synack_ns) {
                e.handshake_open = 0;
            }
        } else if ((f & 0x16) == 0x10 && h.synack_ns) {
            h.ack_ns = ts;
            e.handshake_open = 0;
        } else if (!(f & 0x02) && !h.synack_ns) {
            e.handshake_open = 0;
        }
        if ((f & 0x04) || e.c[dir].packets >= 7) e.handshake_open = 0;
    }

    TableConfig cfg_;
    uint32_t capacity_;
    uint32_t bucket_mask_;
    Bucket* buckets_ = nullptr;
    FlowEntry* entries_ = nullptr;
    Link* links_ = nullptr;           // capacity_ entries, then kSlots sentinels
    uint32_t* free_ = nullptr;        // stack of free entry indexes
    uint8_t* macs_ = nullptr;         // 16 bytes per entry (TableConfig::macs, mpls)
    Handshake* handshake_ = nullptr;  // TableConfig::rtt
    uint32_t* sizes_ = nullptr;       // 2 * kSizeBins per entry (TableConfig::sizes)
    uint32_t free_top_ = 0;           // free_[0 .. free_top_): entries used once and free again
    uint32_t fresh_ = 0;              // entries [fresh_, capacity_) were never used (nor touched)
    bool prefault_ = true;
    uint64_t cursor_ = 0;      // next wheel tick to process
    uint64_t evict_hint_ = 0;  // first tick that may hold entries, for evict_oldest
    bool started_ = false;
    bool initialized_ = false;
    void* mem_ = nullptr;
    size_t bytes_ = 0;
    TableStats stats_;
};

// ---- inline data-plane code ------------------------------------------------------------

inline void FlowTable::prepare(const packet::Layer& p, uint32_t tunnel, uint8_t view, Prepared& out) const noexcept {
    out.reversed = canonicalize(p.tuple, tunnel, p.cvlan, view, out.key);
    out.tunnel_src_hi = false;
    out.hash = key_hash(out.key);
    out.hint = kNone;
}

inline void FlowTable::locate(Prepared& pk) const noexcept {
    const uint32_t sig = sig_of(pk.hash);
    uint32_t m = match_mask(buckets_[bucket1(pk.hash)], sig);
    const Bucket* b = &buckets_[bucket1(pk.hash)];
    if (!m) {
        b = &buckets_[bucket2(pk.hash)];
        m = match_mask(*b, sig);
    }
    if (m) {
        pk.hint = b->idx[__builtin_ctz(m)];
        const char* e = reinterpret_cast<const char*>(&entries_[pk.hint]);
        __builtin_prefetch(e, 1);
        __builtin_prefetch(e + 64, 1);
        // The size bins (one line per entry) are written for every packet: fetched with the entry.
        if (sizes_) __builtin_prefetch(sizes_ + 2 * kSizeBins * static_cast<size_t>(pk.hint), 1);
    }
}

inline void FlowTable::account(DirCounters& d, DirAttrs& a, const packet::Layer& p, uint64_t ts) noexcept {
    if (d.packets == 0) {
        d.first_ns = d.last_ns = ts;
        a.ttl_min = a.ttl_max = p.ttl;
        a.tos = p.tos;
    } else {
        if (ts < d.first_ns) d.first_ns = ts;
        if (ts > d.last_ns) d.last_ns = ts;
        if (p.ttl < a.ttl_min) a.ttl_min = p.ttl;
        if (p.ttl > a.ttl_max) a.ttl_max = p.ttl;
    }
    d.packets += 1;
    d.octets += p.ip_octets;
    a.tcp_flags |= p.tcp_flags;
}

inline uint64_t FlowTable::deadline(const FlowEntry& e, EndReason& why) const noexcept {
    uint64_t first = e.c[0].first_ns, last = e.c[0].last_ns;
    if (e.c[1].packets) {
        if (e.c[1].first_ns < first) first = e.c[1].first_ns;
        if (e.c[1].last_ns > last) last = e.c[1].last_ns;
    }
    uint64_t d = last + cfg_.idle_ns;
    why = EndReason::kIdle;
    if (first + cfg_.active_ns < d) {
        d = first + cfg_.active_ns;
        why = EndReason::kActive;
    }
    if ((e.state & kClosing) && last + cfg_.tcp_end_ns <= d) {
        d = last + cfg_.tcp_end_ns;
        why = EndReason::kEndOfFlow;
    }
    return d;
}

inline void FlowTable::schedule(uint32_t i, uint64_t when_ns) noexcept {
    uint64_t tick = when_ns >> kTickShift;
    if (tick < cursor_) tick = cursor_;
    if (tick > cursor_ + kSlots - 1) tick = cursor_ + kSlots - 1;
    if (tick < evict_hint_) evict_hint_ = tick;
    const uint32_t s = capacity_ + static_cast<uint32_t>(tick & (kSlots - 1));
    const uint32_t tail = links_[s].prev;
    links_[i] = Link{tail, s};
    links_[tail].next = i;
    links_[s].prev = i;
}

template <class Sink>
inline void FlowTable::remove(uint32_t i, EndReason why, Sink& sink) noexcept {
    FlowEntry& e = entries_[i];
    sink.on_expired(e, why);
    buckets_[e.where / kWays].sig[e.where % kWays] = 0;
    e.where = kFreeEntry;
    unlink(i);
    free_[free_top_++] = i;
    stats_.expired[static_cast<uint8_t>(why)].add();
    stats_.active.sub();
}

template <class Sink>
inline bool FlowTable::evict_oldest(Sink& sink) noexcept {
    uint64_t t = evict_hint_ > cursor_ ? evict_hint_ : cursor_;
    for (uint32_t n = 0; n < kSlots; ++n, ++t) {
        const uint32_t s = capacity_ + static_cast<uint32_t>(t & (kSlots - 1));
        const uint32_t i = links_[s].next;
        if (i != s) {
            evict_hint_ = t;
            remove(i, EndReason::kLackOfResources, sink);
            // A full table evicts again on the next new flow: fetch the next victim's bucket
            // (its entry came in one eviction ago) and the entry and link of the one after.
            const uint32_t h1 = links_[s].next;
            if (h1 != s) {
                __builtin_prefetch(&buckets_[entries_[h1].where / kWays], 1);
                const uint32_t h2 = links_[h1].next;
                if (h2 < capacity_) {
                    __builtin_prefetch(&entries_[h2], 1);
                    __builtin_prefetch(reinterpret_cast<const char*>(&entries_[h2]) + 64, 1);
                    __builtin_prefetch(&links_[links_[h2].next], 1);
                }
            }
            return true;
        }
    }
    return false;
}

template <class Sink>
uint32_t FlowTable::update(const Prepared& pk, const packet::Layer& p, uint64_t ts, uint16_t port, Sink& sink,
                           const uint8_t* macs) noexcept {
    if (!started_) [[unlikely]] {
        cursor_ = evict_hint_ = ts >> kTickShift;
        started_ = true;
    }
    const uint32_t sig = sig_of(pk.hash);
    const uint32_t b[2] = {bucket1(pk.hash), bucket2(pk.hash)};
    // The hint is only a guess: an earlier packet of this burst may have evicted or inserted.
    uint32_t found = (pk.hint != kNone && key_equal(entries_[pk.hint].key, pk.key)) ? pk.hint : kNone;
    if (found == kNone) {
        found = find(b[0], sig, pk.key);
        if (found == kNone) found = find(b[1], sig, pk.key);
    }
    if (found != kNone) {
        FlowEntry& e = entries_[found];
        const int dir = pk.reversed ^ e.init_reversed;
        // Fast check that the flow is still live: this direction's last packet is recent, the
        // initiator's first is within the active timeout, and no TCP end is pending. Anything
        // else (out-of-order times, closing flows) takes the exact deadline().
        bool live = !(e.state & kClosing) && ts - e.c[dir].last_ns <= cfg_.idle_ns && e.c[dir].packets &&
            ts - e.c[0].first_ns < cfg_.active_ns && ts >= e.c[0].first_ns;
        EndReason why = EndReason::kIdle;
        if (!live) live = ts < deadline(e, why);
        if (live) [[likely]] {
            if (pk.tunnel_src_hi && dir && !e.c[1].packets) [[unlikely]]
                e.state |= kTunnelSrcHiRev;
            if (sizes_)
                ++sizes_[(2 * static_cast<size_t>(found) + static_cast<size_t>(dir)) * kSizeBins +
                         size_bin(p.ip_octets)];
            if (e.handshake_open) [[unlikely]]
                account_handshake(found, e, dir, p, ts);
            account(e.c[dir], e.a[dir], p, ts);
            if (p.tcp_flags & 0x05) [[unlikely]] {  // FIN or RST
                const uint8_t before = e.state;
                if (p.tcp_flags & 0x04) e.state |= kClosing;
                if (p.tcp_flags & 0x01) e.state |= dir ? kFinResp : kFinInit;
                if ((e.state & (kFinInit | kFinResp)) == (kFinInit | kFinResp)) e.state |= kClosing;
                if ((e.state & kClosing) && !(before & kClosing)) {
                    unlink(found);
                    schedule(found, ts + cfg_.tcp_end_ns);
                }
            }
            return found << 2 | static_cast<uint32_t>(dir);
        }
        remove(found, why, sink);  // timed out before this packet: the packet starts a new flow
    }

    // Miss: find a way in the less loaded candidate bucket, and a free entry.
    const uint32_t freeways[2] = {static_cast<uint32_t>(__builtin_popcount(match_mask(buckets_[b[0]], 0))),
                                  static_cast<uint32_t>(__builtin_popcount(match_mask(buckets_[b[1]], 0)))};
    uint32_t pick = freeways[1] > freeways[0] ? 1 : 0;
    if (freeways[pick] == 0) [[unlikely]] {
        uint32_t victim = UINT32_MAX;
        uint64_t oldest = UINT64_MAX;
        for (uint32_t bi = 0; bi < 2; ++bi)
            for (uint32_t w = 0; w < kWays; ++w) {
                const uint32_t i = buckets_[b[bi]].idx[w];
                const FlowEntry& e = entries_[i];
                const uint64_t last = e.c[1].last_ns > e.c[0].last_ns ? e.c[1].last_ns : e.c[0].last_ns;
                if (last < oldest) {
                    oldest = last;
                    victim = i;
                    pick = bi;
                }
            }
        stats_.evicted_bucket_full.add();
        remove(victim, EndReason::kLackOfResources, sink);
    }
    if (free_top_ == 0 && fresh_ == capacity_) {
        stats_.evicted_table_full.add();
        evict_oldest(sink);
    }
    const uint32_t i = free_top_ ? free_[--free_top_] : fresh_++;
    Bucket& bk = buckets_[b[pick]];
    const uint32_t way = static_cast<uint32_t>(__builtin_ctz(match_mask(bk, 0)));
    bk.sig[way] = sig;
    bk.idx[way] = i;

    FlowEntry& e = entries_[i];
    e.key = pk.key;
    e.c[0] = DirCounters{};
    e.c[1] = DirCounters{};
    e.a[0] = DirAttrs{};
    e.a[1] = DirAttrs{};
    e.where = b[pick] * kWays + way;
    e.in_port = port;
    e.init_reversed = pk.reversed;
    e.handshake_open = 0;
    e.unused = 0;
    e.state = pk.tunnel_src_hi ? kTunnelSrcHi : 0;
    account(e.c[0], e.a[0], p, ts);
    if (p.tcp_flags & 0x04) e.state |= kClosing;
    if (p.tcp_flags & 0x01) e.state |= kFinInit;
    if (macs_) {
        uint8_t* m = macs_ + 16 * static_cast<size_t>(i);
        if (macs)
            std::memcpy(m, macs, 16);
        else
            std::memset(m, 0, 16);
    }
    if (handshake_) {
        const bool syn = (p.tcp_flags & 0x16) == 0x02 && p.tuple.proto == 6;
        handshake_[i] = syn ? Handshake{0, 0} : Handshake{Handshake::kNoHandshake, 0};
        e.handshake_open = syn;
    }
    if (sizes_) {
        uint32_t* z = sizes_ + 2 * kSizeBins * static_cast<size_t>(i);
        std::memset(z, 0, 2 * kSizeBins * sizeof(uint32_t));
        ++z[size_bin(p.ip_octets)];
    }
    sink.on_created(e);
    stats_.created.add();
    stats_.active.add();
    const uint64_t idle_or_active = cfg_.idle_ns < cfg_.active_ns ? cfg_.idle_ns : cfg_.active_ns;
    schedule(i, ts + ((e.state & kClosing) ? cfg_.tcp_end_ns : idle_or_active));
    return i << 2 | 2;
}

template <class Sink>
void FlowTable::expire(uint64_t now, uint32_t budget, Sink& sink) noexcept {
    if (!started_) return;
    const uint64_t now_tick = now >> kTickShift;
    if (now_tick > cursor_ + kSlots) cursor_ = now_tick - kSlots;  // long gap: one full turn
    while (cursor_ < now_tick) {
        const uint32_t s = capacity_ + static_cast<uint32_t>(cursor_ & (kSlots - 1));
        while (links_[s].next != s) {
            if (budget == 0) return;
            --budget;
            const uint32_t i = links_[s].next;
            EndReason why;
            const uint64_t d = deadline(entries_[i], why);
            if (d <= now) {
                remove(i, why, sink);
            } else {
                unlink(i);
                const uint64_t save = cursor_;
                cursor_ = save + 1;  // reschedule strictly after the slot being drained
                schedule(i, d);
                cursor_ = save;
            }
        }
        ++cursor_;
    }
}

template <class Sink>
void FlowTable::flush(Sink& sink) noexcept {
    for (uint32_t s = 0; s < kSlots; ++s) {
        const uint32_t head = capacity_ + s;
        while (links_[head].next != head) remove(links_[head].next, EndReason::kForced, sink);
    }
}

}  // namespace weir::flow
