// SPDX-License-Identifier: BSD-3-Clause
#include "detect/observer.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace weir::detect {
namespace {

constexpr uint8_t kSyn = 0x02, kRst = 0x04, kAck = 0x10;

uint32_t round_pow2(uint32_t n) {
    uint32_t c = 8;
    while (c < n) c <<= 1;
    return c;
}

ProtoClass proto_class(uint8_t p) {
    switch (p) {
        case 6: return kTcp;
        case 17: return kUdpClass;
        case 1:
        case 58: return kIcmp;
        default: return kOtherProto;
    }
}

bool icmp_echo_request(const packet::Tuple& t) {
    const unsigned type = t.dport >> 8;
    return (t.proto == 1 && type == 8) || (t.proto == 58 && type == 128);
}

template <size_t N>
void sample_port(uint16_t (&ports)[N], uint16_t& n, uint16_t port) {
    for (uint16_t i = 0; i < n; ++i)
        if (ports[i] == port) return;
    if (n < N) ports[n++] = port;
}

constexpr uint64_t kKindSalt[kProbeKinds] = {mix64(1), mix64(2), mix64(3), mix64(4), mix64(5), mix64(6)};

#if defined(__SSE2__)
// The even bits of a byte mask of 16-bit lanes: one bit per lane.
inline unsigned even_bits(int m) noexcept {
    unsigned x = static_cast<unsigned>(m) & 0x5555u;
    x = (x | (x >> 1)) & 0x3333u;
    x = (x | (x >> 2)) & 0x0F0Fu;
    x = (x | (x >> 4)) & 0x00FFu;
    return x;
}
#endif

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

}  // namespace

const char* probe_name(Probe p) noexcept {
    switch (p) {
        case Probe::kTcpSyn: return "tcp_syn";
        case Probe::kTcpAck: return "tcp_ack";
        case Probe::kUdp: return "udp";
        case Probe::kIcmpEcho: return "icmp_echo";
        case Probe::kDns: return "dns";
        case Probe::kOther: return "other";
    }
    return "?";
}

template <class E>
GroupTable<E>::GroupTable(uint32_t capacity)
    : capacity_(round_pow2(capacity)),
      mask_(capacity_ - 1),
      tags_(new uint16_t[capacity_]()),
      entries_(new E[capacity_]()) {}

template <class E>
void GroupTable<E>::clear() noexcept {
    if (size_) std::memset(tags_.get(), 0, sizeof(uint16_t) * capacity_);
    size_ = 0;
}

// The slots of a group whose tag is `tag` (bit i: slot i), and those still empty.
inline void group_masks(const uint16_t* tags, uint16_t tag, unsigned& match, unsigned& empty) noexcept {
#if defined(__SSE2__)
    const __m128i g = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tags));
    // Two mask bits per 16-bit lane: keep the even ones.
    match = static_cast<unsigned>(
        even_bits(_mm_movemask_epi8(_mm_cmpeq_epi16(g, _mm_set1_epi16(static_cast<short>(tag))))));
    empty = static_cast<unsigned>(even_bits(_mm_movemask_epi8(_mm_cmpeq_epi16(g, _mm_setzero_si128()))));
#else
    match = empty = 0;
    for (unsigned i = 0; i < 8; ++i) {
        match |= unsigned{tags[i] == tag} << i;
        empty |= unsigned{tags[i] == 0} << i;
    }
#endif
}

template <class E>
template <class Same>
E* GroupTable<E>::find_or_add(uint64_t hash, Same&& same, bool& created) noexcept {
    const uint32_t g = static_cast<uint32_t>(hash) & mask_ & ~7u;
    const auto tag = static_cast<uint16_t>((hash >> 48) | 1);
    created = false;
    unsigned match, empty;
    group_masks(&tags_[g], tag, match, empty);
    for (; match; match &= match - 1) {
        const uint32_t i = g + static_cast<uint32_t>(__builtin_ctz(match));
        if (same(entries_[i])) return &entries_[i];
    }
    if (!empty) return nullptr;
    // Slots fill in order and never empty within an interval: the first empty one is next.
    const uint32_t i = g + static_cast<uint32_t>(__builtin_ctz(empty));
    tags_[i] = tag;
    ++size_;
    std::memset(static_cast<void*>(&entries_[i]), 0, sizeof(E));
    created = true;
    return &entries_[i];
}

template <class E>
template <class Same>
E* GroupTable<E>::find(uint64_t hash, Same&& same) noexcept {
    const uint32_t g = static_cast<uint32_t>(hash) & mask_ & ~7u;
    const auto tag = static_cast<uint16_t>((hash >> 48) | 1);
    unsigned match, empty;
    group_masks(&tags_[g], tag, match, empty);
    for (; match; match &= match - 1) {
        const uint32_t i = g + static_cast<uint32_t>(__builtin_ctz(match));
        if (same(entries_[i])) return &entries_[i];
    }
    return nullptr;
}

template class GroupTable<SourceEntry>;
template class GroupTable<PairEntry>;
template class GroupTable<DestEntry>;

Bank::Bank(const ObserverConfig& c)
    : sources(c.sources), pairs(c.pairs), dests(c.destinations), cms(new uint16_t[4 * kCmsWidth]()) {}

void Bank::reset(uint64_t interval) noexcept {
    first_interval = last_interval = interval;
    if (used) {
        sources.clear();
        pairs.clear();
        dests.clear();
        std::memset(cms.get(), 0, sizeof(uint16_t) * 4 * kCmsWidth);
    }
    packets = syns = 0;
    used = false;
    overflow_sources = overflow_pairs = overflow_destinations = 0;
}

Observer::Observer(const ObserverConfig& c) : cfg_(c), banks_{Bank(c), Bank(c)} {
    if (cfg_.interval_ns == 0) cfg_.interval_ns = 1'000'000'000ull;
}

size_t Observer::memory_bytes() const noexcept {
    size_t n = 0;
    for (const Bank& b : banks_)
        n += b.sources.memory_bytes() + b.pairs.memory_bytes() + b.dests.memory_bytes() +
            4 * Bank::kCmsWidth * sizeof(uint16_t);
    return n;
}

void Observer::packet(const packet::Layer& l, const Seen& s, uint64_t ts, uint64_t h) noexcept {
    if (end_ns_ == 0) [[unlikely]] {
        const uint64_t k = ts / cfg_.interval_ns;
        banks_[cur_].first_interval = banks_[cur_].last_interval = k;
        end_ns_ = (k + 1) * cfg_.interval_ns;
        through_.store(k, std::memory_order_release);
    } else if (ts >= end_ns_) [[unlikely]] {
        roll(ts);  // the first packet of a later interval: not in the bank of an earlier one
    }
    Bank& b = banks_[cur_];
    b.used = true;
    const packet::Tuple& t = l.tuple;
    // Unsolicited responses: a reflector's packets in a flow that its answer opened.
    const bool amp = s.initiator &&
        ((t.proto == 17 && cfg_.amplifiers.test(t.sport)) ||
         (t.proto == 6 && (l.tcp_flags & (kSyn | kAck)) == (kSyn | kAck)));
    constexpr uint32_t W = Bank::kCmsWidth;
    const uint32_t i1 = h & (W - 1), i2 = W + ((h >> 32) & (W - 1));
    uint16_t* cms = b.cms.get();
    auto bump = [](uint16_t* c, uint32_t a, uint32_t z) -> uint32_t {
        c[a] = static_cast<uint16_t>(c[a] + (c[a] != 0xFFFF));
        c[z] = static_cast<uint16_t>(c[z] + (c[z] != 0xFFFF));
        return c[a] < c[z] ? c[a] : c[z];
    };
    const uint32_t est = bump(cms, i1, i2);
    ++b.packets;
    // Tracked exactly: a destination with 1/256 of the worker's packets, or 1/1024 of its SYNs
    // (SYNs are few; a SYN flood's victim must stand out among them, not among all packets).
    bool heavy = est >= cfg_.promote_packets && uint64_t{est} * W >= Bank::kPacketShare * b.packets;
    if (t.proto == 6 && (l.tcp_flags & (kSyn | kAck)) == kSyn) {
        const uint32_t se = bump(cms + 2 * W, i1, i2);
        ++b.syns;
        heavy = heavy || (se >= cfg_.promote_packets && uint64_t{se} * W >= Bank::kSynShare * b.syns);
    } else if (s.completion && !heavy) [[unlikely]] {
        // A handshake that completes counts against its destination's SYNs: the SYN sketch
        // says whether that destination is tracked for them.
        const uint16_t* sc = cms + 2 * W;
        const uint32_t se = sc[i1] < sc[i2] ? sc[i1] : sc[i2];
        heavy = se >= cfg_.promote_packets && uint64_t{se} * W >= Bank::kSynShare * b.syns;
    }
    if (heavy || amp) {
        // A tracked destination's ordinary packets (established, not a SYN, not the handshake's
        // completion, not from a reflector) are sampled: every eighth of the worker's packets,
        // counted eight times. What the rules count one by one stays exact.
        const bool exact = amp || s.new_flow || s.completion || (t.proto == 6 && (l.tcp_flags & kSyn));
        if (exact || (b.packets & (kOrdinarySample - 1)) == 0)
            touch_dest(b, l, h, ts, s, amp, t.proto == 17 ? t.sport : 0, exact ? 1 : kOrdinarySample);
    }
    if (s.new_flow && !amp) {
        if (t.proto == 6) {
            const uint8_t f = l.tcp_flags;
            if (f & kRst) return;
            probe(b, l,
                  (f & kSyn)       ? Probe::kTcpSyn
                      : (f & kAck) ? Probe::kTcpAck
                                   : Probe::kOther,
                  ts, addr_hash(t.src, t.ip_version), h);
        } else if (t.proto == 17) {
            const uint64_t hs = addr_hash(t.src, t.ip_version);
            probe(b, l, Probe::kUdp, ts, hs, h);
            if (t.dport == 53) probe(b, l, Probe::kDns, ts, hs, h);
        } else if (icmp_echo_request(t)) {
            probe(b, l, Probe::kIcmpEcho, ts, addr_hash(t.src, t.ip_version), h);
        }
    } else if (s.first_answer) [[unlikely]] {
        answer(b, l);
    }
}

void Observer::touch_dest(Bank& b, const packet::Layer& l, uint64_t h, uint64_t ts, const Seen& s, bool amp,
                          uint16_t amp_port, uint32_t weight) noexcept {
    const packet::Tuple& t = l.tuple;
    bool created;
    DestEntry* e = b.dests.find_or_add(
        h, [&](const DestEntry& d) { return d.version == t.ip_version && std::memcmp(d.dst, t.dst, 16) == 0; },
        created);
    if (!e) {
        overflowed(b.overflow_destinations, ovf_dst_);
        return;
    }
    if (created) {
        std::memcpy(e->dst, t.dst, 16);
        e->version = t.ip_version;
        e->first_ns = ts;
    }
    if (ts > e->last_ns) e->last_ns = ts;
    const ProtoClass pc = proto_class(t.proto);
    e->packets[pc] += weight;
    e->bytes[pc] += uint64_t{l.ip_octets} * weight;
    if (t.proto == 6 && (l.tcp_flags & (kSyn | kAck)) == kSyn) {
        ++e->syns;
        e->syn_ports.add(mix64(t.dport ^ 0x5959'0000ull));
    }
    if (s.completion) ++e->completions;
    // Its sources: every new flow's, and those of the sampled ordinary packets, so that sources
    // whose flows began before the destination stood out count too.
    const uint64_t hs = addr_hash(t.src, t.ip_version);
    e->sources.add(hs);
    if (e->nsamples < 5) {
        bool known = false;
        for (unsigned i = 0; i < e->nsamples && !known; ++i) known = std::memcmp(e->samples[i], t.src, 16) == 0;
        if (!known) {
            if (e->nsamples < 4) std::memcpy(e->samples[e->nsamples], t.src, 16);
            ++e->nsamples;
        }
    }
    if (amp) {
        ++e->amp_packets;
        e->amp_bytes += l.ip_octets;
        e->amplifiers.add(hs);
        unsigned i = 0;
        while (i < e->namp_ports && e->amp_ports[i] != amp_port) ++i;
        if (i == e->namp_ports && i < 4) e->amp_ports[e->namp_ports++] = amp_port;
        if (i < 4) ++e->amp_port_packets[i];
    }
}

void Observer::probe(Bank& b, const packet::Layer& l, Probe kind, uint64_t ts, uint64_t hs, uint64_t hd) noexcept {
    const packet::Tuple& t = l.tuple;
    const uint64_t hp = mix64((uint64_t{t.proto} << 16 | t.dport) ^ 0x7070'0000'0000ull);
    bool created;
    const auto k = static_cast<uint8_t>(kind);
    SourceEntry* se = b.sources.find_or_add(
        hs ^ kKindSalt[k],
        [&](const SourceEntry& e) {
            return e.kind == k && e.version == t.ip_version && std::memcmp(e.src, t.src, 16) == 0;
        },
        created);
    if (se) {
        if (created) {
            std::memcpy(se->src, t.src, 16);
            se->version = t.ip_version;
            se->kind = k;
            se->first_ns = ts;
        }
        if (ts > se->last_ns) se->last_ns = ts;
        ++se->probes;
        if (kind == Probe::kDns && l.ip_octets >= cfg_.dns_long) ++se->long_queries;
        se->dsts.add(hd);
        se->dports.add(hp);
        sample_port(se->ports, se->nports, t.dport);
    } else {
        overflowed(b.overflow_sources, ovf_src_);
    }
    if (kind == Probe::kDns) return;  // its UDP probe already counted for the pair
    PairEntry* pe = b.pairs.find_or_add(
        hs ^ (hd * 0x9E3779B97F4A7C15ull),
        [&](const PairEntry& e) {
            return e.version == t.ip_version && std::memcmp(e.src, t.src, 16) == 0 &&
                std::memcmp(e.dst, t.dst, 16) == 0;
        },
        created);
    if (!pe) {
        overflowed(b.overflow_pairs, ovf_pair_);
        return;
    }
    if (created) {
        std::memcpy(pe->src, t.src, 16);
        std::memcpy(pe->dst, t.dst, 16);
        pe->version = t.ip_version;
        pe->proto = t.proto;
        pe->first_ns = ts;
    }
    if (ts > pe->last_ns) pe->last_ns = ts;
    ++pe->probes;
    pe->dports.add(hp);
    sample_port(pe->ports, pe->nports, t.dport);
}

// The responder's first packet: the probe that opened the flow was answered (a SYN-ACK, any UDP,
// TCP without SYN or RST for a flow that opened without SYN).
void Observer::answer(Bank& b, const packet::Layer& l) noexcept {
    const packet::Tuple& t = l.tuple;
    Probe kind;
    if (t.proto == 6 && (l.tcp_flags & (kSyn | kAck)) == (kSyn | kAck))
        kind = Probe::kTcpSyn;
    else if (t.proto == 6 && !(l.tcp_flags & (kSyn | kRst)))
        kind = Probe::kTcpAck;  // a flow seen mid-way goes on both ways; an ACK probe gets a RST
    else if (t.proto == 17)
        kind = Probe::kUdp;
    else
        return;
    // The initiator is this packet's destination. Only probes of this interval learn of their
    // answers (an answer is a round trip after its probe: few cross an interval's end), and an
    // answer adds no entry.
    const uint64_t hi = addr_hash(t.dst, t.ip_version);
    const uint64_t hr = addr_hash(t.src, t.ip_version);
    const auto k = static_cast<uint8_t>(kind);
    if (SourceEntry* se = b.sources.find(hi ^ kKindSalt[k], [&](const SourceEntry& e) {
            return e.kind == k && e.version == t.ip_version && std::memcmp(e.src, t.dst, 16) == 0;
        }))
        ++se->answered;
    if (PairEntry* pe = b.pairs.find(hi ^ (hr * 0x9E3779B97F4A7C15ull), [&](const PairEntry& e) {
            return e.version == t.ip_version && std::memcmp(e.src, t.dst, 16) == 0 &&
                std::memcmp(e.dst, t.src, 16) == 0;
        }))
        ++pe->answered;
}

bool Observer::publish() noexcept {
    if (taken_.load(std::memory_order_acquire) != published_.load(std::memory_order_relaxed)) return false;
    intervals_.store(intervals_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    published_bank_ = cur_;
    published_.store(published_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    cur_ ^= 1;
    return true;
}

void Observer::roll(uint64_t now_ns) noexcept {
    if (end_ns_ == 0) {  // nothing seen yet: a live worker's clock still completes intervals
        if (now_ns) through_.store(now_ns / cfg_.interval_ns, std::memory_order_release);
        return;
    }
    if (now_ns < end_ns_) return;
    const uint64_t k = now_ns / cfg_.interval_ns;
    Bank& b = banks_[cur_];
    if (b.used) {
        b.last_interval = k;
        if (cfg_.wait)  // a replay loses nothing by waiting: its packets wait in the file
            while (!publish()) cpu_relax();
        else if (!publish()) {
            late_.store(late_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            end_ns_ = (k + 1) * cfg_.interval_ns;
            return;  // intervals before k are not complete here until this bank is published
        }
    }
    banks_[cur_].reset(k);
    end_ns_ = (k + 1) * cfg_.interval_ns;
    through_.store(k, std::memory_order_release);
}

void Observer::finish() noexcept {
    Bank& b = banks_[cur_];
    if (b.used) {
        b.last_interval = end_ns_ / cfg_.interval_ns;
        while (!publish()) cpu_relax();
    }
    through_.store(UINT64_MAX, std::memory_order_release);
}

const Bank* Observer::take() const noexcept {
    return published_.load(std::memory_order_acquire) != taken_.load(std::memory_order_relaxed)
        ? &banks_[published_bank_]
        : nullptr;
}

void Observer::give() noexcept { taken_.store(published_.load(std::memory_order_relaxed), std::memory_order_release); }

ObserverStats Observer::stats() const noexcept {
    return ObserverStats{intervals_.load(std::memory_order_relaxed), late_.load(std::memory_order_relaxed),
                         ovf_src_.load(std::memory_order_relaxed), ovf_pair_.load(std::memory_order_relaxed),
                         ovf_dst_.load(std::memory_order_relaxed)};
}

}  // namespace weir::detect
